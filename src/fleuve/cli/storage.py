"""`fleuve lake`: the lake's tables, snapshots, time travel and maintenance."""

from __future__ import annotations

import json

import click
from rich.table import Table

from fleuve.cli.context import Context, FleuveGroup, console, pass_ctx


@click.group(cls=FleuveGroup)
def lake() -> None:
    """The lake: tables, snapshots and time travel."""


@lake.command("tables")
@click.argument("schema", required=False)
@pass_ctx
def lake_tables(ctx: Context, schema: str | None) -> None:
    """List the lake's tables, optionally of one SCHEMA (bronze, silver, gold, logs)."""
    project = ctx.project()
    table = Table("schema", "table", "rows")
    con = project.lake.connect()
    for sch, name in project.lake.tables(schema):
        (rows,) = con.execute(f'SELECT count(*) FROM "{sch}"."{name}"').fetchone() or (0,)
        table.add_row(sch, name, f"{rows:,}")
    console.print(table)


@lake.command("snapshots")
@click.option("--limit", default=20, show_default=True, help="How many recent snapshots.")
@pass_ctx
def lake_snapshots(ctx: Context, limit: int) -> None:
    """List the lake's recent snapshots (versions usable for time travel)."""
    table = Table("version", "time", "changes")
    for snap in ctx.project().lake.snapshots()[-limit:]:
        table.add_row(
            str(snap.snapshot_id),
            snap.time.isoformat(timespec="seconds"),
            json.dumps(snap.changes, ensure_ascii=False)[:100],
        )
    console.print(table)


@lake.command("maintain")
@pass_ctx
def lake_maintain(ctx: Context) -> None:
    """Compact small files and expire snapshots older than lake.snapshot_retention_days."""
    from fleuve.pipeline import maintain

    console.print(maintain(ctx.project()))


@lake.command("at")
@click.argument("table")
@click.argument("version", type=int)
@click.option("--limit", default=10, show_default=True)
@pass_ctx
def lake_at(ctx: Context, table: str, version: int, limit: int) -> None:
    """Show TABLE (schema.table) as it was at snapshot VERSION."""
    rows = ctx.project().lake.read_at(table, version)
    console.print(f"{table} at version {version}: {rows.num_rows:,} rows")
    console.print(rows.slice(0, limit).to_pandas().to_string() if rows.num_rows else "(empty)")
