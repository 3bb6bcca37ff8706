"""The engine: SQL from users to DuckDB, through the catalog, grants and reflections."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from fleuve.engine import ddl, paths
from fleuve.engine.catalog import Catalog, Container, Dataset, file_relation
from fleuve.engine.errors import (
    AccessDenied,
    EngineError,
    NotFound,
    QueryCanceled,
    QueryFailed,
)
from fleuve.engine.freshness import LakeClock
from fleuve.engine.grants import Grant, Grants, Principal, not_found
from fleuve.engine.jobs import FINAL_STATES, RESULT_RETENTION, JobStore, QueryJob
from fleuve.engine.plan import Plan, Planner, Ref, parse_query
from fleuve.engine.reflections.model import Reflection, spec_from_rest
from fleuve.engine.reflections.service import Reflections, RefreshResult
from fleuve.engine.system import SystemTables, describe_table
from fleuve.engine.types import Field
from fleuve.errors import FleuveError
from fleuve.lake import CATALOG, quote_ident, quote_literal
from fleuve.metadata.models import utcnow
from fleuve.project import Project

log = logging.getLogger("fleuve.engine")

DIALECTS = ("duckdb", "dremio")
STUB_SCHEMA = "memory.fleuve_stubs"
POOL_SIZE = 8
_QUERY_TYPES = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.Values)
_DML = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
_STATUS = pa.schema([("ok", pa.bool_()), ("summary", pa.string())])
# The engine itself, for work done on a user's behalf after their rights were checked.
ADMIN = Principal("fleuve", frozenset({"admin"}))

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


@dataclass
class _Prepared:
    """A statement ready to run: DuckDB SQL with its system tables, or an answer already."""

    sql: str | None = None
    table: pa.Table | None = None
    plan: Plan | None = None
    system: dict[str, pa.Table] = field(default_factory=dict)
    lake_default: bool = False  # run with the lake as default catalog (admin statements)
    writes: bool = False  # changes the lake: run to completion, never streamed
    cached: bool = False  # planned earlier for the same query, catalog and lake snapshot


class Engine:
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
        self._described: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        # Plans of recent queries, keyed by everything they depend on (see `_prepare`).
        self._plans: OrderedDict[tuple, tuple[_Prepared, float]] = OrderedDict()
        self._plan_cache = plan_cache
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleuve-query")
        self._scheduler: threading.Thread | None = None
        self._stopping = threading.Event()

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
            self._finish(job, error=exc.message)
            raise
        if prepared.table is not None:
            return QueryResult(
                job.id, prepared.table.schema, self._stream_table(job, prepared.table, batch_rows)
            )
        cur = self._cursor(prepared)
        with self._lock:
            self._cursors[job.id] = cur
        started = time.perf_counter()
        try:
            try:
                reader = _open(cur, prepared, batch_rows)
            except duckdb.CatalogException:
                if not prepared.cached:
                    raise
                prepared = self._replan(job, who, ctx)
                reader = _open(cur, prepared, batch_rows)
        except duckdb.Error as exc:
            error = self._failure(job, exc, who, prepared)
            self._discard(job, cur)
            raise error from None
        return QueryResult(
            job.id, reader.schema, self._stream(job, cur, reader, who, prepared, started)
        )

    def _replan(self, job: QueryJob, who: Principal, ctx: tuple[str, ...]) -> _Prepared:
        """Plan again without the plan cache: a remembered plan read a copy evicted since."""
        with self._lock:
            self._plans.clear()
        return self._prepare(job.sql, who, ctx, job.dialect, reuse=False)

    def _stream(
        self,
        job: QueryJob,
        cur: duckdb.DuckDBPyConnection,
        reader: pa.RecordBatchReader,
        who: Principal,
        prepared: _Prepared,
        started: float,
    ) -> Iterator[pa.RecordBatch]:
        complete = False
        try:
            for batch in reader:
                job.row_count += batch.num_rows
                job.bytes += batch.nbytes
                yield batch
            complete = True
            job.execution_ms = (time.perf_counter() - started) * 1000
            self._finish(job)
        except GeneratorExit:
            self._finish(job, canceled=True)
            raise
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            # DuckDB's errors reach an Arrow stream's reader as Arrow or OS errors.
            raise self._failure(job, exc, who, prepared) from None
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
        self._executor.submit(self._run, job)
        return job.id

    def _run(self, job: QueryJob) -> None:
        if job.state == "CANCELLATION_REQUESTED":
            self._finish(job, canceled=True)
            return
        try:
            who, prepared = self._prepare_job(job, job.sql, tuple(job.context))
        except FleuveError as exc:
            self._finish(job, error=exc.message)
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
                    table = cur.execute(prepared.sql).to_arrow_table()
                except duckdb.CatalogException:
                    if not prepared.cached:
                        raise
                    prepared = self._replan(job, who, tuple(job.context))
                    table = cur.execute(prepared.sql).to_arrow_table()
                job.execution_ms = (time.perf_counter() - started) * 1000
                self._release(job, cur, prepared)
            except duckdb.Error as exc:
                self._discard(job, cur)
                if job.state == "CANCELLATION_REQUESTED":
                    self._finish(job, canceled=True)
                else:
                    self._failure(job, exc, who, prepared)
                return
        job.row_count, job.bytes = table.num_rows, table.nbytes
        try:
            self.jobs_store.keep_result(job, table)
        except OSError as exc:
            log.warning("could not keep the results of job %s: %s", job.id, exc)
            job.result = table
        self._finish(job)

    def job(self, job_id: str) -> QueryJob:
        """The job with this id (running, or from history); NotFound if unknown."""
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

    def close(self) -> None:
        """Stop the workers and the scheduler, and write what is pending."""
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
        self.jobs_store.close()
        self.reflections.flush_counts()
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
            sql=sql,
            query_type=query_type,
            dialect=d,
            context=list(ctx),
        )
        self.jobs_store.add(job)
        self.jobs_store.maybe_purge()
        return job

    def _prepare_job(
        self, job: QueryJob, sql: str, ctx: tuple[str, ...]
    ) -> tuple[Principal, _Prepared]:
        started = time.perf_counter()
        job.state = "PLANNING"
        who = self.grants.principal(job.user)
        prepared = self._prepare(sql, who, ctx, job.dialect)
        if prepared.plan is not None:
            job.datasets = [paths.render(d.path) for d in prepared.plan.datasets]
            job.reflections = [o.as_json() for o in prepared.plan.reflections.values()]
            self.reflections.count(prepared.plan.reflections.values())
        job.planning_ms = (time.perf_counter() - started) * 1000
        job.state, job.started_at = "RUNNING", utcnow()
        self.jobs_store.save(job)
        return who, prepared

    def _finish(self, job: QueryJob, *, error: str | None = None, canceled: bool = False) -> None:
        job.ended_at = utcnow()
        if canceled:
            job.state = "CANCELED"
        elif error:
            job.state, job.error = "FAILED", error
        else:
            job.state = "COMPLETED"
        self.jobs_store.save(job)

    def _failure(
        self, job: QueryJob, exc: Exception, who: Principal, prepared: _Prepared
    ) -> EngineError:
        if isinstance(exc, duckdb.InterruptException) or job.state == "CANCELLATION_REQUESTED":
            self._finish(job, canceled=True)
            return QueryCanceled(f"job {job.id} was cancelled", None)
        message = safe_error(exc, who)
        self._finish(job, error=message)
        return QueryFailed(message, "check the query against the datasets' columns and types")

    def _cursor(self, prepared: _Prepared | None = None) -> duckdb.DuckDBPyConnection:
        if prepared is not None and prepared.lake_default:
            cur = self.project.lake.connect()
        else:
            with self._lock:
                cur = self._pool.pop() if self._pool else None
            if cur is None:
                cur = self.project.lake.connect()
                cur.execute("SET TimeZone = 'UTC'")
                # Names the binder did not qualify must find nothing: the default schema is empty.
                cur.execute("USE memory.main")
        for name, table in (prepared.system if prepared else {}).items():
            cur.register(name, table)
        return cur

    def _release(self, job: QueryJob, cur: duckdb.DuckDBPyConnection, prepared: _Prepared) -> None:
        with self._lock:
            self._cursors.pop(job.id, None)
        try:
            # The finished result still holds its transaction (and, for a write, its commit)
            # until the next statement on this cursor: end it now.
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
    def _borrowed(self, prepared: _Prepared | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
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
    ) -> _Prepared:
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
        if isinstance(ast, _QUERY_TYPES):
            prepared = self._plan_query(ast, who, ctx)
            if key is not None and not prepared.system:
                self._remember(key, prepared)
            return prepared
        if isinstance(ast, _DML) or (
            isinstance(ast, exp.Create | exp.Drop)
            and str(ast.args.get("kind", "")).upper() == "TABLE"
        ):
            return self._dml(ast, who, ctx)
        if who.admin:
            # Administrators may run any DuckDB statement, on the lake as default catalog.
            return _Prepared(sql=sql, lake_default=True, writes=True)
        raise AccessDenied(
            f"{type(ast).__name__.upper()} statements are not available",
            "run queries, or the engine's own statements (CREATE VIEW, CREATE REFLECTION, GRANT, ...)",
        )

    def _remember(self, key: tuple, prepared: _Prepared) -> None:
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
        ast: exp.Expression,
        who: Principal,
        ctx: Sequence[str],
        *,
        accelerate: bool | None = None,
        explain: bool = False,
    ) -> _Prepared:
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
        return _Prepared(sql=plan.sql, plan=plan, system=system)

    def _statement(
        self, stmt: Any, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> _Prepared:
        handler = getattr(self, "_do_" + type(stmt).__name__)
        result = handler(stmt, who, ctx, dialect)
        return result if isinstance(result, _Prepared) else _Prepared(table=result)

    def _do_Explain(
        self, stmt: ddl.Explain, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> pa.Table:
        ast = parse_query(stmt.sql, dialect)
        if not isinstance(ast, _QUERY_TYPES):
            raise EngineError("EXPLAIN takes a query", "write EXPLAIN SELECT ...")
        prepared = self._plan_query(ast, who, ctx, explain=True)
        plan = prepared.plan
        assert plan is not None
        rows = [("datasets", ", ".join(paths.render(d.path) for d in plan.datasets) or "(none)")]
        for o in plan.reflections.values():
            line = f"{o.relationship} {o.name} (id {o.reflection_id})"
            rows.append(("reflection", line + (f": {o.reason}" if o.reason else "")))
        if not plan.reflections:
            rows.append(("reflection", "no reflection defined on the datasets read"))
        hidden = not who.admin and any(
            not self.grants.allows(who, "SELECT", d.path) for d in plan.read
        )
        if hidden:
            rows.append(
                ("sql", "(hidden: the query reads datasets you may read only through a view)")
            )
        else:
            rows.append(("sql", prepared.sql or ""))
            try:
                with self._borrowed(prepared) as cur:
                    text = "\n".join(
                        r[1] for r in cur.execute(f"EXPLAIN {prepared.sql}").fetchall()
                    )
            except duckdb.Error as exc:
                raise QueryFailed(safe_error(exc, who), None) from None
            rows.append(("plan", text))
        return pa.table({"section": [r[0] for r in rows], "text": [r[1] for r in rows]})

    def _do_ShowSchemas(self, stmt: ddl.ShowSchemas, who: Principal, *_: Any) -> pa.Table:
        return self.system.show_schemas(who, stmt.like)

    def _do_ShowTables(
        self, stmt: ddl.ShowTables, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        return self.system.show_tables(who, stmt.path or (ctx or None))

    def _do_Describe(
        self, stmt: ddl.Describe, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> pa.Table:
        if stmt.sql is not None:
            prepared = self._plan_query(parse_query(stmt.sql, dialect), who, ctx)
            return describe_table(self._fields_of(prepared))
        dataset = self._readable(stmt.path or (), who, ctx)
        return describe_table(dataset.fields)

    def _do_ShowReflections(
        self, stmt: ddl.ShowReflections, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        table = self.system.table("sys.reflections", who)
        if stmt.dataset is None:
            return table
        dataset = self._readable(stmt.dataset, who, ctx)
        keep = [n == paths.render(dataset.path) for n in table.column("dataset_name").to_pylist()]
        return table.filter(pa.array(keep, pa.bool_()))

    def _do_Use(self, stmt: ddl.Use, *_: Any) -> pa.Table:
        raise EngineError(
            "USE does not persist between queries here",
            'pass the context with the query (REST: "context"; Flight: the schema header)',
        )

    def _do_CreateContainer(self, stmt: ddl.CreateContainer, who: Principal, *_: Any) -> pa.Table:
        if stmt.kind == "SPACE":
            created = self.create_space(
                stmt.path[0] if len(stmt.path) == 1 else paths.render(stmt.path),
                user=who.name,
                exist_ok=stmt.if_not_exists,
            )
        else:
            created = self.create_folder(stmt.path, user=who.name, exist_ok=stmt.if_not_exists)
        verb = "created" if created else "already exists"
        return _status(f"{stmt.kind.lower()} {paths.render(stmt.path)} {verb}")

    def _do_DropContainer(self, stmt: ddl.DropContainer, who: Principal, *_: Any) -> pa.Table:
        if self.catalog.container(stmt.path) is None and stmt.if_exists:
            return _status(f"{stmt.kind.lower()} {paths.render(stmt.path)} does not exist")
        self.drop_container(stmt.path, user=who.name)
        return _status(f"{stmt.kind.lower()} {paths.render(stmt.path)} dropped")

    def _do_CreateView(
        self, stmt: ddl.CreateView, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> pa.Table:
        report = self.save_view(
            stmt.path,
            stmt.sql,
            user=who.name,
            context=ctx,
            dialect=dialect,
            replace=stmt.or_replace,
        )
        return _report_table(report)

    def _do_DropView(
        self, stmt: ddl.DropView, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        found = self.catalog.resolve(stmt.path, ())
        if found is None and stmt.if_exists:
            return _status(f"view {paths.render(stmt.path)} does not exist")
        return _report_table(self.drop_view(stmt.path, user=who.name))

    def _do_CreateReflection(
        self, stmt: ddl.CreateReflection, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        r, result = self._create_reflection(
            stmt.name, stmt.dataset, stmt.spec, who, ctx, enabled=True, build=True
        )
        built = f", built from snapshot {result.snapshot} ({result.rows:,} rows)" if result else ""
        return _status(f"reflection {r.name} created on {paths.render(r.dataset_path)}{built}")

    def _do_DropReflection(
        self, stmt: ddl.DropReflection, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        r = self._managed_reflection(stmt.name, who)
        if stmt.dataset is not None:
            ds = self._readable(stmt.dataset, who, ctx)
            if ds.key != r.dataset_key:
                raise NotFound(
                    f"reflection {stmt.name} is not defined on {paths.render(ds.path)}",
                    "check the names",
                )
        self.reflections.drop(r)
        return _status(f"reflection {r.name} dropped")

    def _do_AlterReflection(self, stmt: ddl.AlterReflection, who: Principal, *_: Any) -> pa.Table:
        r = self._managed_reflection(stmt.name, who)
        if stmt.refresh_now:
            res = self.reflections.refresh(r)
            return _status(_refresh_summary(res))
        changes: dict[str, Any] = {}
        if stmt.enabled is not None:
            changes["enabled"] = stmt.enabled
        if stmt.refresh_policy is not None:
            changes["refresh_policy"] = stmt.refresh_policy
            changes["refresh_seconds"] = stmt.refresh_seconds
        r = self.reflections.alter(r, **changes)
        what = ", ".join(f"{k.replace('_', ' ')} = {v}" for k, v in changes.items())
        return _status(f"reflection {r.name}: {what}")

    def _do_RefreshReflections(
        self, stmt: ddl.RefreshReflections, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        ds = self._readable(stmt.dataset, who, ctx)
        self.grants.require(who, "ALL", ds.path, "refreshing reflections")
        results = [self.reflections.refresh(r) for r in self.reflections.on(ds) if r.enabled]
        if not results:
            return _status(f"no enabled reflection on {paths.render(ds.path)}")
        return pa.table(
            {"ok": [True] * len(results), "summary": [_refresh_summary(r) for r in results]},
            schema=_STATUS,
        )

    def _do_GrantStatement(
        self, stmt: ddl.GrantStatement, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        lines = []
        for privilege in stmt.privileges:
            if stmt.revoke:
                n = self.grants.revoke(
                    who,
                    privilege,
                    stmt.path,
                    stmt.grantee_kind,
                    stmt.grantee,
                    recursive=stmt.recursive,
                )
                lines.append(
                    f"revoked {privilege} from {stmt.grantee_kind.lower()} {stmt.grantee} ({n} grant(s))"
                )
            else:
                g = self.grants.grant(
                    who,
                    privilege,
                    stmt.path,
                    stmt.grantee_kind,
                    stmt.grantee,
                    recursive=stmt.recursive,
                )
                lines.append(
                    f"granted {g.privilege} on {g.as_json()['object']} to {g.grantee_kind.lower()} {g.grantee}"
                )
        return pa.table({"ok": [True] * len(lines), "summary": lines}, schema=_STATUS)

    def _do_RoleStatement(self, stmt: ddl.RoleStatement, who: Principal, *_: Any) -> pa.Table:
        self.grants.set_role(who, stmt.role, stmt.user, add=stmt.add)
        verb = "granted to" if stmt.add else "revoked from"
        return _status(f"role {stmt.role} {verb} user {stmt.user}")

    def _do_CreateRole(self, stmt: ddl.CreateRole, who: Principal, *_: Any) -> pa.Table:
        if not who.admin:
            raise AccessDenied("only administrators manage roles", "ask an administrator")
        return _status(f"role {stmt.name} is ready: GRANT ROLE {stmt.name} TO USER <name>")

    def _do_ShowGrants(
        self, stmt: ddl.ShowGrants, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        grants = self.list_grants(
            user=who.name, path=stmt.path, recursive=stmt.recursive, grantee=stmt.grantee
        )
        return pa.table(
            {
                "grantee_type": [g.grantee_kind for g in grants],
                "grantee": [g.grantee for g in grants],
                "privilege": [g.privilege for g in grants],
                "object": [g.as_json()["object"] for g in grants],
            },
            schema=pa.schema(
                [(n, pa.string()) for n in ("grantee_type", "grantee", "privilege", "object")]
            ),
        )

    def _do_SetStaleness(
        self, stmt: ddl.SetStaleness, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        ds = self.set_staleness(stmt.dataset, stmt.seconds, user=who.name, context=ctx)
        window = "none" if stmt.seconds is None else f"{stmt.seconds}s"
        return _status(f"{paths.render(ds.path)}: reflections may be stale by {window}")

    def _do_Promote(self, stmt: ddl.Promote, who: Principal, *_: Any) -> pa.Table:
        ds = self.promote(stmt.path, user=who.name, format=stmt.format)
        return _status(f"{paths.render(ds.path)} promoted: {len(ds.fields)} columns")

    def _do_Forget(self, stmt: ddl.Forget, who: Principal, *_: Any) -> pa.Table:
        self.forget(stmt.path, user=who.name)
        return _status(f"{paths.render(stmt.path)} is no longer a dataset")

    def _dml(self, ast: exp.Expression, who: Principal, ctx: Sequence[str]) -> _Prepared:
        """INSERT/UPDATE/DELETE/MERGE, CREATE TABLE and DROP TABLE on lake tables, with ALL."""
        target = ast.this
        if isinstance(ast, exp.Drop):
            tables = ast.args.get("tables") or [ast.this]
            if len(tables) != 1:
                raise EngineError("DROP TABLE takes one table", "drop tables one at a time")
            target = tables[0]
        while isinstance(target, exp.Schema):
            target = target.this
        if not isinstance(target, exp.Table):
            raise EngineError("cannot find the statement's target table", "name a lake table")
        parts = tuple(p.name for p in target.parts)
        if isinstance(ast, exp.Create):
            path = (*ctx[:1], *parts) if len(parts) == 1 and ctx else parts
            schemas = {s.lower() for s in self.catalog.lake_tables().schemas}
            if len(path) != 2 or path[0].lower() not in schemas:
                raise EngineError(
                    f"{paths.render(parts)} is not a lake table name",
                    "create tables as <layer>.<name>, e.g. bronze.events",
                )
            self.grants.require(who, "ALL", path, "creating a table")
            if ast.expression is not None:
                ast.set(
                    "expression", self.planner.plan(ast.expression, who, ctx, accelerate=False).ast
                )
            target.replace(_lake_table(path))
            return _Prepared(sql=ast.sql(dialect="duckdb"), writes=True)
        ds = self.catalog.resolve(parts, ctx)
        if ds is None or not self.grants.allows(who, "SELECT", ds.path):
            if isinstance(ast, exp.Drop) and ast.args.get("exists"):
                return _Prepared(table=_status(f"{paths.render(parts)} does not exist"))
            raise not_found(parts)
        if ds.lake_table is None:
            raise EngineError(
                f"{paths.render(ds.path)} is not a lake table", "write to lake tables only"
            )
        self.grants.require(who, "ALL", ds.path, f"{type(ast).__name__.upper()}")
        if isinstance(ast, exp.Drop):
            target.replace(_lake_table(ds.path))
            return _Prepared(sql=ast.sql(dialect="duckdb"), writes=True)
        # INSERT/UPDATE/DELETE/MERGE may read other datasets and the target itself.
        named = exp.to_table(paths.render(ds.path), dialect="duckdb")
        if target.args.get("alias"):
            named.set("alias", target.args["alias"].copy())
        target.replace(named)
        plan = self.planner.plan(ast, who, ctx, accelerate=False)
        if isinstance(plan.ast, exp.Insert):
            written = plan.ast.this.this if isinstance(plan.ast.this, exp.Schema) else plan.ast.this
            written.set("alias", None)
        return _Prepared(sql=plan.sql, plan=plan, writes=True)

    # == the catalog ====================================================================

    def catalog_root(self, *, user: str) -> list[dict[str, Any]]:
        """Top-level containers `user` may see (REST `GET /api/v3/catalog` entries)."""
        who = self.grants.principal(user)
        out = [c.as_json() for c in self.catalog.containers() if self._sees(who, c)]
        home = Container(paths.path_id("home", (who.home,)), (who.home,), "HOME", "home")
        return [home.as_json(), *out]

    def catalog_item(self, object_id: str, *, user: str) -> dict[str, Any]:
        """A dataset or container by id, in the REST catalog shape; NotFound if not visible."""
        who = self.grants.principal(user)
        found = self.catalog.by_id(object_id)
        if found is None:
            home = who.home
            if object_id == paths.path_id("home", (home,)):
                found = self.catalog.top_level(home)
        return self._catalog_entity(found, who, object_id)

    def catalog_by_path(self, path: Sequence[str], *, user: str) -> dict[str, Any]:
        """A dataset or container by path (`/api/v3/catalog/by-path/a/b`)."""
        who = self.grants.principal(user)
        found: Dataset | Container | None = self.catalog.lookup(path) or self.catalog.container(
            path
        )
        return self._catalog_entity(found, who, paths.render(path))

    def dataset(
        self, path: Sequence[str] | str, *, user: str, context: Sequence[str] = ()
    ) -> Dataset:
        """The dataset at `path` if `user` may read it (fields, type, SQL for views)."""
        who = self.grants.principal(user)
        return self._readable(paths.parse(path) if isinstance(path, str) else path, who, context)

    def _catalog_entity(
        self, found: Dataset | Container | None, who: Principal, label: str
    ) -> dict[str, Any]:
        if isinstance(found, Dataset):
            if not self.grants.allows(who, "SELECT", found.path):
                raise not_found(found.path)
            return found.as_json()
        if isinstance(found, Container) and (
            self._sees(who, found) or found.path[0].lower() == who.home.lower()
        ):
            folders, datasets = self.catalog.children(found.path)
            children = [
                {**c.as_json(), "containerType": "FOLDER" if len(c.path) > 1 else c.kind}
                for c in folders
                if self._sees(who, c)
            ]
            children += [
                {
                    "id": d.id,
                    "path": list(d.path),
                    "tag": d.tag,
                    "type": "DATASET",
                    "datasetType": "VIRTUAL"
                    if d.virtual
                    else "PROMOTED"
                    if d.origin == "files"
                    else "DIRECT",
                }
                for d in datasets
                if self.grants.allows(who, "SELECT", d.path)
            ]
            kind = {"SOURCE": "source", "SPACE": "space", "HOME": "home", "FOLDER": "folder"}[
                found.kind
            ]
            return {
                "entityType": kind,
                "id": found.id,
                "path": list(found.path),
                "name": found.path[-1],
                "tag": "1",
                "children": children,
            }
        raise NotFound(
            f"{label} not found, or you do not have access to it", "browse GET /api/v3/catalog"
        )

    def _sees(self, who: Principal, c: Container) -> bool:
        return c.path[0].lower() == who.home.lower() or self.grants.sees_container(who, c.path)

    def _readable(self, path: Sequence[str], who: Principal, ctx: Sequence[str] = ()) -> Dataset:
        ds = self.catalog.resolve(path, ctx)
        if ds is None or not self.grants.allows(who, "SELECT", ds.path):
            raise not_found(path)
        return ds

    # -- spaces, folders and virtual datasets ---------------------------------------------

    def create_space(self, name: str, *, user: str, exist_ok: bool = False) -> bool:
        """Create a space; its creator gets ALL on it. False when it existed and `exist_ok`."""
        who = self.grants.principal(user)
        created = self.catalog.create_container((name,), who.name, exist_ok=exist_ok)
        if created and not who.admin:
            self.grants.grant(ADMIN, "ALL", (name,), "USER", who.name, recursive=True)
        return created

    def create_folder(self, path: Sequence[str], *, user: str, exist_ok: bool = False) -> bool:
        """Create a folder in a space or home (ALL on the parent needed)."""
        who = self.grants.principal(user)
        self._require_manage(who, tuple(path[:-1]), "creating a folder")
        return self.catalog.create_container(path, who.name, exist_ok=exist_ok)

    def drop_container(self, path: Sequence[str], *, user: str) -> None:
        """Drop an empty space or folder (ALL on it needed)."""
        who = self.grants.principal(user)
        self._require_manage(who, tuple(path), "dropping it")
        self.catalog.drop_container(path)

    def _require_manage(self, who: Principal, path: tuple[str, ...], doing: str) -> None:
        if path and path[0].lower() == who.home.lower():
            return
        if not path or self.catalog.container(path) is None:
            raise NotFound(
                f"no space or folder {paths.render(path)}",
                "create the space first with CREATE SPACE",
            )
        if not self.grants.allows(who, "ALL", path):
            if self.grants.sees_container(who, path):
                raise AccessDenied(
                    f"{doing} needs ALL on {paths.render(path)}", "ask an administrator to GRANT it"
                )
            raise NotFound(
                f"no space or folder {paths.render(path)}", "check the name, or ask for access"
            )

    def save_view(
        self,
        path: Sequence[str],
        sql: str,
        *,
        user: str,
        context: Sequence[str] = (),
        dialect: str | None = None,
        replace: bool = True,
    ) -> dict[str, Any]:
        """Create or replace a virtual dataset; returns it and the state of its dependents."""
        who = self.grants.principal(user)
        path = tuple(path)
        d = (dialect or self.dialect).lower()
        parent = path[:-1]
        if not parent:
            raise EngineError(
                f"a view needs a space: '{path[0]}' has no container",
                'save it in a space or your home, e.g. "My Space".v or "@you".v',
            )
        if parent[0].startswith("@"):
            if parent[0].lower() != who.home.lower() and not who.admin:
                raise NotFound(
                    f"no space or folder {paths.render(parent)}",
                    "save views in your home or a space",
                )
        else:
            container = self.catalog.container(parent)
            if container is None or container.origin != "space":
                raise NotFound(
                    f"no space or folder {paths.render(parent)}",
                    "create it with CREATE SPACE / CREATE FOLDER",
                )
            self._require_manage(who, parent, "saving a view")
        existing = self.catalog.lookup(path)
        if existing is not None:
            if not existing.virtual:
                raise EngineError(
                    f"{paths.render(path)} is a physical dataset", "pick another name"
                )
            if not replace:
                raise EngineError(
                    f"view {paths.render(path)} already exists", "use CREATE OR REPLACE VIEW"
                )
        fields, reads, read_all = self._validate_view(sql, who, tuple(context), d)
        if paths.key(path) in read_all:
            raise EngineError(f"view {paths.render(path)} would read itself", "remove the cycle")
        ds = self.catalog.save_dataset(
            path,
            kind="VIRTUAL",
            fields=fields,
            by=who.name,
            sql=sql,
            dialect=d,
            context=context,
            reads=reads,
        )
        return {
            "dataset": ds.as_json(),
            "created": existing is None,
            "dependents": self._revalidate(ds),
        }

    def _validate_view(
        self, sql: str, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> tuple[list[Field], list[str], set[str]]:
        ast = parse_query(sql, dialect)
        if not isinstance(ast, _QUERY_TYPES):
            raise EngineError("a view is defined by a query", "write CREATE VIEW v AS SELECT ...")
        prepared = self._plan_query(ast, who, ctx, accelerate=False)
        if prepared.system:
            raise EngineError(
                "views cannot read system tables", "query INFORMATION_SCHEMA directly"
            )
        assert prepared.plan is not None
        fields = self._fields_of(prepared)
        names = [f.name.lower() for f in fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise EngineError(
                f"the view would have duplicate columns: {', '.join(dupes)}", "alias them apart"
            )
        return fields, [d.key for d in prepared.plan.datasets], {d.key for d in prepared.plan.read}

    def _fields_of(self, prepared: _Prepared) -> list[Field]:
        try:
            with self._borrowed(prepared) as cur:
                rows = cur.execute(f"DESCRIBE {prepared.sql}").fetchall()
        except duckdb.Error as exc:
            raise QueryFailed(str(exc).splitlines()[0], "check the query") from None
        return [Field(r[0], r[1]) for r in rows]

    def _revalidate(self, changed: Dataset) -> list[dict[str, Any]]:
        """Re-derive the columns of every view reading `changed`; report which still work."""
        report = []
        for dep in self.catalog.dependents(changed.path):
            try:
                fields, _, _ = self._validate_view(dep.sql or "", ADMIN, dep.context, dep.dialect)
                if list(fields) != list(dep.fields):
                    self.catalog.update_fields(dep, fields)
                else:
                    self.catalog.mark_broken(dep, None)
                report.append({"path": list(dep.path), "status": "OK"})
            except FleuveError as exc:
                self.catalog.mark_broken(dep, exc.message)
                report.append({"path": list(dep.path), "status": "BROKEN", "error": exc.message})
        return report

    def drop_view(self, path: Sequence[str], *, user: str) -> dict[str, Any]:
        """Drop a virtual dataset and its reflections; reports the views that break."""
        who = self.grants.principal(user)
        ds = self.catalog.resolve(path, ())
        if ds is None or not ds.virtual or not self.grants.allows(who, "SELECT", ds.path):
            raise not_found(path, what="view")
        self.grants.require(who, "ALL", ds.path, "dropping the view")
        for r in self.reflections.on(ds):
            self.reflections.drop(r)
        self.catalog.drop_dataset(ds)
        report = []
        for dep in self.catalog.dependents(ds.path):
            message = f"reads {paths.render(ds.path)}, which was dropped"
            self.catalog.mark_broken(dep, message)
            report.append({"path": list(dep.path), "status": "BROKEN", "error": message})
        return {"dataset": ds.as_json(), "dropped": True, "dependents": report}

    def set_staleness(
        self, path: Sequence[str], seconds: int | None, *, user: str, context: Sequence[str] = ()
    ) -> Dataset:
        """Let reflections answer for `path` while at most `seconds` old (None: only fresh ones)."""
        who = self.grants.principal(user)
        ds = self._readable(path, who, context)
        self.grants.require(who, "ALL", ds.path, "changing the staleness window")
        self.catalog.set_staleness(ds, seconds)
        return self.catalog.lookup(ds.path) or ds

    # -- sources and files -------------------------------------------------------------

    def add_source(self, name: str, kind: str, *, user: str, **config: Any) -> dict[str, Any]:
        """Attach an external database (postgres, mysql: `dsn=`) or files (`location=`)."""
        who = self.grants.principal(user)
        if not who.admin:
            raise AccessDenied("only administrators add sources", "ask an administrator")
        src = self.catalog.add_source(name, kind, config, who.name)
        return {"id": src.id, "name": src.name, "type": src.kind, "config": src.redacted()}

    def drop_source(self, name: str, *, user: str) -> None:
        """Forget a source and the datasets promoted from it."""
        who = self.grants.principal(user)
        if not who.admin:
            raise AccessDenied("only administrators drop sources", "ask an administrator")
        self.catalog.drop_source(name)

    def sources(self, *, user: str) -> list[dict[str, Any]]:
        """The sources, secrets masked (administrators only)."""
        who = self.grants.principal(user)
        if not who.admin:
            raise AccessDenied("only administrators list source settings", "ask an administrator")
        return [
            {"id": s.id, "name": s.name, "type": s.kind, "config": s.redacted()}
            for s in self.catalog.meta().sources.values()
        ]

    def promote(self, path: Sequence[str], *, user: str, format: str | None = None) -> Dataset:
        """Make a folder or file of a files source a dataset, in place (Hive partitions as columns)."""
        who = self.grants.principal(user)
        path = tuple(path)
        src, location = self.catalog.file_location(path)
        if not self.grants.allows(who, "ALL", (src.name,)):
            raise not_found(path, what="folder")
        with self.project.lake.session() as con:
            self.catalog.prepare_files(con, src)
        fmt = (format or self._detect_format(location)).lower()
        if fmt not in ("parquet", "csv", "json"):
            raise EngineError(f"unknown file format '{fmt}'", "use parquet, csv or json")
        relation = file_relation(location, fmt)
        try:
            fields = self._fields_of(_Prepared(sql=f"SELECT * FROM {relation}"))
        except QueryFailed as exc:
            raise EngineError(
                f"cannot read {fmt} files at {paths.render(path)}: {exc.message}",
                "check the folder holds files of that format",
            ) from None
        return self.catalog.save_dataset(
            path,
            kind="FILES",
            fields=fields,
            by=who.name,
            options={"relation": relation, "format": fmt, "location": location},
        )

    def forget(self, path: Sequence[str], *, user: str) -> None:
        """Turn a promoted folder back into plain files."""
        who = self.grants.principal(user)
        ds = self.catalog.lookup(path)
        if ds is None or ds.origin != "files" or not self.grants.allows(who, "ALL", ds.path):
            raise not_found(path)
        for r in self.reflections.on(ds):
            self.reflections.drop(r)
        self.catalog.drop_dataset(ds)

    def _detect_format(self, location: str) -> str:
        for fmt in ("parquet", "csv", "json"):
            if location.lower().endswith(f".{fmt}"):
                return fmt
        with self.project.lake.session() as con:
            for fmt in ("parquet", "csv", "json", "jsonl"):
                n = con.execute(
                    f"SELECT count(*) FROM glob({quote_literal(location.rstrip('/') + f'/**/*.{fmt}')})"
                ).fetchone()[0]
                if n:
                    return "json" if fmt == "jsonl" else fmt
        raise EngineError(f"no parquet, csv or json files under {location}", "check the path")

    # -- reflections ---------------------------------------------------------------------

    def create_reflection(
        self, body: dict[str, Any], *, user: str, build: bool = True
    ) -> dict[str, Any]:
        """Create a reflection from the REST object (`datasetId`, `type`, `name`, fields...)."""
        who = self.grants.principal(user)
        dataset = self._dataset_by_id(str(body.get("datasetId", "")), who)
        spec = spec_from_rest(body)
        name = str(body.get("name") or f"{spec.kind.lower()}_{dataset.path[-1]}")
        r, _ = self._create_reflection(
            name, dataset.path, spec, who, (), enabled=bool(body.get("enabled", True)), build=build
        )
        return self._reflection_json(r)

    def reflection(self, reflection_id: str, *, user: str) -> dict[str, Any]:
        """One reflection in the REST shape, with its status."""
        who = self.grants.principal(user)
        return self._reflection_json(self._visible_reflection(reflection_id, who))

    def list_reflections(self, *, user: str, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """Reflections on datasets `user` may read."""
        who = self.grants.principal(user)
        out = []
        for r in self.reflections.all():
            if not self.grants.allows(who, "SELECT", r.dataset_path):
                continue
            j = self._reflection_json(r)
            if dataset_id is None or j["datasetId"] == dataset_id:
                out.append(j)
        return out

    def update_reflection(
        self, reflection_id: str, body: dict[str, Any], *, user: str
    ) -> dict[str, Any]:
        """Change a reflection (REST PUT): enabled, name, fields; a changed definition rebuilds."""
        who = self.grants.principal(user)
        r = self._managed_reflection(reflection_id, who)
        changes: dict[str, Any] = {}
        if "enabled" in body:
            changes["enabled"] = bool(body["enabled"])
        if body.get("name") and body["name"] != r.name:
            changes["name"] = str(body["name"])
        keys = (
            "displayFields",
            "dimensionFields",
            "measureFields",
            "partitionFields",
            "sortFields",
            "type",
        )
        if any(k in body for k in keys):
            merged = {**r.as_json(None, None), **{k: body[k] for k in keys if k in body}}
            spec = spec_from_rest(merged)
            dataset = self.catalog.lookup(r.dataset_path)
            if dataset is None:
                raise NotFound("the reflection's dataset no longer exists", "drop the reflection")
            from fleuve.engine.reflections.service import validate

            validate(spec, dataset)
            if spec != r.spec:
                changes["spec"] = spec
        policy = body.get("refreshPolicy")
        if isinstance(policy, dict) and policy.get("type"):
            changes["refresh_policy"] = str(policy["type"]).upper()
            changes["refresh_seconds"] = policy.get("everySeconds")
        r = self.reflections.alter(r, **changes)
        if "spec" in changes and r.enabled:
            self.reflections.refresh(r, mode="FULL")
            r = self.reflections.get(r.id)
        return self._reflection_json(r)

    def delete_reflection(self, reflection_id: str, *, user: str) -> None:
        """Drop a reflection and its table."""
        who = self.grants.principal(user)
        self.reflections.drop(self._managed_reflection(reflection_id, who))

    def refresh_reflection(
        self, reflection_id: str, *, user: str, mode: str = "AUTO"
    ) -> RefreshResult:
        """Refresh now: AUTO (incremental when possible), FULL or INCREMENTAL-if-possible."""
        who = self.grants.principal(user)
        return self.reflections.refresh(
            self._managed_reflection(reflection_id, who), mode=mode.upper()
        )

    def refresh_due(self) -> list[RefreshResult]:
        """Refresh every reflection whose policy says it is due (the pipeline and scheduler call this)."""
        out = []
        for r in self.reflections.due():
            try:
                out.append(self.reflections.refresh(r))
            except FleuveError as exc:
                log.warning("reflection %s: %s", r.name, exc.message)
                out.append(
                    RefreshResult(r.name, "FAILED", r.rows, 0.0, r.built_snapshot, exc.message)
                )
        return out

    def start_scheduler(self, interval: float = 60.0) -> None:
        """Refresh due reflections every `interval` seconds in a background thread."""
        if self._scheduler is not None:
            return

        def loop() -> None:
            while not self._stopping.wait(interval):
                try:
                    self.refresh_due()
                except Exception:  # the scheduler must outlive one bad refresh
                    log.exception("scheduled reflection refresh failed")

        self._scheduler = threading.Thread(target=loop, name="fleuve-reflections", daemon=True)
        self._scheduler.start()

    def _create_reflection(
        self,
        name: str,
        path: Sequence[str],
        spec: ddl.ReflectionSpec,
        who: Principal,
        ctx: Sequence[str],
        *,
        enabled: bool,
        build: bool,
    ) -> tuple[Reflection, RefreshResult | None]:
        dataset = self._readable(path, who, ctx)
        self.grants.require(who, "ALL", dataset.path, "creating a reflection")
        r = self.reflections.create(name, dataset, spec, who.name, enabled=enabled)
        result = None
        if build and enabled:
            result = self.reflections.refresh(r, mode="FULL")
            r = self.reflections.get(r.id)
        return r, result

    def _dataset_by_id(self, dataset_id: str, who: Principal) -> Dataset:
        found = self.catalog.by_id(dataset_id)
        if not isinstance(found, Dataset) or not self.grants.allows(who, "SELECT", found.path):
            raise NotFound(
                f"dataset {dataset_id} not found, or you do not have access to it",
                "check datasetId",
            )
        return found

    def _visible_reflection(self, name_or_id: str, who: Principal) -> Reflection:
        r = self.reflections.get(name_or_id)
        if not self.grants.allows(who, "SELECT", r.dataset_path):
            raise NotFound(
                f"reflection {name_or_id} not found", "list reflections with SHOW REFLECTIONS"
            )
        return r

    def _managed_reflection(self, name_or_id: str, who: Principal) -> Reflection:
        r = self._visible_reflection(name_or_id, who)
        self.grants.require(who, "ALL", r.dataset_path, "managing reflections")
        return r

    def _reflection_json(self, r: Reflection) -> dict[str, Any]:
        dataset = self.catalog.lookup(r.dataset_path)
        fresh = self.reflections.fresh(r) if r.table_name else None
        out = r.as_json(dataset.id if dataset else None, fresh)
        pending = self.reflections.pending_counts(r.id)
        for k, n in zip(("considered", "matched", "chosen"), pending, strict=True):
            out["metrics"][k] += n
        return out

    # -- grants -------------------------------------------------------------------------

    def grant(
        self,
        privilege: str,
        path: Sequence[str] | str,
        *,
        user: str,
        grantee: str,
        grantee_type: str = "ROLE",
        recursive: bool | None = None,
    ) -> Grant:
        """GRANT SELECT|ALL on a dataset (or everything under a container: `path` ending in `.*`)."""
        who = self.grants.principal(user)
        p, rec = _grant_target(path, recursive)
        return self.grants.grant(who, privilege, p, grantee_type, grantee, recursive=rec)

    def revoke(
        self,
        privilege: str,
        path: Sequence[str] | str,
        *,
        user: str,
        grantee: str,
        grantee_type: str = "ROLE",
        recursive: bool | None = None,
    ) -> int:
        """REVOKE a privilege; returns how many grants were removed."""
        who = self.grants.principal(user)
        p, rec = _grant_target(path, recursive)
        return self.grants.revoke(who, privilege, p, grantee_type, grantee, recursive=rec)

    def list_grants(
        self,
        *,
        user: str,
        path: Sequence[str] | str | None = None,
        recursive: bool = False,
        grantee: str | None = None,
    ) -> list[Grant]:
        """Grants visible to `user`: all for administrators, else their own and their roles'."""
        who = self.grants.principal(user)
        target = None
        if path is not None:
            p, rec = _grant_target(path, recursive or None)
            found = self.catalog.container(p) if rec else self.catalog.lookup(p)
            target = found.path if found is not None else p
        out = self.grants.list(target, grantee)
        if not who.admin:
            out = [
                g
                for g in out
                if (g.grantee_kind == "USER" and g.grantee == who.name)
                or (g.grantee_kind == "ROLE" and g.grantee in who.roles)
            ]
        return out

    # == internals used by the planner and reflections ===================================

    def _expand_dataset(self, dataset: Dataset) -> exp.Expression:
        """SELECT * over `dataset` with every name resolved to DuckDB relations."""
        ast = exp.select("*").from_(exp.to_table(paths.render(dataset.path), dialect="duckdb"))
        return self.planner.plan(ast, ADMIN, accelerate=False).ast

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
                out = [
                    (r[0], r[1])
                    for r in cur.execute(f"DESCRIBE {probe.sql(dialect='duckdb')}").fetchall()
                ]
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
        if name not in self._stubs:
            cols = ", ".join(f"{quote_ident(f.name)} {f.type}" for f in ds.fields)
            with self.project.lake.session() as con:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {STUB_SCHEMA}")
                con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({cols})")
            self._stubs.add(name)
        return name


def _open(
    cur: duckdb.DuckDBPyConnection, prepared: _Prepared, batch_rows: int
) -> pa.RecordBatchReader:
    """Start the prepared query; a write runs to its end, as it commits when its result closes."""
    if prepared.writes:
        done = cur.execute(prepared.sql).to_arrow_table()
        return pa.RecordBatchReader.from_batches(done.schema, done.to_batches(batch_rows))
    return cur.execute(prepared.sql).to_arrow_reader(batch_rows)


def _lake_table(path: Sequence[str]) -> exp.Table:
    return exp.to_table(
        f"{CATALOG}.{quote_ident(path[0])}.{quote_ident(path[1])}", dialect="duckdb"
    )


def _context(default_schema: str | None, context: Sequence[str] | None) -> tuple[str, ...]:
    if context:
        return tuple(context)
    if default_schema:
        return paths.parse(default_schema)
    return ()


def _grant_target(
    path: Sequence[str] | str, recursive: bool | None
) -> tuple[tuple[str, ...], bool]:
    if isinstance(path, str):
        text = path.strip()
        star = text.endswith(".*")
        parts = paths.parse(text[:-2] if star else text)
        return parts, bool(recursive) or star
    return tuple(path), bool(recursive)


def _status(summary: str) -> pa.Table:
    return pa.table({"ok": [True], "summary": [summary]}, schema=_STATUS)


def _report_table(report: dict[str, Any]) -> pa.Table:
    ds = report["dataset"]
    verb = (
        "dropped" if report.get("dropped") else "created" if report.get("created") else "replaced"
    )
    lines = [(True, f"view {paths.render(ds['path'])} {verb}")]
    for dep in report["dependents"]:
        where = paths.render(dep["path"])
        if dep["status"] == "OK":
            lines.append((True, f"dependent view {where} still works"))
        else:
            lines.append((False, f"dependent view {where} is broken: {dep.get('error')}"))
    return pa.table({"ok": [x[0] for x in lines], "summary": [x[1] for x in lines]}, schema=_STATUS)


def _refresh_summary(r: RefreshResult) -> str:
    if r.mode == "SKIPPED":
        return f"reflection {r.reflection}: skipped ({r.reason})"
    why = (
        f"; full because {r.reason}"
        if r.mode == "FULL" and r.reason and r.reason != "never built"
        else ""
    )
    return f"reflection {r.reflection}: {r.mode.lower()} refresh, {r.rows:,} rows at snapshot {r.snapshot}{why}"


_QUOTED = re.compile(r"'(?:[^']|'')*'")
_INTERNAL = re.compile(
    r"\b(?:src_[0-9a-f]{12}|memory\.fleuve_\w+|__reflections|r_[0-9a-f]{12}_\d+\w*|fleuve_sys_\w+)\b"
)


def safe_error(exc: BaseException, who: Principal) -> str:
    """DuckDB's message, first line; for non-administrators without values or internal names.

    A value in an error can come from a row a view filters out (the optimizer may evaluate an
    expression before the view's filter), so values never reach users without full access.
    """
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if who.admin:
        return text
    text = _QUOTED.sub("'…'", text)
    text = _INTERNAL.sub("…", text)
    return text.replace(f"{CATALOG}.", "")
