"""Queries as jobs over the lake: run now and stream, or submit and follow."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa

from fleuve.errors import FleuveError
from fleuve.lake import quote_ident
from fleuve.metadata.models import utcnow
from fleuve.project import Project

FINAL_STATES = {"COMPLETED", "CANCELED", "FAILED"}


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


@dataclass
class QueryResult:
    """A running query: its schema now, its rows as they are produced."""

    job_id: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]

    def read_all(self) -> pa.Table:
        """Every remaining row as one table."""
        return pa.Table.from_batches(list(self.batches), schema=self.schema)


class Engine:
    """Runs SQL for users against the lake."""

    def __init__(self, project: Project, workers: int = 4) -> None:
        self.project = project
        self._jobs: dict[str, QueryJob] = {}
        self._cursors: dict[str, duckdb.DuckDBPyConnection] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleuve-query")

    def execute(
        self, sql: str, *, user: str, default_schema: str | None = None, batch_rows: int = 65_536
    ) -> QueryResult:
        """Run `sql` for `user` and stream its result as Arrow record batches."""
        job = self._new_job(sql, user, "FLIGHT")
        cur = self._cursor(default_schema)
        job.state, job.started_at = "RUNNING", utcnow()
        try:
            reader = cur.execute(sql).fetch_record_batch(batch_rows)
        except duckdb.Error as exc:
            self._finish(job, error=str(exc).splitlines()[0])
            cur.close()
            raise FleuveError(f"query failed: {job.error}") from None

        def stream() -> Iterator[pa.RecordBatch]:
            try:
                for batch in reader:
                    job.row_count += batch.num_rows
                    yield batch
                self._finish(job)
            except GeneratorExit:
                self._finish(job, canceled=True)
                raise
            except duckdb.Error as exc:
                self._finish(job, error=str(exc).splitlines()[0])
                raise FleuveError(f"query failed: {job.error}") from None
            finally:
                cur.close()

        return QueryResult(job.id, reader.schema, stream())

    def submit(self, sql: str, *, user: str, context: list[str] | None = None) -> str:
        """Start `sql` in the background; returns the job id."""
        job = self._new_job(sql, user, "REST")
        self._pool.submit(self._run, job, ".".join(context) if context else None)
        return job.id

    def job(self, job_id: str) -> QueryJob:
        """The job with this id; a FleuveError if unknown."""
        try:
            return self._jobs[job_id]
        except KeyError:
            raise FleuveError(f"no job with id {job_id}") from None

    def results(self, job_id: str, offset: int = 0, limit: int = 100) -> pa.Table:
        """A page of a completed job's rows."""
        job = self.job(job_id)
        if job.state != "COMPLETED" or job.result is None:
            raise FleuveError(f"job {job_id} is {job.state}, not COMPLETED")
        return job.result.slice(offset, limit)

    def cancel(self, job_id: str) -> None:
        """Ask a running job to stop."""
        job = self.job(job_id)
        if job.state in FINAL_STATES:
            return
        job.state = "CANCELLATION_REQUESTED"
        with self._lock:
            cur = self._cursors.get(job_id)
        if cur is not None:
            cur.interrupt()

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _new_job(self, sql: str, user: str, query_type: str) -> QueryJob:
        job = QueryJob(id=str(uuid.uuid4()), user=user, sql=sql, query_type=query_type)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def _cursor(self, default_schema: str | None) -> duckdb.DuckDBPyConnection:
        cur = self.project.lake.connect()
        if default_schema:
            cur.execute(f"USE lake.{quote_ident(default_schema)}")
        return cur

    def _run(self, job: QueryJob, default_schema: str | None) -> None:
        if job.state == "CANCELLATION_REQUESTED":
            self._finish(job, canceled=True)
            return
        cur = self._cursor(default_schema)
        with self._lock:
            self._cursors[job.id] = cur
        job.state, job.started_at = "RUNNING", utcnow()
        try:
            job.result = cur.execute(job.sql).to_arrow_table()
            job.row_count = job.result.num_rows
            self._finish(job)
        except duckdb.Error as exc:
            if job.state == "CANCELLATION_REQUESTED":
                self._finish(job, canceled=True)
            else:
                self._finish(job, error=str(exc).splitlines()[0])
        finally:
            with self._lock:
                self._cursors.pop(job.id, None)
            cur.close()

    def _finish(self, job: QueryJob, *, error: str | None = None, canceled: bool = False) -> None:
        job.ended_at = utcnow()
        if canceled:
            job.state = "CANCELED"
        elif error:
            job.state, job.error = "FAILED", error
        else:
            job.state = "COMPLETED"
