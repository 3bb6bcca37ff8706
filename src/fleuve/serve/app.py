"""The HTTP application: health, login, and the lake's snapshots and time travel."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fleuve import __version__
from fleuve.errors import FleuveError
from fleuve.lake import LAYERS, quote_ident
from fleuve.metadata import PipelineRun, User
from fleuve.project import Project
from fleuve.security import auth


class Login(BaseModel):
    userName: str
    password: str


def create_app(project: Project) -> FastAPI:
    """The FastAPI app serving `project`."""
    app = FastAPI(title="Fleuve", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.project = project

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"errorMessage": str(exc.detail), "moreInfo": ""},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(FleuveError)
    async def fleuve_error(_: Request, exc: FleuveError) -> JSONResponse:
        return JSONResponse(
            {"errorMessage": exc.message, "moreInfo": exc.fix or ""}, status_code=400
        )

    def current_user(request: Request) -> User:
        header = request.headers.get("authorization", "")
        token = None
        if header.startswith("_dremio"):
            token = header.removeprefix("_dremio").strip()
        elif header.lower().startswith("bearer "):
            token = header[7:].strip()
        user = auth.user_for_token(project.db, token) if token else None
        if user is None:
            raise HTTPException(
                401,
                "authentication required: log in at POST /apiv2/login",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return user

    Authed = Annotated[User, Depends(current_user)]

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.post("/apiv2/login")
    def login(body: Login) -> dict[str, Any]:
        user = auth.authenticate(project.db, body.userName, body.password)
        if user is None:
            raise HTTPException(401, "invalid user name or password")
        token, row = auth.issue_token(project.db, user)
        return {
            "token": token,
            "userName": user.username,
            "expires": int(row.expires_at.timestamp() * 1000),
            "admin": "admin" in user.roles,
        }

    @app.get("/api/fleuve/v1/lake/snapshots")
    def snapshots(_: Authed) -> dict[str, Any]:
        return {
            "data": [
                {
                    "id": s.snapshot_id,
                    "time": s.time.isoformat(),
                    "schemaVersion": s.schema_version,
                    "changes": s.changes,
                }
                for s in project.lake.snapshots()
            ]
        }

    @app.get("/api/fleuve/v1/lake/layers")
    def layers(_: Authed) -> dict[str, Any]:
        sizes = project.lake.layer_sizes()
        return {
            "data": [
                {
                    "schema": layer.schema,
                    "compression": layer.compression,
                    "partitioning": layer.partitioning,
                    "bytes": sizes.get(layer.schema, 0),
                }
                for layer in LAYERS.values()
            ]
        }

    @app.get("/api/fleuve/v1/lake/tables/{schema}/{table}")
    def table_rows(
        schema: str,
        table: str,
        _: Authed,
        version: Annotated[int | None, Query(description="snapshot id for time travel")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> dict[str, Any]:
        if (schema, table) not in set(project.lake.tables(schema)):
            raise HTTPException(404, f"no table {schema}.{table} in the lake")
        name = f"{quote_ident(schema)}.{quote_ident(table)}"
        sql = f"SELECT * FROM {name}" + (
            f" AT (VERSION => {version})" if version is not None else ""
        )
        try:
            rows = project.lake.query(f"{sql} LIMIT {limit}")
        except Exception as exc:
            raise HTTPException(400, str(exc).splitlines()[0]) from None
        return {
            "version": version if version is not None else project.lake.current_snapshot(),
            "rows": rows.to_pylist(),
        }

    @app.get("/api/fleuve/v1/pipeline/runs")
    def pipeline_runs(_: Authed, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        from sqlalchemy import select

        with project.db.session() as s:
            runs = s.scalars(select(PipelineRun).order_by(PipelineRun.id.desc()).limit(limit)).all()
            return {
                "data": [
                    {
                        "id": r.id,
                        "status": r.status,
                        "startedAt": r.started_at.isoformat(),
                        "endedAt": r.ended_at.isoformat() if r.ended_at else None,
                        "failedStep": r.failed_step,
                        "steps": [
                            {
                                "name": st.name,
                                "status": st.status,
                                "seconds": st.seconds,
                                "summary": st.summary,
                            }
                            for st in r.steps
                        ],
                    }
                    for r in runs
                ]
            }

    return app
