"""`fleuve dashboards`: list the dashboards, and check the project's YAML dashboards before serving."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from fleuve.cli.context import Context, FleuveGroup, console, pass_ctx
from fleuve.errors import FleuveError


@click.group(cls=FleuveGroup)
def dashboards() -> None:
    """Dashboards as code: list them, check the project's dashboards/*.yml."""


@dashboards.command("list")
@pass_ctx
def list_dashboards(ctx: Context) -> None:
    """List the dashboards Fleuve serves, from files and from the UI."""
    from fleuve.dashboards import store

    table = Table("slug", "title", "charts", "origin")
    for row in store.list_dashboards(ctx.project().db):
        origin = row.source_file if row.origin == "file" else f"UI ({row.owner})"
        table.add_row(row.slug, row.title, str(len(row.spec.get("charts", []))), origin)
    console.print(table)


@dashboards.command("check")
@click.option("--user", default="admin", show_default=True, help="Run the queries as this user.")
@pass_ctx
def check(ctx: Context, user: str) -> None:
    """Validate every dashboards/*.yml and plan each chart's query through the engine.

    Each query runs with LIMIT 0 as USER, so unknown datasets, columns and missing grants show
    up here rather than on a dashboard. Exits with status 1 when anything is wrong.
    """
    from fleuve.dashboards import chart_query, filter_conditions, read_dashboard_file, store

    project = ctx.project()
    folder = Path(project.settings.project_dir) / store.FOLDER
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    if not files:
        console.print(f"No dashboard files in {folder}.")
        return
    table = Table("file", "chart", "result")
    failed = 0
    with ctx.engine() as engine:
        for path in files:
            try:
                spec = read_dashboard_file(path)
            except FleuveError as exc:
                failed += 1
                table.add_row(path.name, "", f"[red]{exc.message}[/]")
                continue
            for chart in spec.charts:
                sql = chart_query(chart, filter_conditions(spec, chart, {}))
                try:
                    engine.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0", user=user).read_all()
                    table.add_row(path.name, chart.name, "[green]ok[/]")
                except FleuveError as exc:
                    failed += 1
                    table.add_row(path.name, chart.name, f"[red]{exc.message}[/]")
    console.print(table)
    if failed:
        console.print(f"[red]{failed} problem(s)[/]")
        sys.exit(1)
