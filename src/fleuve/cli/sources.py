"""`fleuve ingest`: sources into bronze — check and discover sources, sync connections, and
the sync jobs that record each sync."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click
from rich import box
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleuve.cli.context import Context, FleuveGroup, as_user_option, check_user, console, pass_ctx
from fleuve.config import ConnectionSettings
from fleuve.errors import FleuveError
from fleuve.plugins import source_services


@click.group(cls=FleuveGroup)
def ingest() -> None:
    """Ingestion: check sources, sync connections into bronze, list the sync jobs.

    `fleuve sync`, `fleuve jobs` and `fleuve source` are short for the commands here.
    """


@ingest.command()
@click.argument("connection")
@click.option("--stream", "streams", multiple=True, help="Sync only this stream (repeatable).")
@click.option(
    "--full-refresh", is_flag=True, help="Ignore saved cursors and read every stream in full."
)
@as_user_option
@pass_ctx
def sync(
    ctx: Context,
    connection: str,
    streams: tuple[str, ...],
    full_refresh: bool,
    as_user: str | None,
) -> None:
    """Sync one CONNECTION's streams into bronze, showing rows, MB and rows/s as they go."""
    from fleuve.ingest import StreamProgress, sync_connection

    project = ctx.project()
    check_user(project, as_user, "SYNC", "starting a sync")
    conn = project.settings.connection(connection)
    if _capture_changes(project, conn, streams, full_refresh):
        streams = tuple(
            s.name for s in conn.streams if s.sync_mode != "cdc" and s.name in (streams or [s.name])
        )
        if not streams:
            return
    with (
        source_services(project.settings),
        # Sized to fit an 80-column terminal with stream names up to 16 characters.
        Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(bar_width=10),
            TextColumn(
                "{task.fields[rows]:>11} rows {task.fields[mb]:>8} MB {task.fields[rate]:>12}"
            ),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        tasks: dict[str, Any] = {}

        def show(states: list[StreamProgress]) -> None:
            for st in states:
                if st.stream not in tasks:
                    tasks[st.stream] = progress.add_task(
                        st.stream, total=100, rows="", mb="", rate=""
                    )
                elapsed = time.monotonic() - st.started if st.started else 0.0
                rate = _rate(st.rows / elapsed) + " rows/s" if elapsed > 0 and st.rows else ""
                done = 100 if st.phase in ("committed", "failed") else (st.percent or 0)
                label = f"{st.stream} ✗" if st.phase == "failed" else st.stream
                progress.update(
                    tasks[st.stream],
                    completed=done,
                    description=label,
                    rows=f"{st.rows:,}" if st.rows else "",
                    mb=f"{st.bytes / 1e6:,.1f}" if st.bytes else "",
                    rate=rate,
                )

        result = sync_connection(
            project.settings,
            project.lake,
            project.db,
            connection,
            streams=list(streams) or None,
            full_refresh=full_refresh,
            on_progress=show,
            username=as_user,
        )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("stream", overflow="fold", min_width=14)
    for name in ("mode", "committed", "rejected", "MB", "s", "rows/s"):
        table.add_column(
            name, no_wrap=True, min_width=len(name), justify="left" if name == "mode" else "right"
        )
    drifted = any(out.schema_changes for out in result.streams.values())
    if drifted:
        table.add_column("schema changes", overflow="fold")
    for name, out in result.streams.items():
        rate = out.records_committed / out.seconds if out.seconds else 0
        table.add_row(
            name,
            out.mode.replace("full_refresh", "full")
            .replace("incremental", "incr")
            .replace("+", " "),
            f"{out.records_committed:,}",
            f"{out.records_rejected:,}",
            f"{out.bytes_read / 1e6:,.1f}",
            f"{out.seconds:.1f}",
            _rate(rate),
            *(["; ".join(out.schema_changes)] if drifted else []),
        )
    console.print(table)
    if result.status != "succeeded":
        raise FleuveError(
            f"sync of '{connection}' failed (job {result.job_id}, {result.attempts} attempt(s)): "
            + "; ".join(f"{k}: {v}" for k, v in result.errors.items()),
            "see `fleuve ingest jobs` for details, fix the cause, then sync again",
        )
    console.print(
        f"Job {result.job_id} succeeded: {result.records:,} records committed"
        + (f", {result.rejected:,} rejected (see bronze._rejected)" if result.rejected else "")
        + f" in {result.seconds:.1f}s."
    )


def _capture_changes(
    project: Any, conn: ConnectionSettings, streams: tuple[str, ...], full_refresh: bool
) -> bool:
    """Land the connection's `sync_mode: cdc` streams up to the log's end; True if it has any."""
    from fleuve.ingest.cdc import cdc_streams, sync_cdc

    logged = {s.name for s in cdc_streams(conn)}
    if not logged or (streams and not logged & set(streams)):
        return bool(logged)
    job_id, stats = sync_cdc(
        project.settings, project.lake, project.db, conn.name, full_refresh=full_refresh
    )
    console.print(
        f"Job {job_id} succeeded: change capture landed {stats.snapshot_rows:,} snapshot rows "
        f"and {stats.changes:,} changes; source position {stats.position or 'unchanged'}."
    )
    return True


def _rate(per_second: float) -> str:
    """A rate in a few characters: 2.16M, 950k, 12."""
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f}M"
    return f"{per_second / 1e3:,.0f}k" if per_second >= 1e3 else f"{per_second:,.0f}"


@ingest.command()
@click.option("--limit", default=20, show_default=True, help="How many recent jobs.")
@click.option("--connection", help="Only the jobs of this connection.")
@click.option("--json", "as_json", is_flag=True, help="Print JobInfoRead objects as JSON.")
@pass_ctx
def jobs(ctx: Context, limit: int, connection: str | None, as_json: bool) -> None:
    """List recent sync jobs with their attempts, records, duration and failure.

    A sync job records one sync of a connection. The engine's query jobs (SQL from the CLI,
    REST, Flight and dashboards) are listed by `fleuve queries`.
    """
    from fleuve.ingest import recent_jobs

    infos = recent_jobs(ctx.project().db, limit, connection)
    if as_json:
        console.print_json(json.dumps(infos))
        return
    # Tight cells, failures below: the table fits an 80-column terminal.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("job", "connection", "status", "started (UTC)", "tries", "records", "MB", "s"):
        table.add_column(
            name, no_wrap=True, justify="left" if name in ("connection", "status") else "right"
        )
    for info in infos:
        job, attempts = info["job"], [a["attempt"] for a in info["attempts"]]
        last = attempts[-1] if attempts else {}
        ended = last.get("endedAt") or job["updatedAt"]
        table.add_row(
            str(job["id"]),
            job["configId"],
            job["status"],
            datetime.fromtimestamp(job["createdAt"], UTC).strftime("%m-%d %H:%M:%S"),
            str(len(attempts)),
            f"{sum(a['recordsSynced'] for a in attempts):,}",
            f"{sum(a['bytesSynced'] for a in attempts) / 1e6:,.1f}",
            str(ended - job["createdAt"]) if ended else "",
        )
    console.print(table)
    for info in infos:
        if failure := _first_failure(info):
            console.print(f"job {info['job']['id']} failed: {failure}", markup=False)


def _first_failure(info: dict[str, Any]) -> str:
    """The message of the first failure of a job's last attempt; '' when it did not fail."""
    attempts = info["attempts"]
    summary = (attempts[-1]["attempt"].get("failureSummary") or {}) if attempts else {}
    first = (summary.get("failures") or [{}])[0]
    return first.get("externalMessage") or ""


@ingest.group()
def source() -> None:
    """Connections' sources: test them and list what they offer."""


@source.command("check")
@click.argument("connection")
@pass_ctx
def source_check(ctx: Context, connection: str) -> None:
    """Reach CONNECTION's source and report what was found, or what is wrong and how to fix it."""
    from fleuve.ingest.discover import check_connection

    project = ctx.project(check=False)
    with source_services(project.settings):
        message = check_connection(project.settings, project.lake, connection)
    console.print(f"[green]✓[/] {connection}: {message}")


@source.command("discover")
@click.argument("connection")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@pass_ctx
def source_discover(ctx: Context, connection: str, as_json: bool) -> None:
    """List CONNECTION's streams with inferred schemas and the sync modes each supports."""
    from fleuve.ingest.discover import discover_connection

    project = ctx.project(check=False)
    with source_services(project.settings):
        catalog = discover_connection(project.settings, project.lake, connection)
    if as_json:
        console.print_json(json.dumps(catalog, default=str))
        return
    for stream in catalog["streams"]:
        cols = ", ".join(f"{c['name']} {c['type']}" for c in stream["columns"])
        rows = f", ~{stream['estimated_rows']:,} rows" if stream.get("estimated_rows") else ""
        console.print(f"[bold]{stream['name']}[/]{rows}", highlight=False)
        console.print(f"  columns: {cols or '(none found)'}", highlight=False)
        console.print(f"  primary key: {', '.join(stream['primary_key']) or '-'}", highlight=False)
        console.print(
            f"  cursor candidates: {', '.join(stream['cursor_candidates']) or '-'}", highlight=False
        )
        console.print(
            f"  sync modes: {', '.join(stream['sync_modes'])} x "
            f"{', '.join(catalog['capabilities']['destination_sync_modes'])}",
            highlight=False,
        )
