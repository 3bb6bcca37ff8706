"""What every `fleuve` command shares: the project it works on, the consoles, and errors
turned into messages in one place."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from fleuve.config import CONFIG_FILE, find_project
from fleuve.errors import FleuveError
from fleuve.project import Project

if TYPE_CHECKING:
    from fleuve.engine import Engine

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


class FleuveGroup(click.Group):
    """A command group that reports a FleuveError as a two-line message and exit status 1.

    Every group under `fleuve` is one (subgroups inherit the class), so a command raises and
    never prints its own error; the innermost group reports it, once, with no stack trace.
    """

    group_class: type[click.Group] | type[type] | None = type  # subgroups are FleuveGroups too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FleuveError as exc:
            err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
            if exc.fix:
                err_console.print(f"[bold]Fix:[/] {exc.fix}", highlight=False)
            ctx.exit(1)


class Context:
    """Options shared by every subcommand, and the project they name, opened once."""

    def __init__(self, project_dir: Path | None, overrides: dict[str, Any]) -> None:
        self.project_dir = project_dir
        self.overrides = overrides
        self._project: Project | None = None

    def project(self, check: bool = True) -> Project:
        """The opened project (settings validated, metadata checked)."""
        if self._project is None:
            folder = self.project_dir or find_project()
            if not (Path(folder) / CONFIG_FILE).exists():
                raise FleuveError(
                    f"no Fleuve project in {Path(folder).resolve()} (no {CONFIG_FILE} here or above)",
                    "run `fleuve init` to create one, or pass --project DIR",
                )
            self._project = Project.open(folder, self.overrides)
            if check:
                self._project.check()
        return self._project

    def engine(self) -> Engine:
        """The SQL engine over the project; use it as `with ctx.engine() as engine:`."""
        from fleuve.engine import Engine

        return Engine(self.project())


pass_ctx = click.make_pass_decorator(Context)


def actor() -> str:
    """Who runs a CLI change, for the audit trail."""
    return f"cli:{getpass.getuser()}"


def as_user_option(fn: F) -> F:
    """`--user NAME`: act as that user, refused without the privilege (else the local operator)."""
    return click.option(
        "--user",
        "as_user",
        default=None,
        help="Act as this user: refused unless they hold the privilege "
        "(without --user, the local operator may do everything).",
    )(fn)


def check_user(project: Project, username: str | None, privilege: str, doing: str) -> None:
    """Refuse when `--user` was given and that user lacks the system `privilege`."""
    if username is not None:
        from fleuve.engine import privileges

        privileges.require_user(project.db, username, privilege, doing)
