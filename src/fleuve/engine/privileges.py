"""System privileges: who may operate the platform (sync, run pipelines, schedules, reflections...).

Data access is granted per object (`GRANT SELECT ON gold.* TO ROLE analyst`); operating the
platform is granted on SYSTEM, as in Dremio: `GRANT SYNC ON SYSTEM TO ROLE data_engineer`.
A user holds a system privilege when it was granted to them or to one of their roles, or when
one of their roles is a built-in role that includes it (`admin` includes every privilege).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from fleuve.engine.errors import AccessDenied
from fleuve.metadata import Database, User
from fleuve.metadata.engine import EngineGrant
from fleuve.security import audit

SYNC = "SYNC"
RUN_PIPELINES = "RUN PIPELINES"
MANAGE_SCHEDULES = "MANAGE SCHEDULES"
ALTER_REFLECTION = "ALTER REFLECTION"
MANAGE_SOURCES = "MANAGE SOURCES"
MONITOR = "MONITOR"
EDIT_DASHBOARDS = "EDIT DASHBOARDS"
MANAGE_GRANTS = "MANAGE GRANTS"
MANAGE_USERS = "MANAGE USERS"

# Every system privilege and what it allows, as the docs and error messages say it.
SYSTEM_PRIVILEGES: dict[str, str] = {
    SYNC: "start connection syncs",
    RUN_PIPELINES: "run the batch pipeline and dbt transformations",
    MANAGE_SCHEDULES: "create, change, pause and delete schedules",
    ALTER_REFLECTION: "create, change, refresh and drop reflections on datasets one may read",
    MANAGE_SOURCES: "add and drop catalog sources and read their settings",
    MONITOR: "see connections (secrets masked), sync jobs, pipeline runs, dbt runs and job logs",
    EDIT_DASHBOARDS: "save and delete charts and dashboards in the web UI",
    MANAGE_GRANTS: "grant and revoke any privilege on any object or on SYSTEM, and list all grants",
    MANAGE_USERS: "create, disable and list users, and give or take their roles",
}

# Operating something means seeing how it went: these privileges include MONITOR.
_INCLUDES: dict[str, frozenset[str]] = {
    SYNC: frozenset({MONITOR}),
    RUN_PIPELINES: frozenset({MONITOR}),
    MANAGE_SCHEDULES: frozenset({MONITOR}),
    MANAGE_SOURCES: frozenset({MONITOR}),
}

ADMIN_ROLE = "admin"
# The built-in roles: give one to a user with `fleuve users roles NAME --add ROLE` or
# `GRANT ROLE engineer TO USER name`. Data access (SELECT, ALL) is always granted per object.
BUILTIN_ROLES: dict[str, frozenset[str]] = {
    ADMIN_ROLE: frozenset(SYSTEM_PRIVILEGES),
    "engineer": frozenset(
        {
            SYNC,
            RUN_PIPELINES,
            MANAGE_SCHEDULES,
            ALTER_REFLECTION,
            MANAGE_SOURCES,
            MONITOR,
            EDIT_DASHBOARDS,
        }
    ),
    "analyst": frozenset({EDIT_DASHBOARDS}),
    "viewer": frozenset(),
}

# How a grant ON SYSTEM is stored among the object grants: the privilege column says SYSTEM,
# the object key names the privilege (a key no dataset path can have: those are JSON lists).
STORED_PRIVILEGE = "SYSTEM"
_KEY_PREFIX = "SYSTEM:"


def normalize(privilege: str) -> str:
    """The canonical spelling of a privilege: upper case, single spaces (`manage_grants` too)."""
    return " ".join(privilege.replace("_", " ").split()).upper()


def known(privilege: str) -> bool:
    """True when `privilege` names a system privilege."""
    return normalize(privilege) in SYSTEM_PRIVILEGES


def object_key(privilege: str) -> str:
    """The stored object key of a grant of `privilege` ON SYSTEM."""
    return _KEY_PREFIX + normalize(privilege)


def privilege_of(key: str) -> str | None:
    """The system privilege a stored object key names, or None for an object grant."""
    return key[len(_KEY_PREFIX) :] if key.startswith(_KEY_PREFIX) else None


def effective(username: str, roles: Iterable[str], grants: Iterable[EngineGrant]) -> frozenset[str]:
    """Every system privilege a user holds through built-in roles and grants ON SYSTEM."""
    roles = frozenset(roles)
    held: set[str] = set()
    for role in roles:
        held |= BUILTIN_ROLES.get(role, frozenset())
    for g in grants:
        name = privilege_of(g.object_key)
        if name is None or g.privilege != STORED_PRIVILEGE:
            continue
        if (g.grantee_kind == "USER" and g.grantee == username) or (
            g.grantee_kind == "ROLE" and g.grantee in roles
        ):
            held.add(name)
    for name in list(held):
        held |= _INCLUDES.get(name, frozenset())
    return frozenset(held)


def system_grants(db: Database) -> list[EngineGrant]:
    """The grants made ON SYSTEM, read from the metadata database."""
    with db.session() as s:
        return list(s.scalars(select(EngineGrant).where(EngineGrant.privilege == STORED_PRIVILEGE)))


def held(db: Database, user: User) -> frozenset[str]:
    """The system privileges `user` holds now."""
    return effective(user.username, user.roles or (), system_grants(db))


def denied(username: str, privilege: str, doing: str) -> AccessDenied:
    """The one refusal for a missing system privilege: what it is needed for, and how to get it."""
    # The grant is in the message itself: a SQL job's errorMessage carries no separate fix.
    return AccessDenied(
        f"{doing} needs the {privilege} privilege, which user '{username}' does not hold; "
        f"an administrator can grant it: GRANT {privilege} ON SYSTEM TO USER {username}",
        "or give the user a role that includes it: "
        + ", ".join(f"`fleuve users roles {username} --add {r}`" for r in roles_with(privilege)),
    )


def roles_with(privilege: str) -> list[str]:
    """The built-in roles that include `privilege`."""
    return [
        r
        for r, privs in BUILTIN_ROLES.items()
        if privilege in privs or any(privilege in _INCLUDES.get(p, ()) for p in privs)
    ]


def require(db: Database, user: User, privilege: str, doing: str) -> None:
    """Raise AccessDenied, naming the privilege and how to get it, unless `user` holds it.

    A refusal is audited (kind `privilege`, outcome `denied`): who tried what."""
    if privilege not in held(db, user):
        audit.record(
            db,
            "privilege",
            "denied",
            username=user.username,
            outcome="denied",
            target=privilege,
            doing=doing,
        )
        raise denied(user.username, privilege, doing)


def require_user(db: Database, username: str, privilege: str, doing: str) -> User:
    """The enabled user called `username`, who must hold `privilege` (for `--user`, schedules)."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    if user is None or user.disabled:
        raise AccessDenied(
            f"unknown or disabled user '{username}'",
            "name an existing, enabled user (list them with `fleuve users list`)",
        )
    require(db, user, privilege, doing)
    return user
