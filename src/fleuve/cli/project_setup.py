"""`fleuve init`, `fleuve db` and `fleuve config`: a project, its metadata and its settings."""

from __future__ import annotations

from pathlib import Path

import click

from fleuve.cli.context import Context, FleuveGroup, console, pass_ctx
from fleuve.errors import FleuveError
from fleuve.project import ADMIN_PASSWORD_FILE, InitReport, init_project


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), required=False)
@click.option("--name", help="Project name (default: the folder's name).")
@pass_ctx
def init(ctx: Context, directory: Path | None, name: str | None) -> None:
    """Create a project in DIRECTORY (or --project, or here): fleuve.yml, dbt project, lake,
    metadata, admin user.

    Running it again on an existing project changes nothing.
    """
    if directory and ctx.project_dir and directory.resolve() != ctx.project_dir.resolve():
        raise FleuveError(
            f"two folders given: --project {ctx.project_dir} and DIRECTORY {directory}",
            "give the project's folder once",
        )
    print_init(init_project(directory or ctx.project_dir or Path("."), name, ctx.overrides))


def print_init(report: InitReport) -> None:
    """What `init` created, and the admin password the first time."""
    if report.created:
        console.print(f"Project ready in [bold]{report.project_dir}[/]")
        for path in report.created:
            console.print(f"  created {path.relative_to(report.project_dir)}")
    else:
        console.print(
            f"Project in [bold]{report.project_dir}[/] is already complete; nothing changed."
        )
    if report.admin_password:
        console.print(
            f"\nAdmin user: [bold]admin[/]  password: [bold]{report.admin_password}[/]\n"
            f"(shown once; also in {report.project_dir / '.fleuve' / ADMIN_PASSWORD_FILE} until you change it)"
        )


@click.group(cls=FleuveGroup)
def db() -> None:
    """The platform's metadata database."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply pending migrations to the metadata database, keeping its data."""
    project = ctx.project(check=False)
    before, _ = project.db.revisions()
    after = project.db.upgrade()
    if set(after) == before:
        console.print(f"Metadata database already current ({', '.join(after)}).")
    else:
        console.print(f"Metadata database upgraded to {', '.join(after)}.")


@db.command("current")
@pass_ctx
def db_current(ctx: Context) -> None:
    """Show the metadata database's revision and the latest one."""
    current, heads = ctx.project(check=False).db.revisions()
    console.print(
        f"current: {', '.join(sorted(current)) or '(empty)'}\nlatest:  {', '.join(sorted(heads))}"
    )


@click.group(cls=FleuveGroup)
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@pass_ctx
def config_show(ctx: Context) -> None:
    """Print the effective settings (file < environment < flags), secrets masked."""
    settings = ctx.project(check=False).settings
    console.print_json(settings.model_dump_json(exclude={"project_dir"}))
