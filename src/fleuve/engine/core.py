"""The engine: SQL from users to DuckDB, through the catalog, grants and reflections."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta

import duckdb
import pyarrow as pa
from sqlglot import exp

from fleuve.engine import ddl, paths
from fleuve.engine.catalog import Catalog, Dataset
from fleuve.engine.dialect import to_duckdb
from fleuve.engine.errors import AccessDenied, EngineError, QueryCanceled, QueryFailed, safe_error
from fleuve.engine.freshness import LakeClock
from fleuve.engine.grants import ENGINE, Grants, Principal, not_found
from fleuve.engine.plan import QUERY_TYPES, Planner, Prepared, Ref, parse_query
from fleuve.engine.query_jobs import FINAL_STATES, RESULT_RETENTION, JobStore, QueryJob
from fleuve.engine.reflections.service import Reflections
from fleuve.engine.scan import open_scan
from fleuve.engine.statements import DML, Statements
from fleuve.engine.system import SystemTables
from fleuve.errors import FleuveError
from fleuve.lake import Lake, quote_ident
from fleuve.masking import mask
from fleuve.metadata.models import utcnow
from fleuve.project import Project
from fleuve.security import audit

log = logging.getLogger("fleuve.engine")

DIALECTS = ("duckdb", "dremio")
STUB_SCHEMA = "memory.fleuve_stubs"
POOL_SIZE = 8
# Answers kept for queries that read only reflection copies (see `_keep_answer`): dashboards
# ask the same questions again and again, and a copy never changes once built.
ANSWER_MAX_ROWS = 10_000
ANSWER_CACHE_BYTES = 64 * 2**20
# Functions whose value changes from one call to the next: a query using one is never kept.
_VOLATILE = (
    exp.Rand,
    exp.Randn,
    exp.Randstr,
    exp.Uuid,
    exp.CurrentDate,
    exp.CurrentTime,
    exp.CurrentTimestamp,
    exp.CurrentTimestampLTZ,
    exp.CurrentDatetime,
    exp.Anonymous,  # a function sqlglot does not know: it may be volatile
)

__all__ = ["FINAL_STATES", "Engine", "QueryJob", "QueryResult"]


@dataclass
class QueryResult:
    """A running query: its schema now, its rows as they are produced."""

    job_id: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]

    def read_all(self) -> pa.Table:
        """Every remaining row as one table."""
        return pa.Table.from_batches(list(self.batches), schema=self.schema)


class Engine(Statements):
    """Runs SQL for users over the lake, external sources and files.

    See the package docstring for the whole API.
    """

    def __init__(
        self,
        project: Project,
        workers: int = 4,
        *,
        dialect: str = "duckdb",
        accelerate: bool = True,
        result_retention: timedelta = RESULT_RETENTION,
        plan_cache: int = 1024,
        keep_answers: bool = True,
    ) -> None:
        if dialect not in DIALECTS:
            raise EngineError(f"unknown SQL dialect '{dialect}'", "use duckdb or dremio")
        self.project = project
        self.dialect = dialect
        self.accelerate = accelerate
        self.clock = LakeClock(project.settings, self._borrowed)
        self.catalog = Catalog(project, self.clock)
        self.grants = Grants(self.catalog)
        self.reflections = Reflections(project, self.catalog, self.clock, self._expand_dataset)
        self.planner = Planner(
            self.catalog.resolve, self.grants.allows, self.reflections, self._describe
        )
        self.jobs_store = JobStore(
            project.db,
            project.settings.state_dir / "engine" / "results",
            result_retention=result_retention,
            on_flush=self.reflections.flush_counts,
        )
        # Every query's event, written in the background: a query never waits on the trail.
        self.audit = audit.AuditWriter(project.db)
        self.system = SystemTables(
            self.catalog,
            self.grants,
            self.reflections,
            lambda who: self.jobs_store.history(None if who.admin else who.name),
        )
        self._lock = threading.Lock()
        self._pool: list[duckdb.DuckDBPyConnection] = []
        self._cursors: dict[str, duckdb.DuckDBPyConnection] = {}
        self._stubs: set[str] = set()
        # Concurrent first uses would race to create the same stub (a DuckDB write-write conflict).
        self._stub_lock = threading.Lock()
        self._described: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        # Plans of recent queries, keyed by everything they depend on (see `_prepare`).
        self._plans: OrderedDict[tuple, tuple[Prepared, float]] = OrderedDict()
        self._keep_answers = keep_answers
        self._answers: OrderedDict[str, pa.Table] = OrderedDict()
        self._answer_bytes = 0
        self._plan_cache = plan_cache
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleuve-query")

    # == queries ========================================================================

    def execute(
        self,
        sql: str,
        *,
        user: str,
        default_schema: str | None = None,
        batch_rows: int = 65_536,
        dialect: str | None = None,
        context: Sequence[str] | None = None,
        query_type: str = "FLIGHT",
    ) -> QueryResult:
        """Run `sql` for `user` now and stream its result as Arrow record batches.

        `default_schema` ("gold", "My Space.folder") or `context` (a path) resolves relative
        names; `dialect` is "duckdb" (default) or "dremio".
        """
        ctx = _context(default_schema, context)
        job = self._new_job(sql, user, query_type, dialect, ctx)
        try:
            who, prepared = self._prepare_job(job, sql, ctx)
        except FleuveError as exc:
            self._finish(job, error=exc.message, denied=isinstance(exc, AccessDenied))
            raise
        table = prepared.table if prepared.table is not None else self._answer(prepared)
        if table is not None:
            return QueryResult(job.id, table.schema, self._stream_table(job, table, batch_rows))
        cur = self._cursor(prepared)
        with self._lock:
            self._cursors[job.id] = cur
        started = time.perf_counter()
        try:
            try:
                reader = _open(self.project.lake, cur, prepared, batch_rows)
            except duckdb.CatalogException:
                if not prepared.cached:
                    raise
                prepared = self._replan(job, sql, who, ctx)
                reader = _open(self.project.lake, cur, prepared, batch_rows)
        except duckdb.Error as exc:
            error = self._failure(job, exc, who)
            self._discard(job, cur)
            raise error from None
        return QueryResult(
            job.id, reader.schema, self._stream(job, cur, reader, who, prepared, started)
        )

    def _answer(self, prepared: Prepared) -> pa.Table | None:
        """The kept answer of a query that reads only reflection copies, if there is one."""
        if not prepared.keep_answer or prepared.sql is None:
            return None
        with self._lock:
            table = self._answers.get(prepared.sql)
            if table is not None:
                self._answers.move_to_end(prepared.sql)
            return table

    def _keep_answer(self, prepared: Prepared, table: pa.Table) -> None:
        """Keep a small answer under its SQL, which names the copies it read."""
        assert prepared.sql is not None
        with self._lock:
            if prepared.sql in self._answers:
                return
            self._answers[prepared.sql] = table
            self._answer_bytes += table.nbytes
            while self._answer_bytes > ANSWER_CACHE_BYTES and len(self._answers) > 1:
                self._answer_bytes -= self._answers.popitem(last=False)[1].nbytes

    def _replan(self, job: QueryJob, sql: str, who: Principal, ctx: tuple[str, ...]) -> Prepared:
        """Plan again without the plan cache: a remembered plan read a copy evicted since."""
        with self._lock:
            self._plans.clear()
            self._answers.clear()
            self._answer_bytes = 0
        return self._prepare(sql, who, ctx, job.dialect, reuse=False)

    def _stream(
        self,
        job: QueryJob,
        cur: duckdb.DuckDBPyConnection,
        reader: pa.RecordBatchReader,
        who: Principal,
        prepared: Prepared,
        started: float,
    ) -> Iterator[pa.RecordBatch]:
        complete = False
        kept: list[pa.RecordBatch] | None = [] if prepared.keep_answer else None
        try:
            for batch in reader:
                if job.state == "CANCELLATION_REQUESTED":
                    # An Arrow scan of the lake's files does not hear DuckDB's interrupt.
                    raise self._failure(job, duckdb.InterruptException(), who)
                job.row_count += batch.num_rows
                job.bytes += batch.nbytes
                if kept is not None:
                    kept.append(batch)
                    if job.row_count > ANSWER_MAX_ROWS:
                        kept = None
                yield batch
            complete = True
            job.execution_ms = (time.perf_counter() - started) * 1000
            if kept is not None:
                self._keep_answer(prepared, pa.Table.from_batches(kept, reader.schema))
            self._finish(job)
        except GeneratorExit:
            self._finish(job, canceled=True)
            raise
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            # DuckDB's errors reach an Arrow stream's reader as Arrow or OS errors.
            raise self._failure(job, exc, who) from None
        finally:
            if complete:
                self._release(job, cur, prepared)
            else:
                self._discard(job, cur)

    def _stream_table(
        self, job: QueryJob, table: pa.Table, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        try:
            for batch in table.to_batches(max_chunksize=batch_rows):
                job.row_count += batch.num_rows
                job.bytes += batch.nbytes
                yield batch
            self._finish(job)
        except GeneratorExit:
            self._finish(job, canceled=True)
            raise

    def submit(
        self,
        sql: str,
        *,
        user: str,
        context: list[str] | None = None,
        dialect: str | None = None,
    ) -> str:
        """Start `sql` in the background (the REST flow); returns the job id."""
        job = self._new_job(sql, user, "REST", dialect, tuple(context or ()))
        self._executor.submit(self._run, job, sql)
        return job.id

    def _run(self, job: QueryJob, sql: str) -> None:
        if job.state == "CANCELLATION_REQUESTED":
            self._finish(job, canceled=True)
            return
        try:
            who, prepared = self._prepare_job(job, sql, tuple(job.context))
        except FleuveError as exc:
            self._finish(job, error=exc.message, denied=isinstance(exc, AccessDenied))
            return
        except Exception as exc:  # a bug must fail the job, not the worker thread
            log.exception("job %s failed while planning", job.id)
            self._finish(job, error=f"internal error: {type(exc).__name__}")
            return
        if job.state == "CANCELLATION_REQUESTED":
            self._finish(job, canceled=True)
            return
        if prepared.table is not None:
            table = prepared.table
        else:
            cur = self._cursor(prepared)
            with self._lock:
                self._cursors[job.id] = cur
            if job.state == "CANCELLATION_REQUESTED":
                self._discard(job, cur)
                self._finish(job, canceled=True)
                return
            started = time.perf_counter()
            try:
                try:
                    table = cur.execute(prepared.sql_to_run).to_arrow_table()
                except duckdb.CatalogException:
                    if not prepared.cached:
                        raise
                    prepared = self._replan(job, sql, who, tuple(job.context))
                    table = cur.execute(prepared.sql_to_run).to_arrow_table()
                job.execution_ms = (time.perf_counter() - started) * 1000
                self._release(job, cur, prepared)
            except duckdb.Error as exc:
                self._discard(job, cur)
                if job.state == "CANCELLATION_REQUESTED":
                    self._finish(job, canceled=True)
                else:
                    self._failure(job, exc, who)
                return
        job.row_count, job.bytes = table.num_rows, table.nbytes
        try:
            self.jobs_store.keep_result(job, table)
        except OSError as exc:
            log.warning("could not keep the results of job %s: %s", job.id, exc)
            job.result = table
        self._finish(job)

    def job(self, job_id: str) -> QueryJob:
        """The job with this id (running, or from history); ObjectNotFound if unknown."""
        return self.jobs_store.get(job_id)

    def jobs(self, user: str, limit: int = 100) -> list[QueryJob]:
        """Recent jobs, newest first: all for administrators, the user's own otherwise."""
        who = self.grants.principal(user)
        return self.jobs_store.history(None if who.admin else who.name, limit)

    def results(self, job_id: str, offset: int = 0, limit: int = 100) -> pa.Table:
        """A page of a completed job's rows (kept for the retention period)."""
        return self.jobs_store.page(self.job(job_id), offset, limit)

    def cancel(self, job_id: str) -> None:
        """Ask a running job to stop."""
        job = self.job(job_id)
        if job.state in FINAL_STATES:
            return
        job.state = "CANCELLATION_REQUESTED"
        self.jobs_store.save(job)
        threading.Thread(
            target=self._interrupt, args=(job,), name="fleuve-cancel", daemon=True
        ).start()

    def _interrupt(self, job: QueryJob) -> None:
        # An interrupt sent just before DuckDB starts the query is lost: repeat until it stops.
        deadline = time.monotonic() + 30
        while job.state not in FINAL_STATES and time.monotonic() < deadline:
            with self._lock:
                cur = self._cursors.get(job.id)
            if cur is not None:
                with contextlib.suppress(duckdb.Error):
                    cur.interrupt()
            time.sleep(0.05)

    def explain(
        self, sql: str, *, user: str, dialect: str | None = None, context: Sequence[str] = ()
    ) -> pa.Table:
        """How `sql` would run: datasets, reflections considered/matched/chosen, SQL and plan."""
        return self.execute(
            f"EXPLAIN {sql}", user=user, dialect=dialect, context=context, query_type="UI_RUN"
        ).read_all()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers and write what is pending."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.jobs_store.close()
        self.audit.close()
        self.reflections.flush_counts()
        self.reflections.drop_copies()
        with self._lock:
            pool, self._pool = self._pool, []
        for cur in pool:
            with contextlib.suppress(duckdb.Error):
                cur.close()
        self.clock.close()

    # == jobs and cursors ===============================================================

    def _new_job(
        self, sql: str, user: str, query_type: str, dialect: str | None, ctx: tuple[str, ...]
    ) -> QueryJob:
        d = (dialect or self.dialect).lower()
        if d not in DIALECTS:
            raise EngineError(f"unknown SQL dialect '{dialect}'", "use duckdb or dremio")
        job = QueryJob(
            id=str(uuid.uuid4()),
            user=user,
            sql=mask(sql),  # the job's record is shown and stored: never a credential in it
            query_type=query_type,
            dialect=d,
            context=list(ctx),
            origin=audit.origin(),
        )
        self.jobs_store.add(job)
        self.jobs_store.maybe_purge()
        return job

    def _prepare_job(
        self, job: QueryJob, sql: str, ctx: tuple[str, ...]
    ) -> tuple[Principal, Prepared]:
        started = time.perf_counter()
        job.state = "PLANNING"
        who = self.grants.principal(job.user)
        # Statements that change grants, roles or reflections record those changes themselves.
        with audit.statement(job.origin, job.sql, job.id) as changes:
            prepared = self._prepare(sql, who, ctx, job.dialect)
        job.audited = changes.recorded > 0
        if prepared.plan is not None:
            job.datasets = [paths.render(d.path) for d in prepared.plan.datasets]
            job.reflections = [o.as_json() for o in prepared.plan.reflections.values()]
            self.reflections.count(prepared.plan.reflections.values())
        job.planning_ms = (time.perf_counter() - started) * 1000
        job.state, job.started_at = "RUNNING", utcnow()
        self.jobs_store.save(job)
        return who, prepared

    def _finish(
        self,
        job: QueryJob,
        *,
        error: str | None = None,
        canceled: bool = False,
        denied: bool = False,
    ) -> None:
        first = not job.final
        job.ended_at = utcnow()
        if canceled:
            job.state, outcome = "CANCELED", "cancelled"
        elif error:
            job.state, job.error = "FAILED", error
            outcome = "denied" if denied else "failed"
        else:
            job.state, outcome = "COMPLETED", "ok"
        self.jobs_store.save(job)
        if first and not (outcome == "ok" and job.audited):
            self._audit_query(job, outcome)

    def _audit_query(self, job: QueryJob, outcome: str) -> None:
        """Queue the query's audit event: who ran what, from where, what it read and how."""
        assert job.ended_at is not None
        self.audit.submit(
            "query",
            job.origin.client or "engine",
            username=job.user,
            outcome=outcome,
            client=job.origin.client,
            target=job.sql,
            sql=job.sql,
            job_id=job.id,
            address=job.origin.address,
            objects=job.datasets,
            rows=job.row_count,
            duration_ms=round((job.ended_at - job.submitted_at).total_seconds() * 1000, 1),
            reflections=[
                r.get("reflectionId") for r in job.reflections if r.get("relationship") == "CHOSEN"
            ],
            error=job.error,
        )

    def _failure(self, job: QueryJob, exc: Exception, who: Principal) -> EngineError:
        if isinstance(exc, duckdb.InterruptException) or job.state == "CANCELLATION_REQUESTED":
            self._finish(job, canceled=True)
            return QueryCanceled(f"job {job.id} was cancelled", None)
        message = safe_error(exc, admin=who.admin)
        self._finish(job, error=message)
        return QueryFailed(message, "check the query against the datasets' columns and types")

    def _cursor(self, prepared: Prepared | None = None) -> duckdb.DuckDBPyConnection:
        if prepared is not None and prepared.lake_default:
            cur = self.project.lake.connect()
        else:
            with self._lock:
                pooled = self._pool.pop() if self._pool else None
            if pooled is not None:
                cur = pooled
            else:
                cur = self.project.lake.connect()
                cur.execute("SET TimeZone = 'UTC'")
                # Names the binder did not qualify must find nothing: the default schema is empty.
                cur.execute("USE memory.main")
        for name, table in (prepared.system if prepared else {}).items():
            cur.register(name, table)
        return cur

    def _release(self, job: QueryJob, cur: duckdb.DuckDBPyConnection, prepared: Prepared) -> None:
        with self._lock:
            self._cursors.pop(job.id, None)
        try:
            # The finished result still holds its transaction (and, for a write, its commit)
            # until the next statement on this cursor: end it now, unless it read only
            # in-memory tables (reflection copies), where an open read pins no lake snapshot
            # and the next query ends it (a busy server saves a statement per query).
            if not prepared.in_memory:
                cur.execute("SELECT 1").fetchall()
            for name in prepared.system:
                cur.unregister(name)
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                cur.close()
            return
        if prepared.lake_default:
            cur.close()
            return
        with self._lock:
            if len(self._pool) < POOL_SIZE:
                self._pool.append(cur)
                return
        cur.close()

    def _discard(self, job: QueryJob, cur: duckdb.DuckDBPyConnection) -> None:
        # A cursor stopped mid-result keeps a read transaction on the catalog: close it.
        with self._lock:
            self._cursors.pop(job.id, None)
        with contextlib.suppress(duckdb.Error):
            cur.close()

    @contextlib.contextmanager
    def _borrowed(self, prepared: Prepared | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A pooled cursor for the engine's own short queries; read everything before leaving."""
        cur = self._cursor(prepared)
        ok = False
        try:
            yield cur
            ok = True
        finally:
            for name in prepared.system if prepared else {}:
                with contextlib.suppress(duckdb.Error):
                    cur.unregister(name)
            with self._lock:
                keep = (
                    ok and not (prepared and prepared.lake_default) and len(self._pool) < POOL_SIZE
                )
                if keep:
                    self._pool.append(cur)
            if not keep:
                with contextlib.suppress(duckdb.Error):
                    cur.close()

    # == statements =====================================================================

    def _prepare(
        self, sql: str, who: Principal, ctx: tuple[str, ...], dialect: str, *, reuse: bool = True
    ) -> Prepared:
        stmt = ddl.parse(sql)
        if stmt is not None:
            return self._statement(stmt, who, ctx, dialect)
        # A plan depends on the query, the caller's rights, the catalog (grants, views,
        # reflections) and the lake's snapshot (reflections' freshness): the same key, the
        # same plan.
        key = None
        if self._plan_cache:
            state = self.clock.state()
            version = self.catalog.meta().version
            key = (sql, dialect, ctx, who, version, state, self.accelerate)
            with self._lock:
                hit = self._plans.get(key)
                if hit is not None and reuse and hit[1] > time.monotonic():
                    self._plans.move_to_end(key)
                    return replace(hit[0], cached=True)
        ast = parse_query(sql, dialect)
        if isinstance(ast, QUERY_TYPES):
            prepared = self._plan_query(ast, who, ctx)
            if key is not None and not prepared.system:
                self._remember(key, prepared)
            return prepared
        if isinstance(ast, DML) or (
            isinstance(ast, exp.Create | exp.Drop)
            and str(ast.args.get("kind", "")).upper() == "TABLE"
        ):
            return self._dml(ast, who, ctx)
        if who.admin:
            # Administrators may run any DuckDB statement, on the lake as default catalog.
            return Prepared(sql=sql, lake_default=True, writes=True)
        raise AccessDenied(
            f"{type(ast).__name__.upper()} statements are not available",
            "run queries, or the engine's own statements (CREATE VIEW, CREATE REFLECTION, GRANT, ...)",
        )

    def _remember(self, key: tuple, prepared: Prepared) -> None:
        """Keep a plan; one reading a stale reflection only while the dataset's window lasts."""
        expires = float("inf")
        assert prepared.plan is not None
        windows = {d.id: d.staleness_seconds for d in prepared.plan.read}
        for o in prepared.plan.chosen:
            r = self.reflections.get(o.reflection_id)
            if not self.reflections.fresh(r, prepared.plan.lake_state):
                window = windows.get(o.dataset_id) or 0
                age = (utcnow() - r.refreshed_at).total_seconds() if r.refreshed_at else window
                expires = min(expires, time.monotonic() + window - age)
        with self._lock:
            self._plans[key] = (prepared, expires)
            while len(self._plans) > self._plan_cache:
                self._plans.popitem(last=False)

    def _plan_query(
        self,
        ast: exp.Expr,
        who: Principal,
        ctx: Sequence[str],
        *,
        accelerate: bool | None = None,
        explain: bool = False,
    ) -> Prepared:
        plan = self.planner.plan(
            ast,
            who,
            ctx,
            accelerate=self.accelerate if accelerate is None else accelerate,
            explain=explain,
        )
        system = {}
        for ref in plan.system:
            if not self.system.exists(ref.name):
                raise not_found(ref.name.split("."))
            name = "fleuve_sys_" + ref.name.replace(".", "_")
            system[name] = self.system.table(ref.name, who)
            node = exp.Table(
                this=exp.to_identifier(name, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(ref.alias, quoted=True)),
            )
            if ref.node is plan.ast:
                plan.ast = node
            else:
                ref.node.replace(node)
        in_memory = all(t.catalog.lower() == "memory" for t in plan.ast.find_all(exp.Table))
        keep = (
            self._keep_answers
            and in_memory
            and bool(plan.chosen)
            and plan.ast.find(*_VOLATILE) is None
        )
        return Prepared(
            sql=plan.sql, plan=plan, system=system, in_memory=in_memory, keep_answer=keep
        )

    # == internals used by the planner and reflections ===================================

    def _expand_dataset(self, dataset: Dataset) -> exp.Expr:
        """SELECT * over `dataset` with every name resolved to DuckDB relations."""
        ast = exp.select("*").from_(exp.to_table(paths.render(dataset.path), dialect="duckdb"))
        return self.planner.plan(ast, ENGINE, accelerate=False).ast

    def _describe(self, select: exp.Select, ref: Ref) -> list[tuple[str, str]]:
        """Output names and types of `select`, bound on an empty table shaped like the dataset."""
        stub_name = self._stub(ref.dataset)
        key = f"{stub_name}|{ref.alias}|{select.sql(dialect='duckdb')}"
        with self._lock:
            hit = self._described.get(key)
        if hit is not None:
            return hit
        stub = exp.to_table(stub_name, dialect="duckdb")
        alias = ref.node.args.get("alias")
        stub.set(
            "alias",
            alias.copy()
            if alias is not None
            else exp.TableAlias(this=exp.to_identifier(ref.alias, quoted=True)),
        )
        ref.node.meta["fleuve_probe"] = True
        try:
            probe = select.copy()
        finally:
            ref.node.meta.pop("fleuve_probe", None)
        for t in probe.find_all(exp.Table):
            if t.meta.get("fleuve_probe"):
                t.replace(stub)
                break
        try:
            with self._borrowed() as cur:
                out = [(r[0], r[1]) for r in cur.execute(f"DESCRIBE {to_duckdb(probe)}").fetchall()]
        except duckdb.Error as exc:
            raise EngineError(str(exc).splitlines()[0]) from None
        with self._lock:
            self._described[key] = out
            while len(self._described) > 4096:
                self._described.popitem(last=False)
        return out

    def _stub(self, ds: Dataset) -> str:
        """An empty in-memory table with the dataset's columns, for binding queries cheaply."""
        import hashlib

        sig = hashlib.sha1("|".join(f"{f.name}:{f.type}" for f in ds.fields).encode()).hexdigest()[
            :16
        ]
        name = f"{STUB_SCHEMA}.{quote_ident('s_' + sig)}"
        if name in self._stubs:
            return name
        with self._stub_lock:
            if name not in self._stubs:
                cols = ", ".join(f"{quote_ident(f.name)} {f.type}" for f in ds.fields)
                with self.project.lake.session() as con:
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STUB_SCHEMA}")
                    con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
                self._stubs.add(name)
        return name


def _open(
    lake: Lake, cur: duckdb.DuckDBPyConnection, prepared: Prepared, batch_rows: int
) -> pa.RecordBatchReader:
    """Start the prepared query; a write runs to its end, as it commits when its result closes."""
    if prepared.writes:
        done = cur.execute(prepared.sql_to_run).to_arrow_table()
        return pa.RecordBatchReader.from_batches(done.schema, done.to_batches(batch_rows))
    if prepared.plan is not None and not prepared.system:
        scan = open_scan(lake, cur, prepared.plan.ast, prepared.sql_to_run, batch_rows)
        if scan is not None:
            return scan
    return cur.execute(prepared.sql_to_run).to_arrow_reader(batch_rows)


def _context(default_schema: str | None, context: Sequence[str] | None) -> tuple[str, ...]:
    if context:
        return tuple(context)
    if default_schema:
        return paths.parse(default_schema)
    return ()
