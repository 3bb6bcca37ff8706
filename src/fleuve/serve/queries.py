"""Queries for every protocol: run through the engine, cancelled on shutdown.

The engine audits each query; the caller's protocol and address go down as the audit origin.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from fleuve.engine import FINAL_STATES, Engine, QueryCanceled
from fleuve.errors import FleuveError
from fleuve.project import Project
from fleuve.security import audit

log = logging.getLogger("fleuve.serve")

# How often the watcher forgets asynchronous (REST) jobs that ended.
WATCH_INTERVAL = 0.2


@dataclass(frozen=True)
class Caller:
    """Who runs a query, from where, through which protocol."""

    username: str
    client: str | None = None
    protocol: str = "rest"


class Stream:
    """A running query: its schema now, its record batches as the engine produces them.

    Iterating reads the batches once; `close()` stops the query early (a client that went
    away, a shutdown, a ticket never fetched).
    """

    def __init__(
        self, queries: Queries, job_id: str, schema: pa.Schema, inner: Iterator[pa.RecordBatch]
    ) -> None:
        self.job_id = job_id
        self.schema = schema
        self.rows = 0
        self._queries = queries
        self._inner = inner
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
        except BaseException:
            self._end()
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
        log.info("job %s stopped: %s", self.job_id, why)
        self._end()

    def _end(self) -> None:
        self._done = True
        self._queries._ended(self)


class Queries:
    """The one door to the engine for REST, Flight and Flight SQL."""

    def __init__(self, project: Project, engine: Engine | None = None) -> None:
        self.project = project
        self.engine = engine or Engine(project, keep_answers=project.settings.server.keep_answers)
        self._lock = threading.Lock()
        self._running: dict[str, Stream] = {}
        self._watched: set[str] = set()
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
        """Start `sql` now; its batches flow as the engine produces them."""
        self._refuse_when_stopping()
        with _acting_for(caller):
            result = self.engine.execute(
                sql,
                user=caller.username,
                default_schema=default_schema,
                batch_rows=batch_rows,
                query_type="REST" if caller.protocol == "rest" else "FLIGHT",
            )
        stream = Stream(self, result.job_id, result.schema, result.batches)
        with self._lock:
            self._running[result.job_id] = stream
        return stream

    def _ended(self, stream: Stream) -> None:
        with self._lock:
            self._running.pop(stream.job_id, None)

    def submit(self, sql: str, caller: Caller, context: list[str] | None = None) -> str:
        """Start `sql` as an asynchronous job (the REST flow)."""
        self._refuse_when_stopping()
        with _acting_for(caller):
            job_id = self.engine.submit(sql, user=caller.username, context=context)
        with self._lock:
            self._watched.add(job_id)
        return job_id

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_INTERVAL):
            self._forget_finished_jobs()

    def _forget_finished_jobs(self) -> None:
        with self._lock:
            watched = list(self._watched)
        for job_id in watched:
            try:
                if self.engine.job(job_id).state not in FINAL_STATES:
                    continue
            except FleuveError:  # the engine no longer knows the job
                pass
            with self._lock:
                self._watched.discard(job_id)

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
        """Cancel what runs and stop the engine, which writes the audit trail's last events (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.cancel_all()
        self._watcher.join(timeout=5)
        self.engine.close()

    def _refuse_when_stopping(self) -> None:
        if self._stopping.is_set():
            raise FleuveError("the server is shutting down", "retry once it is back")


def _acting_for(caller: Caller) -> contextlib.AbstractContextManager:
    """The audit origin for the caller's query: the HTTP layer's when it set one (it tells the
    web UI's pages from other REST clients), else the caller's protocol (Flight)."""
    if audit.origin().client is not None:
        return contextlib.nullcontext()
    return audit.acting_from(caller.protocol, caller.client)


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0]
