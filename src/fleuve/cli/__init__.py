"""The `fleuve` command: the root group here, one module per command group.

In the order data flows: `project_setup` (init, db, config), `sources` (ingest), `storage`
(lake), `transformations` (transform), `sql` (sql, queries, reflections, catalog), `serving`
(serve), `dashboards`, `batch` (run), `scheduling` (worker, schedules), `access` (users,
grants, audit), `observing` (alerts, observe). Features outside the core, such as the demo, add
theirs through `fleuve.plugins`; `context` holds what every command shares.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from fleuve import __version__, plugins
from fleuve.cli import (
    access,
    batch,
    dashboards,
    observing,
    project_setup,
    scheduling,
    serving,
    sources,
    sql,
    storage,
    transformations,
)
from fleuve.cli.context import Context, FleuveGroup
from fleuve.config import parse_assignments

# Spellings from before ingestion had its group; they run the same commands.
ALIASES: dict[str, tuple[str, ...]] = {
    "sync": ("ingest", "sync"),
    "jobs": ("ingest", "jobs"),
    "source": ("ingest", "source"),
}


class FleuveRoot(FleuveGroup):
    """The `fleuve` group: its own commands, those features add, and the older spellings."""

    group_class = FleuveGroup

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *plugins.COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in plugins.COMMANDS:
            self.add_command(plugins.load(plugins.COMMANDS[name]), name)
        command = super().get_command(ctx, name)
        if command is None and name in ALIASES:
            group, sub = ALIASES[name]
            command = self.commands[group].commands[sub]  # type: ignore[attr-defined]
        return command


@click.group(
    cls=FleuveRoot,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="fleuve")
@click.option(
    "-p",
    "--project",
    "project_dir",
    type=click.Path(path_type=Path),
    help="Project folder (default: the nearest folder with fleuve.yml, or $FLEUVE_PROJECT).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting, e.g. --set server.http_port=9100 (repeatable).",
)
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, assignments: tuple[str, ...]) -> None:
    """Fleuve: a lakehouse data platform in one package.

    Sources → ingestion → bronze/silver/gold lake → dbt → SQL engine → REST, Flight and dashboards.

    `fleuve sync`, `fleuve jobs` and `fleuve source` are short for `fleuve ingest sync|jobs|source`.
    """
    from fleuve.security import audit

    ctx.obj = Context(project_dir, parse_assignments(assignments))
    # Changes and queries run by this command are audited as coming from the CLI.
    ctx.with_resource(audit.acting_from("cli", getpass.getuser()))


for command in (
    project_setup.init,
    project_setup.db,
    project_setup.config,
    sources.ingest,
    storage.lake,
    transformations.transform,
    sql.sql_command,
    sql.queries,
    sql.reflections,
    sql.catalog,
    serving.serve,
    dashboards.dashboards,
    batch.run,
    scheduling.worker,
    scheduling.schedules,
    access.users,
    access.grants,
    access.audit,
    observing.alerts,
    observing.observe,
):
    cli.add_command(command)


def main() -> None:
    """Entry point of the `fleuve` command."""
    cli(prog_name="fleuve")
