"""The HTTP application: Dremio's REST API v3, the ingestion API and Fleuve's own endpoints.

Authentication is checked in one place, before routing, so that no route can be left open:
only `GET /health` and `POST /apiv2/login` answer without a token. The OpenAPI pages also
accept HTTP basic credentials, so that a browser can open them.
"""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import RequestResponseEndpoint

from fleuve import __version__
from fleuve.metadata import User
from fleuve.observe.requests import CountRequests, RequestCounter
from fleuve.project import Project
from fleuve.security import audit, auth
from fleuve.serve import ui
from fleuve.serve.queries import Queries
from fleuve.serve.rest import dremio, ingestion, platform, prometheus, schedules
from fleuve.serve.rest.elasticsearch import router as search_router
from fleuve.serve.rest.http_errors import document_errors, error_response, handle_errors

PUBLIC = {("GET", "/health"), ("POST", "/apiv2/login")}
UI_PREFIX = "/api/fleuve/v1/ui"
UI_PAGES = "/ui"
BROWSABLE = {"/docs", "/openapi.json", "/docs/oauth2-redirect"}
LOGIN_HINT = (
    "log in with POST /apiv2/login and send 'Authorization: _dremio<token>' or 'Bearer <token>'"
)


def create_app(project: Project, queries: Queries) -> FastAPI:
    """The FastAPI app serving `project` through `queries`."""
    app = FastAPI(
        title="Fleuve",
        version=__version__,
        description="Dremio-style REST API v3, the ingestion API and Fleuve's own endpoints.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.project = project
    app.state.queries = queries
    # Every answer is counted once, a refused login's too: by route template, status and
    # duration for /metrics, and per minute in the metadata database for the API error rate alert.
    app.state.request_counter = RequestCounter(project.db)
    app.state.request_counter.start()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Identify the caller from its token before any route runs."""
        path = request.url.path
        if (request.method, path) in PUBLIC:
            return await call_next(request)
        header = request.headers.get("authorization", "")
        if path == prometheus.PATH and not header:
            host = request.client.host if request.client else None
            if prometheus.allowed(project, host):  # a scraper from an allowed address
                request.state.user = None
                return await call_next(request)
        user: User | None = None
        token = None
        if header.startswith("_dremio"):
            token = header.removeprefix("_dremio").strip()
        elif header.lower().startswith("bearer "):
            token = header[7:].strip()
        if token:
            user = await run_in_threadpool(auth.user_for_token, project.db, token)
        elif path in BROWSABLE and header.lower().startswith("basic "):
            user = await run_in_threadpool(_basic_user, project, header[6:], request)
        if user is None:
            challenge = 'Basic realm="Fleuve"' if path in BROWSABLE else "Bearer"
            message = (
                "the token is invalid, expired or revoked" if token else "authentication required"
            )
            return error_response(401, message, LOGIN_HINT, {"WWW-Authenticate": challenge})
        request.state.user = user
        request.state.token = token
        # What the routes change is audited where it changes, as coming from here.
        client = "ui" if _from_the_ui(request) else "rest"
        with audit.acting_from(client, request.client.host if request.client else None):
            return await call_next(request)

    handle_errors(app)

    @app.get("/health", tags=["Health"])
    def health() -> dict[str, str]:
        """Liveness: answers without authentication."""
        return {"status": "ok", "version": __version__}

    app.include_router(dremio.router)
    app.include_router(ingestion.router)
    app.include_router(platform.router)
    app.include_router(schedules.router)
    app.include_router(prometheus.router)
    app.include_router(search_router)
    ui.install(app)
    _describe_errors(app)
    app.add_middleware(CountRequests, counter=app.state.request_counter)
    return app


def _describe_errors(app: FastAPI) -> None:
    """Make /openapi.json list each route's error answers, with their body."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(build(), PUBLIC)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _from_the_ui(request: Request) -> bool:
    """True for the web UI's calls: its own endpoints, and the REST API called from its pages
    (a browser names the page in Referer), so that the audit trail says `ui` for them."""
    if request.url.path.startswith(UI_PREFIX):
        return True
    page = urlsplit(request.headers.get("referer", ""))
    return page.netloc == request.url.netloc and page.path.startswith(UI_PAGES)


def _basic_user(project: Project, encoded: str, request: Request) -> User | None:
    """The user of HTTP basic credentials (for the OpenAPI pages in a browser)."""
    try:
        username, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    time.sleep(auth.login_delay(project.db, username))
    client = request.client.host if request.client else None
    return auth.authenticate(project.db, username, password, client=client, via="docs")
