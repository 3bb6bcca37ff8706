"""Dremio's REST API v3: login, SQL jobs, paged results, cancel, and the catalog."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fleuve.engine import QueryJob
from fleuve.errors import FleuveError
from fleuve.security import auth
from fleuve.serve import catalog
from fleuve.serve.rest.deps import ApiError, Authed, CallerDep, ProjectDep, QueriesDep
from fleuve.serve.rest.types import dumps, schema_json

router = APIRouter(tags=["Dremio REST API v3"])

MAX_PAGE = 500


class Login(BaseModel):
    """Credentials for a session token."""

    userName: str
    password: str


class SqlRequest(BaseModel):
    """A query to run as a job."""

    sql: str = Field(description="the SQL text")
    context: list[str] | None = Field(None, description="default schema path, e.g. ['gold']")


@router.post("/apiv2/login")
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
        raise ApiError(401, "invalid user name or password", "check them, or ask an admin")
    token, row = await run_in_threadpool(auth.issue_token, db, user)
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


def _job(queries: QueriesDep, job_id: str, username: str, roles: list[str]) -> QueryJob:
    try:
        job = queries.engine.job(job_id)
    except FleuveError:
        raise ApiError(
            404, f"no job with id {job_id}", "submit the query with POST /api/v3/sql"
        ) from None
    if job.user != username and "admin" not in roles:
        raise ApiError(404, f"no job with id {job_id}", "submit the query with POST /api/v3/sql")
    return job


def _ms(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


@router.get("/api/v3/job/{job_id}")
def job_status(job_id: str, queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """A job's state, row count, timing and the reflections considered, matched and chosen."""
    job = _job(queries, job_id, user.username, user.roles)
    answer: dict[str, Any] = {
        "jobState": job.state,
        "rowCount": job.row_count if job.state == "COMPLETED" else 0,
        "startedAt": _ms(job.started_at),
        "endedAt": _ms(job.ended_at),
        "queryType": job.query_type,
        "acceleration": {"reflectionRelationships": list(job.reflections)},
    }
    if job.state == "FAILED":
        answer["errorMessage"] = job.error or "the query failed"
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
        raise ApiError(
            400, f"limit {limit} is above {MAX_PAGE}", f"page with limit ≤ {MAX_PAGE} and offset"
        )
    job = _job(queries, job_id, user.username, user.roles)
    if job.state != "COMPLETED":
        raise ApiError(
            400, f"job {job_id} is {job.state}, not COMPLETED", "wait until jobState is COMPLETED"
        )
    rows = queries.engine.results(job_id, offset, limit)
    body = {"rowCount": job.row_count, "schema": schema_json(rows.schema), "rows": rows.to_pylist()}
    return Response(dumps(body), media_type="application/json")


@router.post("/api/v3/job/{job_id}/cancel", status_code=204)
def job_cancel(job_id: str, queries: QueriesDep, user: Authed) -> Response:
    """Ask a running job to stop."""
    _job(queries, job_id, user.username, user.roles)
    queries.engine.cancel(job_id)
    return Response(status_code=204)


# -- catalog -----------------------------------------------------------------------------


def entity_id(path: list[str]) -> str:
    """A stable id for a catalog path."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "fleuve:" + "/".join(path)))


def _container(schema: str) -> dict[str, Any]:
    return {
        "id": entity_id([schema]),
        "path": [schema],
        "tag": entity_id([schema, "tag"])[:8],
        "type": "CONTAINER",
        "containerType": "SOURCE",
    }


def _dataset_ref(d: catalog.Dataset) -> dict[str, Any]:
    return {
        "id": entity_id(d.path),
        "path": d.path,
        "type": "DATASET",
        "datasetType": "VIRTUAL" if d.type == "VIEW" else "PROMOTED",
    }


@router.get("/api/v3/catalog")
def catalog_root(queries: QueriesDep, caller: CallerDep) -> dict[str, Any]:
    """The top-level containers the caller can see."""
    return {"data": [_container(s) for s in catalog.schemas(queries, caller)]}


def _entity(queries: QueriesDep, caller: CallerDep, path: list[str]) -> dict[str, Any]:
    found = catalog.datasets(queries, caller)
    if len(path) == 1:
        children = [_dataset_ref(d) for d in found if d.schema == path[0]]
        if children:
            return {**_container(path[0]), "entityType": "source", "children": children}
    for d in found:
        if d.path == path:
            schema = catalog.arrow_schema(queries, caller, d)
            return {
                "entityType": "dataset",
                "id": entity_id(d.path),
                "type": "VIRTUAL_DATASET" if d.type == "VIEW" else "PHYSICAL_DATASET",
                "path": d.path,
                "fields": schema_json(schema),
            }
    raise ApiError(
        404, f"nothing at {'.'.join(path)} in the catalog", "list it with GET /api/v3/catalog"
    )


@router.get("/api/v3/catalog/by-path/{path:path}")
def catalog_by_path(path: str, queries: QueriesDep, caller: CallerDep) -> dict[str, Any]:
    """A container or dataset by its path, e.g. /api/v3/catalog/by-path/gold/fct_daily_revenue."""
    return _entity(queries, caller, [p for p in path.split("/") if p])


@router.get("/api/v3/catalog/{entity}")
def catalog_entity(entity: str, queries: QueriesDep, caller: CallerDep) -> dict[str, Any]:
    """A container or dataset by id."""
    found = catalog.datasets(queries, caller)
    paths = [[s] for s in sorted({d.schema for d in found})] + [d.path for d in found]
    for path in paths:
        if entity_id(path) == entity:
            return _entity(queries, caller, path)
    raise ApiError(404, f"no catalog entity with id {entity}", "list ids with GET /api/v3/catalog")
