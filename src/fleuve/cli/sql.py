"""`fleuve sql`, `fleuve queries`, `fleuve reflections` and `fleuve catalog`: the SQL engine,
its query jobs, its reflections and the sources it reads in place."""

from __future__ import annotations

import json
from typing import Any

import click
from rich import box
from rich.table import Table

from fleuve.cli.context import Context, FleuveGroup, console, err_console, pass_ctx
from fleuve.config import parse_assignments


def _print_arrow(table: Any, limit: int = 200) -> None:
    """The first `limit` rows of an Arrow table, and how many there were."""
    out = Table(*table.schema.names)
    for row in table.slice(0, limit).to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(out)
    if table.num_rows > limit:
        console.print(f"({table.num_rows:,} rows, {limit} shown)")


@click.command("sql")
@click.argument("query")
@click.option("--user", default="admin", show_default=True, help="Run as this user (grants apply).")
@click.option(
    "--dialect", type=click.Choice(["duckdb", "dremio"]), default="duckdb", show_default=True
)
@click.option("--context", help="Resolve relative names here, e.g. gold or 'My Space.folder'.")
@click.option("--limit", default=200, show_default=True, help="Rows to print.")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON lines.")
@pass_ctx
def sql_command(
    ctx: Context,
    query: str,
    user: str,
    dialect: str,
    context: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Run QUERY through the engine: datasets, views, reflections, grants, DDL."""
    with ctx.engine() as engine:
        result = engine.execute(query, user=user, dialect=dialect, default_schema=context)
        table = result.read_all()
        if as_json:
            for row in table.slice(0, limit).to_pylist():
                console.print_json(json.dumps(row, default=str))
        else:
            _print_arrow(table, limit)
        job = engine.job(result.job_id)
        chosen = [r["reflectionName"] for r in job.reflections if r["relationship"] == "CHOSEN"]
        err_console.print(
            f"job {job.id}: {job.row_count:,} rows, planned in {job.planning_ms or 0:.1f} ms"
            + (f", accelerated by {', '.join(chosen)}" if chosen else ""),
            highlight=False,
        )


@click.command("queries")
@click.option(
    "--user",
    default="admin",
    show_default=True,
    help="Whose query jobs: an administrator sees everyone's, other users their own.",
)
@click.option("--limit", default=20, show_default=True, help="How many recent query jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print job objects as the REST API does.")
@pass_ctx
def queries(ctx: Context, user: str, limit: int, as_json: bool) -> None:
    """List recent query jobs: SQL run through the engine (CLI, REST, Flight, dashboards).

    A query job records one statement: who ran it, from where, its state, rows and time, and the
    reflections that served it. The sync jobs of connections are listed by `fleuve ingest jobs`.
    """
    with ctx.engine() as engine:
        found = engine.jobs(user, limit)
    if as_json:
        console.print_json(json.dumps([job.as_json() for job in found], default=str))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("job", "user", "type", "state", "submitted (UTC)", "rows", "ms"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("rows", "ms") else "left")
    table.add_column("sql", overflow="ellipsis", no_wrap=True)
    for job in found:
        ms = (job.planning_ms or 0) + (job.execution_ms or 0)
        table.add_row(
            job.id[:8],
            job.user,
            job.query_type,
            job.state,
            f"{job.submitted_at:%m-%d %H:%M:%S}",
            f"{job.row_count:,}",
            f"{ms:,.0f}",
            " ".join(job.sql.split()),
        )
    console.print(table)
    for job in found:
        if job.error:
            console.print(f"job {job.id[:8]} failed: {job.error}", markup=False, highlight=False)


@click.group(cls=FleuveGroup)
def reflections() -> None:
    """Reflections: list them, show one, refresh them."""


@reflections.command("list")
@click.option("--user", default="admin", show_default=True)
@pass_ctx
def reflections_list(ctx: Context, user: str) -> None:
    """Every reflection with its status, size and use."""
    with ctx.engine() as engine:
        table = Table("name", "type", "dataset", "status", "rows", "refreshed", "policy", "chosen")
        for r in engine.list_reflections(user=user):
            m, st = r["metrics"], r["status"]
            policy = r["refreshPolicy"]["type"] + (
                f" {r['refreshPolicy']['everySeconds']}s"
                if r["refreshPolicy"]["everySeconds"]
                else ""
            )
            table.add_row(
                r["name"],
                r["type"],
                ".".join(r["datasetPath"]),
                st["combinedStatus"],
                f"{m['rows']:,}",
                st["lastRefreshFinished"] or "never",
                policy,
                str(m["chosen"]),
            )
        console.print(table)


@reflections.command("show")
@click.argument("name")
@click.option("--user", default="admin", show_default=True)
@pass_ctx
def reflections_show(ctx: Context, name: str, user: str) -> None:
    """One reflection as the REST API returns it."""
    with ctx.engine() as engine:
        console.print_json(json.dumps(engine.reflection(name, user=user)))


@reflections.command("refresh")
@click.argument("name", required=False)
@click.option(
    "--full", is_flag=True, help="Rebuild from scratch even if an incremental refresh would do."
)
@click.option("--user", default="admin", show_default=True)
@pass_ctx
def reflections_refresh(ctx: Context, name: str | None, full: bool, user: str) -> None:
    """Refresh NAME now, or every reflection that is due."""
    with ctx.engine() as engine:
        if name:
            results = [engine.refresh_reflection(name, user=user, mode="FULL" if full else "AUTO")]
        else:
            results = engine.refresh_due()
        for r in results:
            console.print(
                f"{r.reflection}: {r.mode.lower()}, {r.rows:,} rows at snapshot {r.snapshot}"
                f" in {r.seconds:.2f}s" + (f" ({r.reason})" if r.reason else ""),
                highlight=False,
            )
        if not results:
            console.print("No reflection is due.")


@click.group(cls=FleuveGroup)
def catalog() -> None:
    """The engine's catalog: external sources and promoted folders of files."""


@catalog.command("add-source")
@click.argument("name")
@click.argument("kind", type=click.Choice(["postgres", "mysql", "files"]))
@click.option(
    "--dsn",
    help="postgres/mysql: e.g. 'host=db port=5432 dbname=shop user=reader password=${PGPASS}'.",
)
@click.option("--location", help="files: a folder or s3://bucket/prefix.")
@click.option(
    "--option", "options", multiple=True, metavar="KEY=VALUE", help="e.g. endpoint=minio:9000."
)
@pass_ctx
def catalog_add_source(
    ctx: Context,
    name: str,
    kind: str,
    dsn: str | None,
    location: str | None,
    options: tuple[str, ...],
) -> None:
    """Attach an external database read-only, or a folder or bucket of files."""
    config: dict[str, Any] = dict(parse_assignments(options))
    if dsn:
        config["dsn"] = dsn
    if location:
        config["location"] = location
    with ctx.engine() as engine:
        src = engine.add_source(name, kind, user="admin", **config)
        console.print(f"Source {src['name']} ({src['type']}) added.")


@catalog.command("promote")
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "json"]))
@pass_ctx
def catalog_promote(ctx: Context, path: str, fmt: str | None) -> None:
    """Make PATH (source.folder...) a dataset in place; Hive partitions become columns."""
    from fleuve.engine import paths

    with ctx.engine() as engine:
        ds = engine.promote(paths.parse(path), user="admin", format=fmt)
        console.print(f"{paths.render(ds.path)}: {', '.join(f.name for f in ds.fields)}")
