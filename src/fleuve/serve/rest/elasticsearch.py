"""The Elasticsearch-compatible search API over logs and the audit trail, at `/api/fleuve/v1/search`
(and at the root of port 9200 with `--compat-ports`).

Log indices need the MONITOR privilege; the audit trail (`audit-*`) the admin role, as its
endpoint does. Every answer carries `X-Elastic-Product: Elasticsearch`, which the official
clients check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from fleuve.engine import privileges
from fleuve.errors import FleuveError
from fleuve.observe.search import Searcher, SearchError, resolve, root_info

PREFIX = "/api/fleuve/v1/search"
HEADERS = {"X-Elastic-Product": "Elasticsearch"}

# Outside Fleuve's OpenAPI description: its shapes are Elasticsearch's (docs/operations.md).
router = APIRouter(prefix=PREFIX, tags=["Search"], include_in_schema=False)


def _searcher(request: Request) -> Searcher:
    """The app's searcher, made on first use."""
    searcher = getattr(request.app.state, "searcher", None)
    if searcher is None:
        searcher = request.app.state.searcher = Searcher(request.app.state.project)
    return searcher


def _allow(request: Request, audit: bool) -> None:
    """MONITOR for log indices; the admin role for the audit trail."""
    user = request.state.user
    if audit:
        if "admin" not in (user.roles or []):
            raise SearchError(
                "the audit trail (audit-*) needs the admin role", "security_exception", 403
            )
        return
    project = request.app.state.project
    privileges.require(project.db, user, privileges.MONITOR, "search the logs")


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SearchError(f"request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SearchError("request body must be a JSON object")
    return body


def _answer(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=HEADERS)


def _error(exc: SearchError | FleuveError) -> JSONResponse:
    """An error in Elasticsearch's shape (its clients read `error.type` and `error.reason`)."""
    if isinstance(exc, FleuveError):
        kind = "security_exception" if exc.status in (401, 403) else "illegal_argument_exception"
        exc = SearchError(exc.message, kind, exc.status)
    return _answer(exc.body(), exc.status)


async def _run(work: Callable[[], Any]) -> Response:
    """Run `work` (checks and query) off the event loop."""
    try:
        return _answer(await run_in_threadpool(work))
    except (SearchError, FleuveError) as exc:
        return _error(exc)


@router.get("")
@router.head("")
@router.get("/")
@router.head("/")
async def root() -> Response:
    """Cluster information, as Elasticsearch's `GET /`."""
    return await _run(root_info)


async def _search(request: Request, index: str | None, count: bool) -> Response:
    try:
        body = await _body(request)
    except SearchError as exc:
        return _error(exc)
    searcher, params = _searcher(request), dict(request.query_params)

    def work() -> dict[str, Any]:
        _allow(request, resolve(index).audit)
        if count:
            return searcher.count(index, body, params)
        return searcher.search(index, body, params)

    return await _run(work)


@router.get("/{index}/_search")
@router.post("/{index}/_search")
async def search(request: Request, index: str) -> Response:
    """Elasticsearch's `_search` over log indices or the audit trail."""
    return await _search(request, index, count=False)


@router.get("/_search")
@router.post("/_search")
async def search_all(request: Request) -> Response:
    """`_search` without an index: refused, naming the indices to give."""
    return await _search(request, None, count=False)


@router.get("/{index}/_count")
@router.post("/{index}/_count")
async def count(request: Request, index: str) -> Response:
    """Elasticsearch's `_count`."""
    return await _search(request, index, count=True)


@router.get("/_count")
@router.post("/_count")
async def count_all(request: Request) -> Response:
    """`_count` without an index: refused, naming the indices to give."""
    return await _search(request, None, count=True)


def _audit_visible(request: Request) -> bool:
    return "admin" in (request.state.user.roles or [])


@router.get("/_cat/indices")
@router.get("/_cat/indices/{index}")
async def cat_indices(request: Request, index: str | None = None) -> Response:
    """The indices holding records, as `_cat/indices` (`?format=json` or text, `?v` headers)."""
    searcher = _searcher(request)

    def work() -> list[dict[str, str]]:
        _allow(request, False)
        return [
            {
                "health": "green",
                "status": "open",
                "index": name,
                "uuid": name,
                "pri": "1",
                "rep": "0",
                "docs.count": str(docs),
                "docs.deleted": "0",
            }
            for name, docs in searcher.matching(index, _audit_visible(request))
        ]

    if request.query_params.get("format") == "json":
        return await _run(work)
    try:
        rows = await run_in_threadpool(work)
    except (SearchError, FleuveError) as exc:
        return _error(exc)
    columns = (
        list(rows[0])
        if rows
        else ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted"]
    )
    lines = [" ".join(row.values()) for row in rows]
    if "v" in request.query_params:
        lines.insert(0, " ".join(columns))
    return PlainTextResponse("\n".join(lines) + ("\n" if lines else ""), headers=HEADERS)


@router.get("/_mapping")
@router.get("/{index}/_mapping")
async def mapping(request: Request, index: str | None = None) -> Response:
    """The fields of each index, as `_mapping`."""
    searcher = _searcher(request)

    def work() -> dict[str, Any]:
        _allow(request, False)
        return searcher.mapping(index, _audit_visible(request))

    return await _run(work)
