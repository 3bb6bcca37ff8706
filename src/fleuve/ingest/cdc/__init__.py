"""Change data capture: streams read from a database's transaction log into bronze.

`sync_cdc` runs a connection's `sync_mode: cdc` streams once: the initial snapshot when there is
none, then the changes up to the log's end at start. `run_continuous` keeps streaming them
until asked to stop, for the scheduler and `fleuve serve`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from fleuve.config import ConnectionSettings, StreamSettings
from fleuve.ingest import sync_jobs
from fleuve.ingest.cdc.changes import CaptureStats, changes_table, current_view
from fleuve.ingest.cdc.errors import CaptureError, PositionLost
from fleuve.ingest.cdc.mysql import MySQLCapture
from fleuve.ingest.cdc.postgres import PostgresCapture
from fleuve.ingest.errors import is_transient
from fleuve.lake import Lake

if TYPE_CHECKING:
    from fleuve.config import Settings
    from fleuve.metadata import Database
    from fleuve.project import Project

__all__ = [
    "CaptureError",
    "CaptureStats",
    "PositionLost",
    "capture_for",
    "cdc_streams",
    "changes_table",
    "check_capture",
    "current_view",
    "run_continuous",
    "sync_cdc",
]

log = logging.getLogger("fleuve.ingest.cdc")


def cdc_streams(conn: ConnectionSettings) -> list[StreamSettings]:
    """The connection's streams read from its transaction log."""
    return [s for s in conn.streams if s.sync_mode == "cdc"]


def capture_for(
    lake: Lake, conn: ConnectionSettings, **tuning: float
) -> PostgresCapture | MySQLCapture:
    """The capture of `conn`'s cdc streams, for its kind of source."""
    kind = str(conn.source.get("type"))
    streams = cdc_streams(conn)
    if not streams:
        raise CaptureError(
            f"connection '{conn.name}' has no stream with sync_mode: cdc",
            "set sync_mode: cdc on the streams to read from the transaction log",
        )
    if kind in ("postgres", "postgresql"):
        return PostgresCapture(lake, conn, streams, **tuning)  # type: ignore[arg-type]
    if kind in ("mysql", "mariadb"):
        return MySQLCapture(lake, conn, streams, **tuning)  # type: ignore[arg-type]
    raise CaptureError(
        f"connection '{conn.name}': change data capture reads PostgreSQL and MySQL/MariaDB "
        f"sources, not '{kind}'",
        "use sync_mode: incremental with a cursor_field for this source",
    )


def check_capture(lake: Lake, conn: ConnectionSettings) -> list[tuple[str, str]]:
    """What `conn`'s source lacks for its cdc streams: (problem, fix) pairs, empty when ready."""
    return capture_for(lake, conn).check()


def sync_cdc(
    settings: Settings,
    lake: Lake,
    db: Database,
    name: str,
    *,
    full_refresh: bool = False,
    **tuning: float,
) -> tuple[int, CaptureStats]:
    """Capture connection `name`'s changes up to the log's end at start, as one sync job.

    Returns the job's id and what landed. `full_refresh` takes a new snapshot (a new slot).
    """
    conn = settings.connection(name)
    capture = capture_for(lake, conn, **tuning)
    streams = [s.name for s in cdc_streams(conn)]
    job_id = sync_jobs.start_job(
        db, name, {"streams": streams, "full_refresh": full_refresh, "cdc": True}
    )
    sync_jobs.start_attempt(db, job_id, 1)
    started = time.monotonic()
    try:
        stats = capture.run(until_caught_up=True, full_refresh=full_refresh)
    except Exception as exc:
        sync_jobs.finish_attempt(
            db,
            job_id,
            1,
            status="failed",
            records=0,
            bytes_read=0,
            stats={},
            failures=[{"stream": ", ".join(streams), "error": str(exc).splitlines()[0]}],
        )
        sync_jobs.finish_job(db, job_id, "failed")
        raise
    sync_jobs.finish_attempt(
        db,
        job_id,
        1,
        status="succeeded",
        records=stats.changes + stats.snapshot_rows,
        bytes_read=0,
        stats={**asdict(stats), "seconds": round(time.monotonic() - started, 3)},
        failures=[],
    )
    sync_jobs.finish_job(db, job_id, "succeeded")
    log.info(
        "change capture synced", extra={"job_id": job_id, "connection_id": name, **asdict(stats)}
    )
    return job_id, stats


def run_continuous(
    project: Project,
    connection: str,
    stop_event: threading.Event,
    *,
    max_backoff_seconds: float = 60.0,
    **tuning: float,
) -> None:
    """Stream `connection`'s changes into bronze until `stop_event` is set.

    Micro-batches land every `flush_seconds` (1) or `flush_rows` (50,000) changes, whichever
    comes first. A source or lake that fails for a passing reason is retried with a growing
    pause; any other failure (a lost position, a refused setting) is raised.
    """
    conn = project.settings.connection(connection)
    delay = 1.0
    while not stop_event.is_set():
        capture = capture_for(project.lake, conn, **tuning)
        try:
            capture.run(stop=stop_event.is_set, until_caught_up=False)
            delay = 1.0
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "change capture interrupted, resuming",
                extra={"connection_id": connection, "error": str(exc).splitlines()[0]},
            )
            stop_event.wait(delay)
            delay = min(max_backoff_seconds, delay * 2)
