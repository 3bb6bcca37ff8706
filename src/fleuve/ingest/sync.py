"""Run a connection's streams into bronze as one job: attempts, retries, timeout and progress."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb

from fleuve.config import ConnectionSettings, Settings, StreamSettings
from fleuve.errors import ConfigError, FleuveError
from fleuve.ingest import sync_jobs
from fleuve.ingest.connectors import ExtractContext, connector_for
from fleuve.ingest.errors import (
    RejectedThresholdError,
    SchemaDriftError,
    SyncTimeout,
    is_transient,
)
from fleuve.ingest.load import StreamOutcome, keep_rejected, load_stream
from fleuve.ingest.state import ensure_tables
from fleuve.lake import Lake
from fleuve.metadata import Database
from fleuve.observe.logs import scrub
from fleuve.security import audit

log = logging.getLogger("fleuve.ingest")


@dataclass
class StreamProgress:
    """Live figures of one stream while it syncs."""

    stream: str
    phase: str = "waiting"
    rows: int = 0
    bytes: int = 0
    estimated_rows: int | None = None
    row_bytes: float | None = None
    percent: float | None = None
    started: float | None = None
    error: str | None = None


@dataclass
class SyncResult:
    """What one sync of a connection did."""

    job_id: int
    status: str
    records: int = 0
    bytes: int = 0
    rejected: int = 0
    attempts: int = 0
    seconds: float = 0.0
    streams: dict[str, StreamOutcome] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        """All stream failures in one line, or None."""
        return "; ".join(f"{k}: {v}" for k, v in self.errors.items()) or None


class _Run:
    """The mutable state of one sync: sessions to interrupt, progress, cancellation."""

    def __init__(
        self,
        streams: list[StreamSettings],
        on_progress: Callable[[list[StreamProgress]], None] | None,
    ) -> None:
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.timed_out = False
        self.lock = threading.Lock()
        self.sessions: dict[str, duckdb.DuckDBPyConnection] = {}
        self.progress = {s.name: StreamProgress(s.name) for s in streams}
        self.on_progress = on_progress

    def session(self, stream: str) -> Callable[[duckdb.DuckDBPyConnection | None], None]:
        """A callback that records (or forgets) the lake session a stream's commit runs on."""

        def register(con: duckdb.DuckDBPyConnection | None) -> None:
            with self.lock:
                if con is None:
                    self.sessions.pop(stream, None)
                    return
                # query_progress() needs the progress bar on, without printing it.
                con.execute("SET enable_progress_bar = true")
                con.execute("SET enable_progress_bar_print = false")
                con.execute("SET progress_bar_time = 0")
                self.sessions[stream] = con

        return register

    def interrupt(self) -> None:
        """Cancel the sync: stop every running statement; connectors see `cancelled`."""
        self.cancelled.set()
        with self.lock:
            for con in self.sessions.values():
                with contextlib.suppress(duckdb.Error):
                    con.interrupt()

    def poll(self) -> None:
        """Refresh each running stream's figures from DuckDB's progress and report them."""
        with self.lock:
            for name, con in self.sessions.items():
                p = self.progress[name]
                with contextlib.suppress(duckdb.Error, RuntimeError):
                    pct = con.query_progress()
                    if pct >= 0:
                        p.percent = pct
                        if p.estimated_rows:
                            p.rows = max(p.rows, int(p.estimated_rows * pct / 100))
                            if p.row_bytes:
                                p.bytes = int(p.rows * p.row_bytes)
        if self.on_progress:
            self.on_progress(list(self.progress.values()))


def sync_connection(
    settings: Settings,
    lake: Lake,
    db: Database,
    name: str,
    *,
    streams: list[str] | None = None,
    full_refresh: bool = False,
    on_progress: Callable[[list[StreamProgress]], None] | None = None,
    username: str | None = None,
    origin: audit.Origin | None = None,
) -> SyncResult:
    """Sync connection `name` into bronze as one job; each stream commits atomically with its cursor.

    The sync's start is audited once, here, as asked by `username` from `origin` (the interface
    and address; by default the origin of the calling context).
    """
    conn = settings.connection(name)
    selected = _select(conn, streams)
    started = time.monotonic()
    bronze = ensure_tables(lake)
    job_id = sync_jobs.start_job(
        db, name, {"streams": [s.name for s in selected], "full_refresh": full_refresh}
    )
    _audit(db, name, job_id, username, origin or audit.origin())
    result = SyncResult(job_id=job_id, status="running")
    run = _Run(selected, on_progress)
    ctx_log = {"job_id": job_id, "connection_id": name}
    log.info("sync started", extra={**ctx_log, "streams": [s.name for s in selected]})

    watchdog = threading.Thread(
        target=_watch, args=(run, conn), name=f"sync-{job_id}-watch", daemon=True
    )
    watchdog.start()
    scratch = settings.state_dir / "tmp" / f"sync-{job_id}"
    connector = connector_for(conn, settings)
    con = lake.connect()
    pending = list(selected)
    opened = False
    try:
        while pending:
            result.attempts += 1
            number = result.attempts
            sync_jobs.start_attempt(db, job_id, number)
            errors: dict[str, BaseException] = {}
            outcomes: dict[str, StreamOutcome] = {}
            if not opened:
                try:
                    connector.open(con)
                    opened = True
                except Exception as exc:
                    errors = {s.name: exc for s in pending}

            def one(
                stream: StreamSettings,
                number: int = number,
                errors: dict[str, BaseException] = errors,
                outcomes: dict[str, StreamOutcome] = outcomes,
            ) -> None:
                progress = run.progress[stream.name]
                progress.phase, progress.started, progress.error = "reading", time.monotonic(), None
                progress.rows = progress.bytes = 0

                def on_rows(rows: int, nbytes: int) -> None:
                    progress.rows += rows
                    progress.bytes += nbytes

                def on_estimate(rows: int | None, width: float | None) -> None:
                    progress.estimated_rows, progress.row_bytes = rows, width

                ctx = ExtractContext(
                    scratch=scratch,
                    cancelled=run.cancelled,
                    on_rows=on_rows,
                    on_estimate=on_estimate,
                )
                sync_id = f"{job_id}-{number}-{stream.name}"
                try:
                    outcome = load_stream(
                        lake,
                        connector,
                        conn,
                        stream,
                        sync_id=sync_id,
                        full_refresh=full_refresh,
                        ctx=ctx,
                        bronze=bronze,
                        on_session=run.session(stream.name),
                    )
                except Exception as exc:
                    if isinstance(exc, RejectedThresholdError):
                        keep_rejected(lake, conn, stream, sync_id, getattr(exc, "sample", []))
                    if run.timed_out:
                        exc = SyncTimeout(
                            f"connection '{name}' ran past its timeout of {conn.timeout_minutes:g} "
                            f"minutes; stream '{stream.name}' was stopped and nothing of it committed",
                            "raise timeout_minutes for this connection, or sync fewer rows at a time",
                        )
                    errors[stream.name] = exc
                    progress.phase, progress.error = "failed", _message(exc)
                    log.warning(
                        "stream failed",
                        extra={
                            **ctx_log,
                            "stream": stream.name,
                            "attempt": number,
                            "error": _message(exc),
                        },
                    )
                    return
                outcomes[stream.name] = outcome
                progress.phase, progress.rows, progress.percent = (
                    "committed",
                    outcome.records_committed,
                    100.0,
                )
                progress.bytes = max(progress.bytes, outcome.bytes_read)
                log.info(
                    "stream committed",
                    extra={**ctx_log, "stream": stream.name, **outcome.as_dict()},
                )

            if opened:
                with ThreadPoolExecutor(max_workers=min(conn.threads, len(pending))) as pool:
                    list(pool.map(one, pending))
            result.streams.update(outcomes)
            stats = {
                "streams": {
                    **{k: {**v.as_dict(), "status": "succeeded"} for k, v in outcomes.items()},
                    **{k: {"status": "failed", "error": _message(e)} for k, e in errors.items()},
                }
            }
            sync_jobs.finish_attempt(
                db,
                job_id,
                number,
                status="failed" if errors else "succeeded",
                records=sum(o.records_committed for o in outcomes.values()),
                bytes_read=sum(o.bytes_read for o in outcomes.values()),
                stats=stats,
                failures=[_failure(stream, exc) for stream, exc in errors.items()],
                partial_success=bool(errors and outcomes),
            )
            result.errors = {k: _message(e) for k, e in errors.items()}
            retry = [s for s in pending if s.name in errors and is_transient(errors[s.name])]
            if (
                not errors
                or len(retry) < len(errors)
                or number > conn.max_retries
                or run.cancelled.is_set()
            ):
                break
            sync_jobs.finish_job(db, job_id, "incomplete")
            delay = min(600.0, conn.retry_backoff_seconds * 2 ** (number - 1))
            log.info(
                "retrying failed streams",
                extra={**ctx_log, "attempt": number + 1, "delay_s": delay},
            )
            if run.cancelled.wait(delay):
                break
            pending = retry
    finally:
        run.done.set()
        if opened:
            with contextlib.suppress(Exception):
                connector.close(con)
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    result.records = sum(o.records_committed for o in result.streams.values())
    result.bytes = sum(o.bytes_read for o in result.streams.values())
    result.rejected = sum(o.records_rejected for o in result.streams.values())
    result.status = "failed" if result.errors else "succeeded"
    result.seconds = time.monotonic() - started
    sync_jobs.finish_job(db, job_id, result.status)
    log.info(
        "sync finished",
        extra={
            **ctx_log,
            "status": result.status,
            "records_synced": result.records,
            "seconds": round(result.seconds, 3),
        },
    )
    if on_progress:
        on_progress(list(run.progress.values()))
    return result


def _audit(db: Database, name: str, job_id: int, username: str | None, where: audit.Origin) -> None:
    """Record the start of a sync in the audit trail, with who asked for it and from where."""
    detail: dict[str, Any] = {"job_id": job_id}
    if where.address is not None:
        detail["address"] = where.address
    audit.record(
        db, "connection", "sync", username=username, client=where.client, target=name, **detail
    )


def _select(conn: ConnectionSettings, names: list[str] | None) -> list[StreamSettings]:
    if not names:
        return list(conn.streams)
    known = {s.name: s for s in conn.streams}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(
            f"connection '{conn.name}' has no stream named {', '.join(repr(m) for m in missing)}",
            f"pick among: {', '.join(known) or 'none declared'}",
        )
    return [known[n] for n in names]


def _watch(run: _Run, conn: ConnectionSettings) -> None:
    """Report progress twice a second and stop the sync cleanly at its deadline."""
    deadline = time.monotonic() + conn.timeout_minutes * 60
    while not run.done.wait(0.5):
        run.poll()
        if time.monotonic() >= deadline and not run.cancelled.is_set():
            run.timed_out = True
            log.warning("sync timed out", extra={"connection_id": conn.name})
            run.interrupt()


def _message(exc: BaseException) -> str:
    if isinstance(exc, FleuveError):
        return scrub(exc.message + (f" (fix: {exc.fix})" if exc.fix else ""))
    return scrub(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _failure(stream: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, (SchemaDriftError, RejectedThresholdError)):
        kind, origin = "config_error", "destination"
    elif isinstance(exc, ConfigError) or (isinstance(exc, FleuveError) and not is_transient(exc)):
        kind, origin = "config_error", "source"
    elif is_transient(exc):
        kind, origin = "transient_error", "source"
    else:
        kind, origin = "system_error", "replication"
    return {
        "failureOrigin": origin,
        "failureType": kind,
        "externalMessage": _message(exc),
        "stream": stream,
        "retryable": is_transient(exc),
        "timestamp": int(time.time()),
    }
