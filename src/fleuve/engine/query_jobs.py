"""Query jobs: their records, their history and their result pages for a retention period.

A job lives in memory while it runs and is written to the metadata database by a background
writer, so that recording it costs a query nothing. Results of asynchronous (REST) jobs are
kept as Arrow IPC files under `.fleuve/engine/results/` until they expire.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from fleuve.engine.errors import EngineError, ObjectNotFound
from fleuve.metadata.database import Database
from fleuve.metadata.engine import EngineJob
from fleuve.metadata.models import utcnow
from fleuve.private import private_dir, private_file
from fleuve.security.audit import Origin

log = logging.getLogger("fleuve.engine.query_jobs")

FINAL_STATES = {"COMPLETED", "CANCELED", "FAILED"}
RESULT_RETENTION = timedelta(hours=24)
HISTORY_RETENTION = timedelta(days=30)
MEMORY_JOBS = 5_000
WRITE_DELAY_SECONDS = 0.05


@dataclass
class QueryJob:
    """A query's life: the REST API v3 job shape in Python."""

    id: str
    user: str
    sql: str
    state: str = "PENDING"
    query_type: str = "REST"
    row_count: int = 0
    error: str | None = None
    submitted_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    reflections: list[dict] = field(default_factory=list)
    result: pa.Table | None = None
    dialect: str = "duckdb"
    context: list[str] = field(default_factory=list)
    planning_ms: float | None = None
    execution_ms: float | None = None
    bytes: int = 0
    datasets: list[str] = field(default_factory=list)
    result_path: str | None = None
    result_expires_at: datetime | None = None
    # Where the query came from, and whether the changes it made are in the audit trail
    # already (a GRANT run as SQL is recorded as a grant, not a second time as a query).
    origin: Origin = field(default_factory=Origin, repr=False, compare=False)
    audited: bool = False

    @property
    def final(self) -> bool:
        """True once the job completed, failed or was cancelled."""
        return self.state in FINAL_STATES

    def as_json(self) -> dict:
        """The REST API v3 job object, with Fleuve's timings and datasets."""
        return {
            "id": self.id,
            "jobState": self.state,
            "rowCount": self.row_count if self.state == "COMPLETED" else 0,
            "errorMessage": self.error if self.state == "FAILED" else None,
            "startedAt": _iso(self.started_at),
            "endedAt": _iso(self.ended_at),
            "submittedAt": _iso(self.submitted_at),
            "queryType": self.query_type,
            "user": self.user,
            "planningMs": self.planning_ms,
            "executionMs": self.execution_ms,
            "bytes": self.bytes,
            "datasets": self.datasets,
            "acceleration": {"reflectionRelationships": self.reflections},
        }


class JobStore:
    """Keeps jobs in memory, writes them behind, serves history and result pages."""

    def __init__(
        self,
        db: Database,
        results_dir: Path,
        *,
        result_retention: timedelta = RESULT_RETENTION,
        on_flush: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.results_dir = results_dir
        self.result_retention = result_retention
        self.on_flush = on_flush
        self._jobs: OrderedDict[str, QueryJob] = OrderedDict()
        self._lock = threading.Lock()
        # Jobs to write (the latest state of each), and who waits for the next write: a dict
        # under a plain lock, as saving must cost a running query next to nothing.
        self._pending: dict[str, QueryJob] = {}
        self._waiters: list[threading.Event] = []
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._writer = threading.Thread(
            target=self._write_loop, name="fleuve-job-writer", daemon=True
        )
        self._writer.start()
        self._purged_at = utcnow()

    def add(self, job: QueryJob) -> None:
        """Track a new job and record it."""
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > MEMORY_JOBS:
                old_id, old = next(iter(self._jobs.items()))
                if not old.final:
                    break
                del self._jobs[old_id]
        self.save(job)

    def save(self, job: QueryJob) -> None:
        """Write the job's current state (in the background)."""
        with self._pending_lock:
            self._pending[job.id] = job
        if not self._wake.is_set():  # setting takes the event's own lock: skip when set
            self._wake.set()

    def get(self, job_id: str) -> QueryJob:
        """The job with this id, from memory or history; ObjectNotFound if unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job
        with self.db.session() as s:
            row = s.get(EngineJob, job_id)
        if row is None:
            raise ObjectNotFound(
                f"no job with id {job_id}", "list jobs with SELECT * FROM sys.jobs"
            )
        return _from_row(row)

    def history(self, user: str | None, limit: int = 1000) -> list[QueryJob]:
        """Recent jobs, newest first; only `user`'s unless None."""
        self.flush()
        stmt = select(EngineJob).order_by(EngineJob.submitted_at.desc()).limit(limit)
        if user is not None:
            stmt = stmt.where(EngineJob.username == user)
        with self.db.session() as s:
            rows = list(s.scalars(stmt))
        out = []
        with self._lock:
            for row in rows:
                out.append(self._jobs.get(row.id) or _from_row(row))
        return out

    # -- results ----------------------------------------------------------------------

    def keep_result(self, job: QueryJob, table: pa.Table) -> None:
        """Store a completed job's rows for paging until they expire."""
        private_dir(self.results_dir)
        path = self.results_dir / f"{job.id}.arrow"
        tmp = private_file(path.with_suffix(".tmp"))  # a query's rows: the owner's only
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(path)
        job.result_path = str(path)
        job.result_expires_at = utcnow() + self.result_retention
        job.result = table

    def page(self, job: QueryJob, offset: int, limit: int) -> pa.Table:
        """Rows [offset, offset+limit) of a completed job."""
        if job.state != "COMPLETED":
            raise EngineError(
                f"job {job.id} is {job.state}, not COMPLETED",
                "wait until GET /api/v3/job/{id} says COMPLETED",
            )
        if job.result is not None:
            return job.result.slice(offset, limit)
        if not job.result_path or not Path(job.result_path).exists():
            raise ObjectNotFound(
                f"the results of job {job.id} have expired",
                "run the query again",
            )
        with pa.memory_map(job.result_path) as source:
            table = ipc.open_file(source).read_all()
        return table.slice(offset, limit)

    def purge(self, now: datetime | None = None) -> int:
        """Delete expired result files and old history; returns how many files went."""
        now = now or utcnow()
        removed = 0
        with self.db.session() as s:
            expired = list(
                s.scalars(
                    select(EngineJob).where(
                        EngineJob.result_expires_at.is_not(None), EngineJob.result_expires_at < now
                    )
                )
            )
            for row in expired:
                if row.result_path:
                    Path(row.result_path).unlink(missing_ok=True)
                    removed += 1
                row.result_path, row.result_expires_at = None, None
            s.execute(
                delete(EngineJob)
                .where(EngineJob.submitted_at < now - HISTORY_RETENTION)
                .execution_options(synchronize_session=False)
            )
        with self._lock:
            for job in self._jobs.values():
                if job.result_expires_at is not None and job.result_expires_at < now:
                    job.result, job.result_path, job.result_expires_at = None, None, None
        self._purged_at = now
        return removed

    def maybe_purge(self) -> None:
        """Purge at most once a minute."""
        if utcnow() - self._purged_at > timedelta(minutes=1):
            try:
                self.purge()
            except Exception as exc:  # purging is housekeeping; a failure must not fail queries
                log.warning("could not purge job results: %s", exc)

    # -- writing behind ---------------------------------------------------------------

    def flush(self) -> None:
        """Wait until every recorded change is written."""
        done = threading.Event()
        with self._pending_lock:
            self._waiters.append(done)
        self._wake.set()
        done.wait(timeout=30)

    def close(self) -> None:
        """Write what is pending and stop the writer."""
        self._closing = True
        self._wake.set()
        self._writer.join(timeout=30)

    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            if not (self._closing or self._waiters):
                # A short query is saved three times within a few milliseconds: waiting a
                # moment writes its last state once, and many jobs in one transaction.
                time.sleep(WRITE_DELAY_SECONDS)
            with self._pending_lock:
                self._wake.clear()
                jobs, self._pending = list(self._pending.values()), {}
                waiters, self._waiters = self._waiters, []
                closing = self._closing
            try:
                if jobs:
                    self._write(jobs)
                if self.on_flush:
                    self.on_flush()
            except Exception as exc:  # history is best effort; queries must not fail for it
                log.warning("could not record %d jobs: %s", len(jobs), exc)
            for done in waiters:
                done.set()
            if closing:
                return

    def _write(self, jobs: list[QueryJob]) -> None:
        """Insert or update the jobs' rows in one statement (a core upsert: no ORM objects)."""
        rows = [
            {
                "id": job.id,
                "username": job.user,
                "sql": job.sql,
                "dialect": job.dialect,
                "context": job.context,
                "state": job.state,
                "query_type": job.query_type,
                "submitted_at": job.submitted_at,
                "started_at": job.started_at,
                "ended_at": job.ended_at,
                "planning_ms": job.planning_ms,
                "execution_ms": job.execution_ms,
                "row_count": job.row_count,
                "bytes": job.bytes,
                "datasets": job.datasets,
                "reflections": job.reflections,
                "error": job.error,
                "result_path": job.result_path,
                "result_expires_at": job.result_expires_at,
            }
            for job in jobs
        ]
        insert = (pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert)(
            EngineJob
        )
        statement = insert.on_conflict_do_update(
            index_elements=["id"],
            set_={c: insert.excluded[c] for c in rows[0] if c != "id"},
        )
        with self.db.engine.begin() as conn:
            conn.execute(statement, rows)


def _from_row(row: EngineJob) -> QueryJob:
    return QueryJob(
        id=row.id,
        user=row.username,
        sql=row.sql,
        state=row.state,
        query_type=row.query_type,
        row_count=row.row_count,
        error=row.error,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        reflections=list(row.reflections or []),
        dialect=row.dialect,
        context=list(row.context or []),
        planning_ms=row.planning_ms,
        execution_ms=row.execution_ms,
        bytes=row.bytes,
        datasets=list(row.datasets or []),
        result_path=row.result_path,
        result_expires_at=row.result_expires_at,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


__all__ = ["FINAL_STATES", "JobStore", "QueryJob"]
