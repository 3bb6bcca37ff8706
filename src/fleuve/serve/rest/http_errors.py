"""The error answer every route shares: how errors become it, and its place in OpenAPI.

Routes raise `fleuve.errors.FleuveError` subclasses, which carry their HTTP status
(`NotFound` 404, `Forbidden` 403, `Conflict` 409, ...); `handle_errors` turns them, and
the framework's own errors, into one body shape for every API: Dremio's
`{"errorMessage", "moreInfo"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from fleuve.errors import FleuveError

# What each error status means, whichever route answers it.
MEANINGS = {
    400: "the request is invalid (a parameter, the body or what it asks for); errorMessage says "
    "which and moreInfo how to fix it",
    401: "no valid token: log in with POST /apiv2/login and send 'Authorization: _dremio<token>' "
    "or 'Bearer <token>'",
    403: "the user lacks the role, privilege or grant this needs",
    404: "no such object (job, connection, dataset, reflection, run, ...)",
    409: "it conflicts with what exists (an object of that name)",
}


class ErrorBody(BaseModel):
    """The body of every error answer."""

    errorMessage: str = Field(description="what went wrong")
    moreInfo: str = Field("", description="how to fix it")


def error_response(
    status: int, message: str, more: str = "", headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error answer with its status and body."""
    body = ErrorBody(errorMessage=message, moreInfo=more)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def handle_errors(app: FastAPI) -> None:
    """Answer Fleuve's errors, unknown routes and invalid requests with the error body."""

    @app.exception_handler(FleuveError)
    async def fleuve_error(_: Request, exc: FleuveError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.fix or "")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(
            400,
            f"invalid request: {where}: {first.get('msg')}",
            "see the OpenAPI description at /docs",
        )


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route that can answer these error statuses."""
    return {code: {"model": ErrorBody, "description": MEANINGS[code]} for code in codes}


def document_errors(schema: dict[str, Any], public: set[tuple[str, str]]) -> dict[str, Any]:
    """Add the error answers of every operation to an OpenAPI description, in place.

    Every route but `public` ones answers 401 without a valid token, 403 when the user lacks
    a privilege and 400 for a request it cannot serve (request validation answers 400, never
    FastAPI's 422); a route with path parameters answers 404 for an unknown object. Routes
    declare other statuses (a 404 for an id in the body, a 409) with `error_responses`.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ErrorBody.__name__, ErrorBody.model_json_schema())
    ref = {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            validated = responses.pop("422", None) is not None
            codes = set()
            if (method.upper(), path) not in public:
                codes |= {400, 401, 403}
                if "{" in path:
                    codes.add(404)
            elif validated:
                codes.add(400)
            codes |= {int(c) for c in responses if c.isdigit() and int(c) >= 400}
            for code in sorted(codes):
                meaning = MEANINGS.get(code, "an error")
                answer = responses.setdefault(str(code), {"description": meaning})
                answer["content"] = {"application/json": {"schema": ref}}
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema
