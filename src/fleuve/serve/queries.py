"""Queries for every protocol: run through the engine, audited, cancelled on shutdown."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from fleuve.engine import FINAL_STATES, AccessDenied, Engine, QueryCanceled
from fleuve.errors import FleuveError
from fleuve.project import Project
from fleuve.security.audit import AuditWriter

log = logging.getLogger("fleuve.serve")

# How often the audit watcher looks at asynchronous (REST) jobs.
WATCH_INTERVAL = 0.2
# Statements that change grants or roles are audited as grant changes too.
_GRANT = re.compile(r"^\s*(GRANT|REVOKE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Caller:
    """Who runs a query, from where, through which protocol."""

    username: str
    client: str | None = None
    protocol: str = "rest"


class Stream:
    """A running query: its schema now, its record batches as the engine produces them.

    Iterating reads the batches once; the query is audited when they end, fail, or when
    `close()` stops it early (a client that went away, a shutdown, a ticket never fetched).
    """

    def __init__(
        self,
        queries: Queries,
        job_id: str,
        schema: pa.Schema,
        inner: Iterator[pa.RecordBatch],
        caller: Caller,
        sql: str,
        started: float,
    ) -> None:
        self.job_id = job_id
        self.schema = schema
        self.rows = 0
        self._queries = queries
        self._inner = inner
        self._caller = caller
        self._sql = sql
        self._started_at = started
        self._begun = False
        self._done = False

    @property
    def batches(self) -> Iterator[pa.RecordBatch]:
        """The record batches (an iterator over this stream)."""
        return self

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._done:
            raise StopIteration
        if self._queries.stopping:
            # An error, not the end of the stream: a cut result must not look complete.
            self._stop("the server is shutting down")
            raise QueryCanceled(
                f"job {self.job_id} was cancelled: the server is shutting down",
                "run the query again once the server is back",
            )
        self._begun = True
        try:
            batch = next(self._inner)
        except StopIteration:
            self._end("ok")
            raise
        except QueryCanceled as exc:
            self._end("cancelled", _first_line(exc))
            raise
        except Exception as exc:
            self._end("failed", _first_line(exc))
            raise
        self.rows += batch.num_rows
        return batch

    def close(self) -> None:
        """Stop the query if it is still producing rows."""
        if not self._done:
            self._stop("the client stopped reading")

    def _stop(self, why: str) -> None:
        if not self._begun:
            # The engine's stream releases its cursor only once started: interrupt, then start it.
            with contextlib.suppress(Exception):
                self._queries.engine.cancel(self.job_id)
            with contextlib.suppress(Exception):
                next(self._inner)
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()
        self._end("cancelled", why)

    def _end(self, outcome: str, error: str | None = None) -> None:
        self._done = True
        self._queries._ended(self, self._caller, self._sql, self._started_at, outcome, error)


@dataclass
class _Watched:
    caller: Caller
    sql: str
    started: float = field(default_factory=time.monotonic)


class Queries:
    """The one door to the engine for REST, Flight and Flight SQL."""

    def __init__(self, project: Project, engine: Engine | None = None) -> None:
        self.project = project
        self.engine = engine or Engine(project, keep_answers=project.settings.server.keep_answers)
        self.audit = AuditWriter(project.db)
        self._lock = threading.Lock()
        self._running: dict[str, Stream] = {}
        self._watched: dict[str, _Watched] = {}
        self._stopping = threading.Event()
        self._closed = False
        self._watcher = threading.Thread(target=self._watch, name="fleuve-jobs", daemon=True)
        self._watcher.start()

    @property
    def stopping(self) -> bool:
        """True once shutdown began: no new query starts."""
        return self._stopping.is_set()

    def stream(
        self,
        sql: str,
        caller: Caller,
        *,
        default_schema: str | None = None,
        batch_rows: int = 65_536,
    ) -> Stream:
        """Start `sql` now; its batches flow as the engine produces them, audited at the end."""
        self._refuse_when_stopping()
        started = time.monotonic()
        try:
            result = self.engine.execute(
                sql,
                user=caller.username,
                default_schema=default_schema,
                batch_rows=batch_rows,
                query_type="REST" if caller.protocol == "rest" else "FLIGHT",
            )
        except Exception as exc:
            outcome = "denied" if isinstance(exc, AccessDenied) else "failed"
            self._audit(caller, sql, None, started, outcome=outcome, error=_first_line(exc))
            raise
        stream = Stream(self, result.job_id, result.schema, result.batches, caller, sql, started)
        with self._lock:
            self._running[result.job_id] = stream
        return stream

    def _ended(
        self,
        stream: Stream,
        caller: Caller,
        sql: str,
        started: float,
        outcome: str,
        error: str | None,
    ) -> None:
        with self._lock:
            self._running.pop(stream.job_id, None)
        self._audit(
            caller, sql, stream.job_id, started, outcome=outcome, error=error, rows=stream.rows
        )

    def submit(self, sql: str, caller: Caller, context: list[str] | None = None) -> str:
        """Start `sql` as an asynchronous job (the REST flow); audited when it ends."""
        self._refuse_when_stopping()
        job_id = self.engine.submit(sql, user=caller.username, context=context)
        with self._lock:
            self._watched[job_id] = _Watched(caller, sql)
        return job_id

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL):
            self._audit_finished_jobs()

    def _audit_finished_jobs(self) -> None:
        with self._lock:
            watched = list(self._watched.items())
        for job_id, w in watched:
            try:
                job = self.engine.job(job_id)
            except FleuveError:
                job = None
            if job is not None and job.state not in FINAL_STATES:
                continue
            with self._lock:
                self._watched.pop(job_id, None)
            state = job.state if job is not None else "FAILED"
            outcome = {"COMPLETED": "ok", "CANCELED": "cancelled"}.get(state, "failed")
            error, rows = (job.error, job.row_count) if job is not None else ("job lost", 0)
            self._audit(w.caller, w.sql, job_id, w.started, outcome=outcome, error=error, rows=rows)

    def _audit(
        self,
        caller: Caller,
        sql: str,
        job_id: str | None,
        started: float,
        *,
        outcome: str,
        error: str | None = None,
        rows: int = 0,
    ) -> None:
        datasets, chosen = [], []
        if job_id is not None:
            try:
                job = self.engine.job(job_id)
                datasets = job.datasets
                chosen = [r for r in job.reflections if r.get("relationship") == "CHOSEN"]
            except FleuveError:  # the engine no longer knows the job
                pass
        detail = {
            "sql": sql,
            "job_id": job_id,
            "objects": datasets,
            "rows": rows,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "reflections": [r.get("reflectionId") for r in chosen],
            "error": error,
        }
        who = {"username": caller.username, "client": caller.client, "outcome": outcome}
        self.audit.submit("query", caller.protocol, target=sql[:255], **who, **detail)
        if outcome == "ok" and _GRANT.match(sql):
            self.audit.submit("grant", sql.split(None, 1)[0].lower(), target=sql[:255], **who)

    def cancel_all(self) -> None:
        """Refuse new queries and cancel the running ones (shutdown)."""
        self._stopping.set()
        with self._lock:
            job_ids = [*self._running, *self._watched]
        for job_id in job_ids:
            try:
                self.engine.cancel(job_id)
            except Exception as exc:
                log.warning("could not cancel job %s: %s", job_id, _first_line(exc))

    def close(self) -> None:
        """Cancel what runs, audit it, and stop the engine (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.cancel_all()
        self._watcher.join(timeout=5)
        self._audit_finished_jobs()
        self.engine.close()
        self.audit.close()

    def _refuse_when_stopping(self) -> None:
        if self._stopping.is_set():
            raise FleuveError("the server is shutting down", "retry once it is back")


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0]
