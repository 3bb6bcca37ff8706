"""Dremio's REST API v3: login, SQL jobs, paged results, cancel, and the catalog."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fleuve.errors import FleuveError, Unauthenticated
from fleuve.security import auth
from fleuve.serve.rest.deps import (
    Authed,
    CallerDep,
    ProjectDep,
    QueriesDep,
    completed_job,
    own_job,
)
from fleuve.serve.rest.http_errors import error_responses
from fleuve.serve.rest.json_values import schema_json
from fleuve.serve.wire_types import Converter, dumps, json_rows

router = APIRouter(tags=["Dremio REST API v3"])

MAX_PAGE = 500
_REFLECTION_EXAMPLE = {
    "type": "AGGREGATION",
    "name": "daily_revenue_agg",
    "datasetId": "<id from GET /api/v3/catalog/by-path/gold/fct_daily_revenue>",
    "enabled": True,
    "dimensionFields": [{"name": "order_date", "granularity": "DATE"}],
    "measureFields": [{"name": "amount", "measureTypeList": ["SUM", "COUNT"]}],
}


class Login(BaseModel):
    """Credentials for a session token."""

    userName: str
    password: str


class SqlRequest(BaseModel):
    """A query to run as a job."""

    sql: str = Field(description="the SQL text")
    context: list[str] | None = Field(None, description="default schema path, e.g. ['gold']")


@router.post("/apiv2/login", responses=error_responses(401))
async def login(body: Login, request: Request, project: ProjectDep) -> dict[str, Any]:
    """Log in; the token goes in `Authorization: _dremio<token>` (or `Bearer <token>`)."""
    db = project.db
    delay = await run_in_threadpool(auth.login_delay, db, body.userName)
    if delay:
        await asyncio.sleep(delay)
    client = request.client.host if request.client else None
    user = await run_in_threadpool(
        auth.authenticate, db, body.userName, body.password, client=client, via="rest"
    )
    if user is None:
        raise Unauthenticated("invalid user name or password", "check them, or ask an admin")
    token, row = await run_in_threadpool(auth.issue_token, db, user)
    assert row.expires_at is not None  # a login token always expires
    return {
        "token": token,
        "userName": user.username,
        "expires": int(row.expires_at.timestamp() * 1000),
        "admin": "admin" in user.roles,
    }


@router.delete("/apiv2/login", status_code=204)
def logout(request: Request, project: ProjectDep, _: Authed) -> Response:
    """End this session: the token used for this call stops working."""
    auth.revoke_token(project.db, request.state.token)
    return Response(status_code=204)


@router.post("/api/v3/sql")
def submit_sql(body: SqlRequest, queries: QueriesDep, caller: CallerDep) -> dict[str, str]:
    """Start a query; poll `GET /api/v3/job/{id}` until it is COMPLETED."""
    return {"id": queries.submit(body.sql, caller, body.context)}


@router.get("/api/v3/job/{job_id}")
def job_status(job_id: str, queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """A job's state, row count, timing and the reflections considered, matched and chosen."""
    answer = own_job(queries, job_id, user).as_json()
    if answer.get("errorMessage") is None:
        answer.pop("errorMessage", None)
    return answer


@router.get("/api/v3/job/{job_id}/results")
def job_results(
    job_id: str,
    queries: QueriesDep,
    user: Authed,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, description="at most 500")] = 100,
) -> Response:
    """One page of a completed job's rows (`limit` ≤ 500)."""
    if limit > MAX_PAGE:
        raise FleuveError(
            f"limit {limit} is above {MAX_PAGE}", f"page with limit ≤ {MAX_PAGE} and offset"
        )
    job = completed_job(queries, job_id, user)
    page = queries.engine.results(job_id, offset, limit)
    rows = Converter(page.schema).table(page)
    body = {"rowCount": job.row_count, "schema": schema_json(rows.schema), "rows": json_rows(rows)}
    return Response(dumps(body), media_type="application/json")


@router.post("/api/v3/job/{job_id}/cancel", status_code=204)
def job_cancel(job_id: str, queries: QueriesDep, user: Authed) -> Response:
    """Ask a running job to stop."""
    own_job(queries, job_id, user)
    queries.engine.cancel(job_id)
    return Response(status_code=204)


# -- catalog and reflections ----------------------------------------------------------------


@router.get("/api/v3/catalog")
def catalog_root(queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """The top-level containers the caller can see (home, sources, spaces)."""
    return {"data": queries.engine.catalog_root(user=user.username)}


@router.get("/api/v3/catalog/by-path/{path:path}")
def catalog_by_path(path: str, queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """A container or dataset by its path, e.g. /api/v3/catalog/by-path/gold/fct_daily_revenue."""
    parts = [p for p in path.split("/") if p]
    return queries.engine.catalog_by_path(parts, user=user.username)


@router.get("/api/v3/catalog/{entity_id}")
def catalog_entity(entity_id: str, queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """A container (with its children) or a dataset (with its fields) by id."""
    return queries.engine.catalog_item(entity_id, user=user.username)


@router.get("/api/v3/reflection")
def reflections(
    queries: QueriesDep,
    user: Authed,
    dataset_id: Annotated[str | None, Query(alias="datasetId")] = None,
) -> dict[str, Any]:
    """Reflections on the datasets the caller may read."""
    return {"data": queries.engine.list_reflections(user=user.username, dataset_id=dataset_id)}


@router.post("/api/v3/reflection")
def reflection_create(
    body: Annotated[dict[str, Any], Body(examples=[_REFLECTION_EXAMPLE])],
    queries: QueriesDep,
    user: Authed,
) -> dict[str, Any]:
    """Create a reflection (RAW or AGGREGATION) on a dataset, and build it."""
    if "enabled" not in body:
        raise FleuveError("the reflection needs 'enabled'", 'add "enabled": true')
    created = queries.engine.create_reflection(body, user=user.username)
    return created


@router.get("/api/v3/reflection/{reflection_id}")
def reflection(reflection_id: str, queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """One reflection with its status."""
    return queries.engine.reflection(reflection_id, user=user.username)


@router.put("/api/v3/reflection/{reflection_id}")
def reflection_update(
    reflection_id: str,
    body: dict[str, Any],
    queries: QueriesDep,
    user: Authed,
) -> dict[str, Any]:
    """Change a reflection: enabled, name, fields (a changed definition rebuilds it)."""
    updated = queries.engine.update_reflection(reflection_id, body, user=user.username)
    return updated


@router.delete("/api/v3/reflection/{reflection_id}", status_code=204)
def reflection_delete(reflection_id: str, queries: QueriesDep, user: Authed) -> Response:
    """Drop a reflection and its materialization."""
    queries.engine.delete_reflection(reflection_id, user=user.username)
    return Response(status_code=204)
