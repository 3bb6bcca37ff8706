"""The JSON endpoints only the web UI needs: dashboards, charts, completion, downloads.

Everything else the UI shows comes from the platform's REST API (jobs, users, the lake,
grants, lineage, dbt runs, reflections and SQL jobs through `/api/v3`), and these routes share
its dependencies: the signed-in user, the privilege checks, the errors. Every query runs
through the engine as the signed-in user, so grants and reflections apply to charts exactly
as to any other client.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from fleuve.dashboards import store
from fleuve.dashboards.query import chart_query, filter_conditions, options_query
from fleuve.dashboards.spec import ChartSpec, DashboardSpec
from fleuve.engine import privileges
from fleuve.errors import Conflict, FleuveError, NotFound
from fleuve.metadata import User
from fleuve.observe.metrics import INSTRUMENTS
from fleuve.project import Project
from fleuve.security import audit, auth
from fleuve.serve.queries import Caller, Queries
from fleuve.serve.rest.deps import (
    Authed,
    CallerDep,
    ProjectDep,
    QueriesDep,
    completed_job,
    needs,
)
from fleuve.serve.rest.http_errors import error_responses
from fleuve.serve.rest.json_values import dumps, schema_json

router = APIRouter(prefix="/api/fleuve/v1/ui", tags=["Web UI"])
DOWNLOAD_PAGE = 50_000
CACHE_SECONDS = 60.0
CACHE_MAX_ROWS = 10_000
# A dashboard's charts run this many at a time: enough to overlap I/O, few enough for 2 cores.
CHART_WORKERS = 4
LOG_TAIL_BYTES = 8 * 1024 * 1024  # job logs are looked up in the recent end of the log
# Column listing for completion, read as the user: the engine shows only what they may read.
_COLUMNS_SQL = (
    'SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA."COLUMNS" '
    "WHERE TABLE_SCHEMA NOT IN ('INFORMATION_SCHEMA', 'sys') "
    "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
)


def job_log_lines(log_file: Path, job_id: str, limit: int) -> list[str]:
    """The last `limit` lines of the JSON log written for `job_id`, as readable text."""
    if not log_file.is_file():
        return []
    with log_file.open("rb") as f:
        f.seek(max(0, log_file.stat().st_size - LOG_TAIL_BYTES))
        tail = f.read().decode("utf-8", errors="replace").splitlines()
    lines = []
    for line in tail:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if str(doc.get("job_id")) == job_id:
            lines.append(
                f"{doc.get('timestamp')} {doc.get('level')} {doc.get('service')}: {doc.get('message')}"
            )
    return lines[-limit:]


Monitor = Annotated[User, needs(privileges.MONITOR, "seeing job logs")]
Editor = Annotated[User, needs(privileges.EDIT_DASHBOARDS, "changing charts and dashboards")]
UserAdmin = Annotated[User, needs(privileges.MANAGE_USERS, "managing users")]


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), media_type="application/json", status_code=status)


def _bad(exc: ValidationError) -> FleuveError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return FleuveError(f"invalid {where or 'spec'}: {first.get('msg')}")


def run_query(queries: Queries, caller: Caller, sql: str) -> dict[str, Any]:
    """Run `sql` for `caller`: its rows, timing and the reflections that served it."""
    started = time.perf_counter()
    stream = queries.stream(sql, caller)
    table = pa.Table.from_batches(list(stream.batches), schema=stream.schema)
    elapsed = (time.perf_counter() - started) * 1000
    try:
        reflections = list(queries.engine.job(stream.job_id).reflections)
    except FleuveError:  # the engine may already have forgotten a finished job
        reflections = []
    chosen = [r for r in reflections if r.get("relationship") == "CHOSEN"]
    return {
        "jobId": stream.job_id,
        "columns": schema_json(table.schema),
        # Rows as lists, not dicts: two result columns may share a name.
        "rows": [list(r) for r in zip(*(c.to_pylist() for c in table.columns), strict=True)],
        "rowCount": table.num_rows,
        "elapsedMs": round(elapsed, 1),
        "sql": sql,
        "acceleration": {"accelerated": bool(chosen), "reflections": chosen},
    }


class ResultCache:
    """Chart results, keyed by everything an answer depends on (see `cached_query`).

    Entries also expire after `ttl` seconds, which bounds how long a change the key cannot see
    (rows of an external source read through federation) can still show an earlier answer.
    """

    def __init__(self, ttl: float = CACHE_SECONDS, size: int = 512) -> None:
        self.ttl, self.size = ttl, size
        self._entries: OrderedDict[tuple, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> dict[str, Any] | None:
        """A fresh cached result, or None."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl:
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: tuple, result: dict[str, Any]) -> None:
        """Keep a result, forgetting the least recently used beyond `size`."""
        with self._lock:
            self._entries[key] = (time.monotonic(), result)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


_cache = ResultCache()


def cached_query(
    project: Project, queries: Queries, caller: Caller, sql: str, snapshot: int | None = None
) -> dict[str, Any]:
    """`run_query`, answered from the cache when the same user, with the same roles, ran it on
    the same lake snapshot and catalog (grants, views, reflections)."""
    engine = queries.engine
    try:
        who = engine.grants.principal(caller.username)
    except FleuveError:  # unknown or disabled: the query says so
        return run_query(queries, caller, sql)
    key = (
        who,
        sql,
        project.lake.current_snapshot() if snapshot is None else snapshot,
        engine.catalog.meta().version,
    )
    hit = _cache.get(key)
    INSTRUMENTS.cache_lookup(hit is not None)
    if hit is not None:
        return {**hit, "cached": True, "elapsedMs": 0.0}
    result = run_query(queries, caller, sql)
    if result["rowCount"] <= CACHE_MAX_ROWS:
        _cache.put(key, result)
    return {**result, "cached": False}


@router.get("/me")
def me(user: Authed, project: ProjectDep) -> dict[str, Any]:
    """Who is signed in, with the system privileges they hold (the UI shows what they may do)."""
    return {
        "userName": user.username,
        "roles": user.roles,
        "admin": "admin" in user.roles,
        "privileges": sorted(privileges.held(project.db, user)),
    }


@router.get("/completion")
def completion(queries: QueriesDep, caller: CallerDep) -> Response:
    """Dataset and column names the user may query, for the SQL editor's completion."""
    result = run_query(queries, caller, _COLUMNS_SQL)
    datasets: dict[str, list[dict[str, str]]] = {}
    for schema, table, column, dtype in result["rows"]:
        datasets.setdefault(f"{schema}.{table}", []).append({"name": column, "type": dtype})
    return _json({"datasets": datasets})


@router.get("/queries")
def query_history(
    project: ProjectDep, user: Authed, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    """Recent queries from the audit trail: the caller's own, or everyone's for an admin."""
    mine = None if "admin" in user.roles else user.username
    events = audit.events(project.db, audit.Filters(kind="query", username=mine, limit=limit))
    return {
        "data": [
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "outcome": e.outcome,
                "userName": e.username,
                "target": e.target,
                "detail": e.detail,
            }
            for e in events
        ]
    }


@router.get("/logs")
def job_logs(
    project: ProjectDep,
    _: Monitor,
    job_id: Annotated[str, Query(alias="jobId", min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """The log lines of one job (MONITOR), from the end of the project's JSON log."""
    return {
        "lines": job_log_lines(project.settings.state_dir / "logs" / "fleuve.log", job_id, limit)
    }


# -- SQL Lab downloads -------------------------------------------------------------------


@router.get("/sql/{job_id}/download")
def download(
    job_id: str,
    queries: QueriesDep,
    user: Authed,
    format: Annotated[str, Query(pattern="^(csv|parquet)$")] = "csv",
) -> Response:
    """A completed SQL Lab job's whole result as CSV or Parquet."""
    job = completed_job(queries, job_id, user)
    pages = []
    for offset in range(0, max(job.row_count, 1), DOWNLOAD_PAGE):
        pages.append(queries.engine.results(job_id, offset, DOWNLOAD_PAGE))
    table = pa.concat_tables(pages) if pages else pa.table({})
    sink = io.BytesIO()
    if format == "csv":
        pacsv.write_csv(table, sink)
        media = "text/csv; charset=utf-8"
    else:
        pq.write_table(table, sink, compression="zstd")
        media = "application/vnd.apache.parquet"
    filename = f"fleuve-{job_id[:8]}.{format}"
    return Response(
        sink.getvalue(),
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


# -- charts ------------------------------------------------------------------------------


class ChartPreview(BaseModel):
    """A chart to draw without saving it."""

    chart: dict[str, Any]


def _chart(data: dict[str, Any]) -> ChartSpec:
    try:
        return ChartSpec.model_validate(data)
    except ValidationError as exc:
        raise _bad(exc) from None


def _chart_json(row: Any) -> dict[str, Any]:
    return {
        "slug": row.slug,
        "title": row.title,
        "owner": row.owner,
        "updatedAt": row.updated_at.isoformat(),
        "spec": row.spec,
    }


@router.post("/charts/preview")
def chart_preview(body: ChartPreview, queries: QueriesDep, caller: CallerDep) -> Response:
    """Rows of an unsaved chart (the chart builder's preview)."""
    spec = _chart(body.chart)
    return _json({"chart": spec.model_dump(), **run_query(queries, caller, chart_query(spec))})


@router.get("/charts")
def charts(project: ProjectDep, _: Authed) -> dict[str, Any]:
    """Saved charts."""
    return {"data": [_chart_json(r) for r in store.list_charts(project.db)]}


@router.post("/charts")
def chart_save(body: ChartPreview, project: ProjectDep, user: Editor) -> dict[str, Any]:
    """Save (or replace) a chart; its `name` is its slug."""
    row = store.save_chart(project.db, _chart(body.chart), user.username)
    return _chart_json(row)


@router.get("/charts/{slug}")
def chart_get(slug: str, project: ProjectDep, _: Authed) -> dict[str, Any]:
    """One saved chart's spec."""
    return {"slug": slug, "spec": store.get_chart(project.db, slug).model_dump()}


@router.delete("/charts/{slug}", status_code=204)
def chart_delete(slug: str, project: ProjectDep, _: Editor) -> Response:
    """Delete a saved chart."""
    store.delete_chart(project.db, slug)
    return Response(status_code=204)


# -- dashboards --------------------------------------------------------------------------


class NewDashboard(BaseModel):
    """A dashboard to create in the UI."""

    slug: str
    title: str
    refresh_seconds: int | None = Field(None, ge=10)


class ChartData(BaseModel):
    """The shared filter values chosen on a dashboard."""

    filters: dict[str, Any] = Field(default_factory=dict)


def _dashboard_json(row: Any, spec: DashboardSpec | None = None) -> dict[str, Any]:
    out = {
        "slug": row.slug,
        "title": row.title,
        "origin": row.origin,
        "sourceFile": row.source_file,
        "owner": row.owner,
        "updatedAt": row.updated_at.isoformat(),
    }
    if spec is not None:
        out["spec"] = spec.model_dump()
    return out


@router.get("/dashboards")
def dashboards(project: ProjectDep, _: Authed) -> dict[str, Any]:
    """Every dashboard, from files and from the UI."""
    return {"data": [_dashboard_json(r) for r in store.list_dashboards(project.db)]}


@router.post("/dashboards", responses=error_responses(409))
def dashboard_create(body: NewDashboard, project: ProjectDep, user: Editor) -> dict[str, Any]:
    """Create an empty dashboard to add charts to."""
    try:
        spec = DashboardSpec(slug=body.slug, title=body.title, refresh_seconds=body.refresh_seconds)
    except ValidationError as exc:
        raise _bad(exc) from None
    if store.dashboard_exists(project.db, spec.slug):
        raise Conflict(f"a dashboard '{spec.slug}' already exists", "choose another slug")
    return _dashboard_json(store.save_dashboard(project.db, spec, user.username), spec)


@router.get("/dashboards/{slug}")
def dashboard(slug: str, project: ProjectDep, _: Authed) -> dict[str, Any]:
    """A dashboard's spec: its filters and charts."""
    row, spec = store.get_dashboard(project.db, slug)
    return _dashboard_json(row, spec)


@router.delete("/dashboards/{slug}", status_code=204)
def dashboard_delete(slug: str, project: ProjectDep, _: Editor) -> Response:
    """Delete a dashboard made in the UI."""
    store.delete_dashboard(project.db, slug)
    return Response(status_code=204)


@router.post("/dashboards/{slug}/charts")
def dashboard_add_chart(
    slug: str, body: ChartPreview, project: ProjectDep, user: Editor
) -> dict[str, Any]:
    """Add a chart (a copy of its spec) to a dashboard made in the UI."""
    _, spec = store.get_dashboard(project.db, slug)
    chart = _chart(body.chart)
    charts = [c for c in spec.charts if c.name != chart.name] + [chart]
    updated = spec.model_copy(update={"charts": charts})
    return _dashboard_json(store.save_dashboard(project.db, updated, user.username), updated)


@router.delete("/dashboards/{slug}/charts/{name}")
def dashboard_remove_chart(
    slug: str, name: str, project: ProjectDep, user: Editor
) -> dict[str, Any]:
    """Take a chart off a dashboard made in the UI."""
    _, spec = store.get_dashboard(project.db, slug)
    updated = spec.model_copy(update={"charts": [c for c in spec.charts if c.name != name]})
    return _dashboard_json(store.save_dashboard(project.db, updated, user.username), updated)


@router.post("/dashboards/{slug}/charts/{name}/data")
def dashboard_chart_data(
    slug: str,
    name: str,
    body: ChartData,
    project: ProjectDep,
    queries: QueriesDep,
    caller: CallerDep,
) -> Response:
    """One chart's rows under the chosen filter values, read as the user."""
    _, spec = store.get_dashboard(project.db, slug)
    chart = spec.chart(name)
    if chart is None:
        raise NotFound(f"dashboard '{slug}' has no chart '{name}'")
    sql = chart_query(chart, filter_conditions(spec, chart, body.filters))
    return _json(cached_query(project, queries, caller, sql))


@router.post("/dashboards/{slug}/data")
def dashboard_data(
    slug: str,
    body: ChartData,
    project: ProjectDep,
    queries: QueriesDep,
    caller: CallerDep,
) -> StreamingResponse:
    """Every chart's rows under the chosen filters, read as the user: one JSON line per chart,
    sent as soon as that chart is ready (`{"chart", ...}` or `{"chart", "errorMessage"}`)."""
    _, spec = store.get_dashboard(project.db, slug)
    snapshot = project.lake.current_snapshot()

    def one(chart: ChartSpec) -> dict[str, Any]:
        try:
            sql = chart_query(chart, filter_conditions(spec, chart, body.filters))
            return {"chart": chart.name, **cached_query(project, queries, caller, sql, snapshot)}
        except FleuveError as exc:
            return {"chart": chart.name, "errorMessage": exc.message, "moreInfo": exc.fix or ""}

    def lines() -> Iterator[bytes]:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CHART_WORKERS) as pool:
            for done in as_completed([pool.submit(one, chart) for chart in spec.charts]):
                yield dumps(done.result()) + b"\n"
        # The load ends with the last chart's rows, not with the response's headers.
        INSTRUMENTS.dashboard_load.labels(slug).observe(time.perf_counter() - started)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/dashboards/{slug}/filters/{name}/options")
def filter_options(
    slug: str, name: str, project: ProjectDep, queries: QueriesDep, caller: CallerDep
) -> dict[str, Any]:
    """The values a dimension filter offers, read as the user."""
    _, spec = store.get_dashboard(project.db, slug)
    flt = next((f for f in spec.filters if f.name == name), None)
    if flt is None or flt.type != "values":
        raise NotFound(f"dashboard '{slug}' has no values filter '{name}'")
    dataset = flt.options_dataset or next(
        (c.dataset for c in spec.charts if c.dataset and name not in c.ignore_filters), None
    )
    if dataset is None:
        return {"values": []}
    result = cached_query(project, queries, caller, options_query(dataset, flt.column))
    return {"values": [str(r[0]) for r in result["rows"]]}


# -- admin -------------------------------------------------------------------------------


class NewUser(BaseModel):
    """A user to create."""

    userName: str
    password: str
    roles: list[str] = Field(default_factory=list)


class UserChange(BaseModel):
    """Roles or state to change on a user."""

    roles: list[str] | None = None
    disabled: bool | None = None


@router.post("/admin/users")
def user_create(body: NewUser, project: ProjectDep, admin: UserAdmin) -> dict[str, Any]:
    """Create a user (MANAGE USERS)."""
    user = auth.create_user(
        project.db, body.userName, body.password, body.roles, actor=admin.username
    )
    return {"userName": user.username, "roles": user.roles, "disabled": user.disabled}


@router.patch("/admin/users/{name}")
def user_change(
    name: str, body: UserChange, project: ProjectDep, admin: UserAdmin
) -> dict[str, Any]:
    """Change a user's roles or disable them (MANAGE USERS)."""
    if body.roles is not None:
        auth.set_roles(project.db, name, body.roles, actor=admin.username)
    if body.disabled is not None:
        if name == admin.username and body.disabled:
            raise FleuveError("you cannot disable yourself")
        auth.set_disabled(project.db, name, body.disabled, actor=admin.username)
    user = auth.get_user(project.db, name)
    return {"userName": user.username, "roles": user.roles, "disabled": user.disabled}
