"""`fleuve users`, `fleuve grants` and `fleuve audit`: who may do what, and what they did."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from fleuve.cli.context import Context, FleuveGroup, actor, console, pass_ctx
from fleuve.errors import FleuveError


def _read_password(from_stdin: bool) -> str:
    """The new password, from standard input or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


# -- users and their tokens ---------------------------------------------------------------


@click.group(cls=FleuveGroup)
def users() -> None:
    """Users, their roles and their tokens."""


@users.command("list")
@pass_ctx
def users_list(ctx: Context) -> None:
    """List users with their roles."""
    from fleuve.security import auth

    table = Table("user", "roles", "state", "created")
    for user in auth.list_users(ctx.project().db):
        table.add_row(
            user.username,
            ", ".join(user.roles) or "-",
            "disabled" if user.disabled else "enabled",
            user.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@users.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="A role to give (repeatable), e.g. analyst.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def users_add(ctx: Context, username: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Add USERNAME (the password is prompted for, never passed as an argument)."""
    from fleuve.security import auth

    project = ctx.project()
    auth.create_user(
        project.db, username, _read_password(password_stdin), list(roles), actor=actor()
    )
    console.print(
        f"User [bold]{username}[/] added" + (f" with roles {', '.join(roles)}." if roles else ".")
    )


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
def users_passwd(ctx: Context, username: str, password_stdin: bool) -> None:
    """Change USERNAME's password; their login sessions end."""
    from fleuve.security import auth

    auth.set_password(ctx.project().db, username, _read_password(password_stdin), actor=actor())
    console.print(f"Password of [bold]{username}[/] changed; their sessions were ended.")


@users.command("roles")
@click.argument("username")
@click.argument("roles", nargs=-1)
@click.option("--add", "added", multiple=True, help="A role to add (repeatable).")
@click.option("--remove", "removed", multiple=True, help="A role to remove (repeatable).")
@pass_ctx
def users_roles(
    ctx: Context,
    username: str,
    roles: tuple[str, ...],
    added: tuple[str, ...],
    removed: tuple[str, ...],
) -> None:
    """Show USERNAME's roles, set them to ROLES, or --add/--remove some."""
    from fleuve.security import auth

    db = ctx.project().db
    user = auth.get_user(db, username)
    if roles or added or removed:
        wanted = list(roles) if roles else list(user.roles)
        wanted = [r for r in [*wanted, *added] if r not in removed]
        user = auth.set_roles(db, username, wanted, actor=actor())
    console.print(f"{username}: {', '.join(user.roles) or '(no roles)'}")


@users.command("disable")
@click.argument("username")
@pass_ctx
def users_disable(ctx: Context, username: str) -> None:
    """Disable USERNAME: logins fail and their tokens stop working at once."""
    from fleuve.security import auth

    auth.set_disabled(ctx.project().db, username, True, actor=actor())
    console.print(f"User [bold]{username}[/] disabled.")


@users.command("enable")
@click.argument("username")
@pass_ctx
def users_enable(ctx: Context, username: str) -> None:
    """Enable a disabled USERNAME again."""
    from fleuve.security import auth

    auth.set_disabled(ctx.project().db, username, False, actor=actor())
    console.print(f"User [bold]{username}[/] enabled.")


@users.command("token")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for, e.g. superset.")
@click.option("--days", type=click.IntRange(1), default=90, show_default=True, help="Lifetime.")
@pass_ctx
def users_token(ctx: Context, username: str, name: str, days: int) -> None:
    """Create a personal access token for USERNAME (shown once; use it as a Bearer token)."""
    from fleuve.security import auth

    token, row = auth.create_personal_token(ctx.project().db, username, name, days, actor=actor())
    console.print(
        f"Token {row.id} ({name}) for {username}, valid {days} days:\n{token}", highlight=False
    )


@users.command("tokens")
@click.argument("username")
@pass_ctx
def users_tokens(ctx: Context, username: str) -> None:
    """List USERNAME's live tokens (ids and names; token values are never stored)."""
    from fleuve.security import auth

    table = Table("id", "kind", "name", "created", "expires")
    for t in auth.list_tokens(ctx.project().db, username):
        table.add_row(
            str(t.id),
            t.kind,
            t.name or "-",
            t.created_at.isoformat(timespec="seconds"),
            t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never",
        )
    console.print(table)


@users.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
@pass_ctx
def users_revoke(ctx: Context, username: str, token_id: int) -> None:
    """Revoke token TOKEN_ID of USERNAME."""
    from fleuve.security import auth

    auth.revoke_token_id(ctx.project().db, username, token_id, actor=actor())
    console.print(f"Token {token_id} of {username} revoked.")


# -- grants -------------------------------------------------------------------------------


@click.group(cls=FleuveGroup)
def grants() -> None:
    """Grants of SELECT or ALL on datasets, schemas and spaces, and of privileges on SYSTEM."""


@grants.command("list")
@click.option("--on", "path", help="Only grants on this dataset or container (e.g. gold.*).")
@click.option("--grantee", help="Only grants to this user or role.")
@click.option("--user", default="admin", show_default=True)
@pass_ctx
def grants_list(ctx: Context, path: str | None, grantee: str | None, user: str) -> None:
    """List grants."""
    with ctx.engine() as engine:
        table = Table("grantee", "type", "privilege", "object")
        for g in engine.list_grants(user=user, path=path, grantee=grantee):
            table.add_row(g.grantee, g.grantee_kind, g.privilege, g.as_json()["object"])
        console.print(table)


def _grant_command(revoke: bool) -> Callable[..., None]:
    """`grants add` or `grants revoke`: the same arguments, opposite changes."""

    @click.argument("privilege")
    @click.argument("path")
    @click.option("--role", help="Grantee role.")
    @click.option("--to-user", "to_user", help="Grantee user.")
    @click.option("--user", default="admin", show_default=True, help="Who grants.")
    @pass_ctx
    def command(
        ctx: Context, privilege: str, path: str, role: str | None, to_user: str | None, user: str
    ) -> None:
        who = role or to_user
        if bool(role) == bool(to_user) or who is None:
            raise FleuveError("name one grantee", "pass --role NAME or --to-user NAME")
        kind = "ROLE" if role else "USER"
        with ctx.engine() as engine:
            if revoke:
                n = engine.revoke(privilege, path, user=user, grantee=who, grantee_type=kind)
                console.print(
                    f"Revoked {privilege.upper()} on {path} from {kind.lower()} {who} ({n})."
                )
            else:
                engine.grant(privilege, path, user=user, grantee=who, grantee_type=kind)
                console.print(f"Granted {privilege.upper()} on {path} to {kind.lower()} {who}.")

    return command


grants.command(
    "add",
    help="GRANT PRIVILEGE on PATH: SELECT or ALL on a dataset, or a container as path.*; "
    "a system privilege (e.g. SYNC, 'MANAGE GRANTS') on SYSTEM.",
)(_grant_command(revoke=False))
grants.command("revoke", help="REVOKE PRIVILEGE on PATH.")(_grant_command(revoke=True))


# -- the audit trail ----------------------------------------------------------------------


def _when(text: str | None) -> datetime | None:
    """A time from '15m', '2h', '7d' (ago) or an ISO 8601 date/time."""
    if not text:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FleuveError(
            f"cannot read the time {text!r}", "write e.g. 2h, 7d or 2026-01-31T12:00"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@click.group(cls=FleuveGroup, invoke_without_command=True)
@click.option(
    "--kind",
    type=click.Choice(
        [
            "login",
            "query",
            "user",
            "token",
            "grant",
            "connection",
            "reflection",
            "privilege",
            "schedule",
        ]
    ),
)
@click.option("--user", "username", help="Only this user's events.")
@click.option("--outcome", type=click.Choice(["ok", "failed", "cancelled", "denied"]))
@click.option("--since", help="From this time: 15m, 2h, 7d or an ISO date.")
@click.option("--until", help="Before this time: 15m, 2h, 7d or an ISO date.")
@click.option("--contains", help="Text in the target (the SQL, the user or connection changed).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def audit(
    click_ctx: click.Context,
    kind: str | None,
    username: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    contains: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show the audit trail: logins, queries and changes to users, grants and connections."""
    if click_ctx.invoked_subcommand is not None:
        return
    from fleuve.security import audit as trail

    ctx: Context = click_ctx.obj
    filters = trail.Filters(kind, username, outcome, _when(since), _when(until), contains, limit)
    events = trail.events(ctx.project().db, filters)
    if as_json:
        for e in events:
            click.echo(
                json.dumps(
                    {
                        "id": e.id,
                        "at": e.at.isoformat(),
                        "kind": e.kind,
                        "action": e.action,
                        "outcome": e.outcome,
                        "user": e.username,
                        "client": e.client,
                        "target": e.target,
                        "detail": e.detail,
                    },
                    ensure_ascii=False,
                    default=str,
                )
            )
        return
    table = Table("time", "kind", "action", "outcome", "user", "target", "detail")
    for e in events:
        detail = {
            k: v for k, v in (e.detail or {}).items() if v not in (None, [], "") and k != "sql"
        }
        table.add_row(
            e.at.isoformat(timespec="seconds"),
            e.kind,
            e.action,
            e.outcome,
            e.username or "-",
            (e.target or "")[:60],
            json.dumps(detail, ensure_ascii=False, default=str)[:80],
        )
    console.print(table)


@audit.command("purge")
@pass_ctx
def audit_purge(ctx: Context) -> None:
    """Delete events older than server.audit_retention_days (the server does it daily)."""
    from fleuve.security import audit as trail

    project = ctx.project()
    days = project.settings.server.audit_retention_days
    console.print(f"Removed {trail.purge(project.db, days):,} events older than {days} days.")
