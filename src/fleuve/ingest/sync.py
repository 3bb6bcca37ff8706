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
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from fleuve.config import ConnectionSettings, Settings, StreamSettings
from fleuve.errors import ConfigError, FleuveError
from fleuve.ingest import sync_jobs
from fleuve.ingest.connectors import Connector, ExtractContext, connector_for
from fleuve.ingest.errors import (
    IngestError,
    RejectedThresholdError,
    SchemaDriftError,
    SyncCancelled,
    SyncTimeout,
    is_transient,
)
from fleuve.ingest.load import StreamOutcome, keep_rejected, load_stream
from fleuve.ingest.state import ensure_tables
from fleuve.lake import Lake
from fleuve.logs.local import scrub
from fleuve.metadata import Database
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
        self.stopped = False
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
    stop: threading.Event | None = None,
) -> SyncResult:
    """Sync connection `name` into bronze as one job; each stream commits atomically with its cursor.

    The sync's start is audited once, here, as asked by `username` from `origin` (the interface
    and address; by default the origin of the calling context). Setting `stop` cancels it: the
    streams not committed yet are interrupted and roll back, and the job ends `cancelled`.
    """
    conn = settings.connection(name)
    selected = _select(conn, streams)
    started = time.monotonic()
    bronze = ensure_tables(lake)
    job_id = _start_job(db, conn, selected, full_refresh, username, origin or audit.origin())
    run = _Run(selected, on_progress)
    _start_watchdog(run, conn, stop, job_id)
    sync = _Sync(
        lake=lake,
        db=db,
        conn=conn,
        job_id=job_id,
        full_refresh=full_refresh,
        bronze=bronze,
        run=run,
        scratch=settings.state_dir / "tmp" / f"sync-{job_id}",
        connector=connector_for(conn, settings),
        con=lake.connect(),
    )
    result = SyncResult(job_id=job_id, status="running")
    try:
        _run_attempts(sync, selected, result)
    finally:
        _close(sync)
    _finish(sync, result, started)
    return result


@dataclass
class _Sync:
    """One sync job of a connection: what its attempts and streams share."""

    lake: Lake
    db: Database
    conn: ConnectionSettings
    job_id: int
    full_refresh: bool
    # The names of bronze's tables when the sync started.
    bronze: set[str]
    run: _Run
    scratch: Path
    connector: Connector
    # The session the connector opens the source on (an attached database, a secret).
    con: duckdb.DuckDBPyConnection
    opened: bool = False

    @property
    def log_context(self) -> dict[str, Any]:
        """The fields every log line of the sync carries."""
        return {"job_id": self.job_id, "connection_id": self.conn.name}


def _start_job(
    db: Database,
    conn: ConnectionSettings,
    selected: list[StreamSettings],
    full_refresh: bool,
    username: str | None,
    where: audit.Origin,
) -> int:
    """Record the job, audit who started it, and log its start; the job's id."""
    names = [s.name for s in selected]
    job_id = sync_jobs.start_job(db, conn.name, {"streams": names, "full_refresh": full_refresh})
    _audit(db, conn.name, job_id, username, where)
    log.info("sync started", extra={"job_id": job_id, "connection_id": conn.name, "streams": names})
    return job_id


def _start_watchdog(
    run: _Run, conn: ConnectionSettings, stop: threading.Event | None, job_id: int
) -> None:
    """Start the thread that reports progress and stops the sync at its deadline or on `stop`."""
    threading.Thread(
        target=_watch, args=(run, conn, stop), name=f"sync-{job_id}-watch", daemon=True
    ).start()


def _run_attempts(sync: _Sync, selected: list[StreamSettings], result: SyncResult) -> None:
    """Sync the streams; then, after a backoff, those that failed for a reason that may pass."""
    pending = list(selected)
    while pending:
        result.attempts += 1
        outcomes, errors = _attempt(sync, pending, result.attempts)
        _record_attempt(sync, result, result.attempts, outcomes, errors)
        pending = _to_retry(sync, pending, errors, result.attempts)


def _attempt(
    sync: _Sync, pending: list[StreamSettings], number: int
) -> tuple[dict[str, StreamOutcome], dict[str, BaseException]]:
    """Open the source once, then load the pending streams side by side; outcomes and errors."""
    sync_jobs.start_attempt(sync.db, sync.job_id, number)
    if not sync.opened:
        try:
            sync.connector.open(sync.con)
            sync.opened = True
        except Exception as exc:
            return {}, {s.name: exc for s in pending}
    with ThreadPoolExecutor(max_workers=min(sync.conn.threads, len(pending))) as pool:
        done = list(pool.map(partial(_sync_stream, sync, number), pending))
    outcomes = {
        s.name: r for s, r in zip(pending, done, strict=True) if isinstance(r, StreamOutcome)
    }
    errors = {s.name: r for s, r in zip(pending, done, strict=True) if isinstance(r, BaseException)}
    return outcomes, errors


def _sync_stream(sync: _Sync, number: int, stream: StreamSettings) -> StreamOutcome | BaseException:
    """Load one stream, keeping its progress figures; its outcome, or the error that stopped it."""
    progress = sync.run.progress[stream.name]
    progress.phase, progress.started, progress.error = "reading", time.monotonic(), None
    progress.rows = progress.bytes = 0
    sync_id = f"{sync.job_id}-{number}-{stream.name}"
    try:
        outcome = load_stream(
            sync.lake,
            sync.connector,
            sync.conn,
            stream,
            sync_id=sync_id,
            full_refresh=sync.full_refresh,
            ctx=_extract_context(sync, progress),
            bronze=sync.bronze,
            on_session=sync.run.session(stream.name),
        )
    except Exception as exc:
        if isinstance(exc, RejectedThresholdError):
            keep_rejected(sync.lake, sync.conn, stream, sync_id, getattr(exc, "sample", []))
        error = _stopped(sync, stream) or exc
        progress.phase, progress.error = "failed", _message(error)
        log.warning(
            "stream failed",
            extra={
                **sync.log_context,
                "stream": stream.name,
                "attempt": number,
                "error": _message(error),
            },
        )
        return error
    progress.phase, progress.rows, progress.percent = "committed", outcome.records_committed, 100.0
    progress.bytes = max(progress.bytes, outcome.bytes_read)
    log.info(
        "stream committed", extra={**sync.log_context, "stream": stream.name, **outcome.as_dict()}
    )
    return outcome


def _extract_context(sync: _Sync, progress: StreamProgress) -> ExtractContext:
    """What the connector may use while reading a stream; its figures go to `progress`."""

    def on_rows(rows: int, nbytes: int) -> None:
        progress.rows += rows
        progress.bytes += nbytes

    def on_estimate(rows: int | None, width: float | None) -> None:
        progress.estimated_rows, progress.row_bytes = rows, width

    return ExtractContext(
        scratch=sync.scratch,
        cancelled=sync.run.cancelled,
        on_rows=on_rows,
        on_estimate=on_estimate,
    )


def _stopped(sync: _Sync, stream: StreamSettings) -> IngestError | None:
    """The error to report for a stream the watchdog stopped (timeout, cancel); None otherwise."""
    name = sync.conn.name
    if sync.run.timed_out:
        return SyncTimeout(
            f"connection '{name}' ran past its timeout of {sync.conn.timeout_minutes:g} "
            f"minutes; stream '{stream.name}' was stopped and nothing of it committed",
            "raise timeout_minutes for this connection, or sync fewer rows at a time",
        )
    if sync.run.stopped:
        return SyncCancelled(
            f"the sync of connection '{name}' was cancelled; stream "
            f"'{stream.name}' was stopped and nothing of it committed",
            "sync it again",
        )
    return None


def _record_attempt(
    sync: _Sync,
    result: SyncResult,
    number: int,
    outcomes: dict[str, StreamOutcome],
    errors: dict[str, BaseException],
) -> None:
    """Record the attempt's figures and failures in the job's history and in `result`."""
    result.streams.update(outcomes)
    stats = {
        "streams": {
            **{k: {**v.as_dict(), "status": "succeeded"} for k, v in outcomes.items()},
            **{k: {"status": "failed", "error": _message(e)} for k, e in errors.items()},
        }
    }
    sync_jobs.finish_attempt(
        sync.db,
        sync.job_id,
        number,
        status="failed" if errors else "succeeded",
        records=sum(o.records_committed for o in outcomes.values()),
        bytes_read=sum(o.bytes_read for o in outcomes.values()),
        stats=stats,
        failures=[_failure(stream, exc) for stream, exc in errors.items()],
        partial_success=bool(errors and outcomes),
    )
    result.errors = {k: _message(e) for k, e in errors.items()}


def _to_retry(
    sync: _Sync, pending: list[StreamSettings], errors: dict[str, BaseException], number: int
) -> list[StreamSettings]:
    """The streams to sync again, after a backoff: none unless every failure may pass."""
    retry = [s for s in pending if s.name in errors and is_transient(errors[s.name])]
    if (
        not errors
        or len(retry) < len(errors)
        or number > sync.conn.max_retries
        or sync.run.cancelled.is_set()
    ):
        return []
    sync_jobs.finish_job(sync.db, sync.job_id, "incomplete")
    delay = min(600.0, sync.conn.retry_backoff_seconds * 2 ** (number - 1))
    log.info(
        "retrying failed streams",
        extra={**sync.log_context, "attempt": number + 1, "delay_s": delay},
    )
    if sync.run.cancelled.wait(delay):
        return []
    return retry


def _close(sync: _Sync) -> None:
    """Stop the watchdog, close the source and the session, delete the scratch files."""
    sync.run.done.set()
    if sync.opened:
        with contextlib.suppress(Exception):
            sync.connector.close(sync.con)
    sync.con.close()
    shutil.rmtree(sync.scratch, ignore_errors=True)


def _finish(sync: _Sync, result: SyncResult, started: float) -> None:
    """Total the streams' figures, settle the job's status and report it."""
    result.records = sum(o.records_committed for o in result.streams.values())
    result.bytes = sum(o.bytes_read for o in result.streams.values())
    result.rejected = sum(o.records_rejected for o in result.streams.values())
    result.status = "failed" if result.errors else "succeeded"
    if result.errors and sync.run.stopped:
        result.status = "cancelled"
    result.seconds = time.monotonic() - started
    sync_jobs.finish_job(sync.db, sync.job_id, result.status)
    # A failed sync is an ERROR record: what log searches and alerts on failures look for.
    log.log(
        logging.ERROR if result.status == "failed" else logging.INFO,
        "sync finished",
        extra={
            **sync.log_context,
            "status": result.status,
            "records_synced": result.records,
            "bytes_synced": result.bytes,
            "seconds": round(result.seconds, 3),
        },
    )
    if sync.run.on_progress:
        sync.run.on_progress(list(sync.run.progress.values()))


def _audit(db: Database, name: str, job_id: int, username: str | None, where: audit.Origin) -> None:
    """Record the start of a sync in the audit trail, with who asked for it and from where."""
    detail: dict[str, Any] = {"job_id": job_id}
    if where.address is not None:
        detail["address"] = where.address
    audit.record(
        db, "connection", "sync", username=username, client=where.client, target=name, **detail
    )


def _select(conn: ConnectionSettings, names: list[str] | None) -> list[StreamSettings]:
    """The streams to sync: those named, or all of the connection's."""
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


def _watch(run: _Run, conn: ConnectionSettings, stop: threading.Event | None) -> None:
    """Report progress twice a second; stop the sync cleanly at its deadline or on `stop`."""
    deadline = time.monotonic() + conn.timeout_minutes * 60
    while not run.done.wait(0.5):
        run.poll()
        if run.cancelled.is_set():
            continue
        if time.monotonic() >= deadline:
            run.timed_out = True
            log.warning("sync timed out", extra={"connection_id": conn.name})
            run.interrupt()
        elif stop is not None and stop.is_set():
            run.stopped = True
            log.warning("sync cancelled", extra={"connection_id": conn.name})
            run.interrupt()


def _message(exc: BaseException) -> str:
    """What went wrong in one line, with the fix when Fleuve knows it; no secrets."""
    if isinstance(exc, FleuveError):
        return scrub(exc.message + (f" (fix: {exc.fix})" if exc.fix else ""))
    return scrub(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _failure(stream: str, exc: BaseException) -> dict[str, Any]:
    """A stream's failure as Airbyte's API reports one (origin, type, message)."""
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
