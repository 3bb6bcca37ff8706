"""Fleuve's own REST endpoints: connections, jobs, datasets, the lake, runs, tokens, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypedDict

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from fleuve import ingest, transform
from fleuve.engine import privileges
from fleuve.lake import LAYERS, quote_ident
from fleuve.metadata import PipelineRun, User
from fleuve.security import audit, auth
from fleuve.serve import visibility
from fleuve.serve.rest.deps import (
    Admin,
    Authed,
    CallerDep,
    ProjectDep,
    QueriesDep,
    needs,
    page,
)
from fleuve.serve.rest.ingestion import read_job, start_sync
from fleuve.serve.rest.json_values import dumps

router = APIRouter(prefix="/api/fleuve/v1", tags=["Fleuve"])

_SECRET_KEYS = ("password", "secret", "key", "token", "dsn")

# Operating the platform needs a system privilege (see `fleuve.engine.privileges`).
Syncer = Annotated[User, needs(privileges.SYNC, "starting a sync")]
Monitor = Annotated[User, needs(privileges.MONITOR, "seeing connections and jobs")]
UserAdmin = Annotated[User, needs(privileges.MANAGE_USERS, "listing users")]


def _masked(value: Any, key: str = "") -> Any:
    """A connection's settings with every secret-looking value replaced by '***'."""
    if isinstance(value, dict):
        return {k: _masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key) for v in value]
    if value is not None and any(s in key.lower() for s in _SECRET_KEYS):
        return "***"
    return value


# -- connections and jobs ----------------------------------------------------------------


@router.get("/connections")
def connections(project: ProjectDep, _: Monitor) -> dict[str, Any]:
    """The connections declared in fleuve.yml, secrets masked."""
    return page([_connection_read(project, c) for c in project.settings.connections])


@router.get("/connections/{name}")
def connection(name: str, project: ProjectDep, _: Monitor) -> dict[str, Any]:
    """One connection, secrets masked."""
    return _connection_read(project, project.settings.connection(name))


def _connection_read(project: Any, conn: Any) -> dict[str, Any]:
    """A connection's settings, secrets masked, with its schedule as Airbyte writes it."""
    from fleuve.triggers import airbyte_schedule

    zone = conn.timezone or project.settings.schedule.timezone
    return {
        **_masked(conn.model_dump(mode="json")),
        **airbyte_schedule(conn.schedule or "manual", zone),
    }


@router.post("/connections/{name}/sync")
def connection_sync(name: str, project: ProjectDep, user: Syncer) -> dict[str, Any]:
    """Start a sync of the connection; answers its job (a JobInfoRead)."""
    return read_job(project, start_sync(project, name, user.username))


@router.get("/jobs")
def jobs(
    project: ProjectDep,
    _: Monitor,
    connection: Annotated[str | None, Query(description="only this connection's syncs")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Recent sync jobs, newest first, as JobInfoRead objects."""
    return page(ingest.recent_jobs(project.db, limit, connection))


@router.get("/jobs/{job_id}")
def job(job_id: int, project: ProjectDep, _: Monitor) -> dict[str, Any]:
    """One job with its attempts."""
    return read_job(project, job_id)


# -- datasets and the lake ---------------------------------------------------------------


@router.get("/datasets")
def datasets(queries: QueriesDep, caller: CallerDep) -> dict[str, Any]:
    """The tables and views the caller may query."""
    return page(
        [
            {"path": d.path, "name": ".".join(d.path), "type": d.type}
            for d in visibility.datasets(queries, caller)
        ]
    )


@router.get("/lake/snapshots")
def snapshots(project: ProjectDep, _: Admin) -> dict[str, Any]:
    """The lake's committed snapshots (versions for time travel)."""
    return page(
        [
            {
                "id": s.snapshot_id,
                "time": s.time.isoformat(),
                "schemaVersion": s.schema_version,
                "changes": s.changes,
            }
            for s in project.lake.snapshots()
        ]
    )


@router.get("/lake/layers")
def layers(project: ProjectDep, _: Authed) -> dict[str, Any]:
    """The layers of the lake with their storage options and sizes."""
    sizes = project.lake.layer_sizes()
    return page(
        [
            {
                "schema": layer.schema,
                "compression": layer.compression,
                "partitioning": layer.partitioning,
                "bytes": sizes.get(layer.schema, 0),
            }
            for layer in LAYERS.values()
        ]
    )


@router.get("/lake/tables/{schema}/{table}")
def table_rows(
    schema: str,
    table: str,
    queries: QueriesDep,
    caller: CallerDep,
    version: Annotated[int | None, Query(description="snapshot id for time travel")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Rows of a table, now or as of a snapshot (time travel); grants apply."""
    name = f"{quote_ident(schema)}.{quote_ident(table)}"
    at = f" AT (VERSION => {version})" if version is not None else ""
    stream = queries.stream(f"SELECT * FROM {name}{at} LIMIT {limit}", caller)
    rows = [r for batch in stream.batches for r in batch.to_pylist()]
    current = version if version is not None else queries.project.lake.current_snapshot()
    return Response(dumps({"version": current, "rows": rows}), media_type="application/json")


@router.get("/pipeline/runs")
def pipeline_runs(
    project: ProjectDep, _: Monitor, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """Recent runs of the batch pipeline with their steps."""
    with project.db.session() as s:
        runs = s.scalars(select(PipelineRun).order_by(PipelineRun.id.desc()).limit(limit)).all()
        return page(
            [
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
        )


# -- grants, lineage, transform runs -------------------------------------------------------


class GrantRequest(BaseModel):
    """A privilege on an object for a role or a user."""

    privilege: str = Field(description="SELECT or ALL; on SYSTEM, a system privilege, e.g. SYNC")
    object: str = Field(description="a dataset path, a container with .*, e.g. bronze.*, or SYSTEM")
    grantee: str = Field(description="the role or user name")
    granteeType: str = Field("ROLE", description="ROLE or USER")


@router.get("/grants")
def grants(
    queries: QueriesDep,
    user: Authed,
    object: Annotated[str | None, Query(description="only grants on this path")] = None,
    grantee: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Grants: every one with MANAGE GRANTS, the caller's own and their roles' otherwise."""
    found = queries.engine.list_grants(user=user.username, path=object, grantee=grantee)
    return page([g.as_json() for g in found])


@router.post("/grants")
def grant(body: GrantRequest, queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """GRANT a privilege (the same as the SQL statement)."""
    return queries.engine.grant(body.privilege, body.object, **_grantee(body, user)).as_json()


@router.post("/grants/revoke")
def revoke(body: GrantRequest, queries: QueriesDep, user: Authed) -> dict[str, Any]:
    """REVOKE a privilege; answers how many grants went."""
    return {"removed": queries.engine.revoke(body.privilege, body.object, **_grantee(body, user))}


class _Grantee(TypedDict):
    user: str
    grantee: str
    grantee_type: str


def _grantee(body: GrantRequest, user: User) -> _Grantee:
    """Who asks for the change, and for whom."""
    return {"user": user.username, "grantee": body.grantee, "grantee_type": body.granteeType}


@router.get("/lineage")
def lineage(
    project: ProjectDep,
    queries: QueriesDep,
    user: Authed,
    node: Annotated[
        str | None, Query(description="only what flows into and out of this node")
    ] = None,
    columns: Annotated[
        bool, Query(description="false to leave out the column-level edges (faster)")
    ] = True,
) -> dict[str, Any]:
    """The lineage graph (tables, models, dashboards, reflections) with column-level edges."""
    graph = transform.lineage(project.settings, lake=project.lake, columns=columns)
    keep = None
    if node is not None:
        center = graph.node(node).id
        keep = (
            {center}
            | {n.id for n in graph.upstream(center)}
            | {n.id for n in graph.downstream(center)}
        )
    return visibility.visible_lineage(queries, user.username, graph, keep)


@router.get("/transform/runs")
def transform_runs(
    project: ProjectDep, _: Monitor, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """Recent dbt runs, newest first, with each node's outcome and timing."""
    return page([r.to_dict() for r in transform.run_history(project.db, limit)])


@router.get("/transform/runs/{run_id}")
def transform_run(run_id: str, project: ProjectDep, _: Monitor) -> dict[str, Any]:
    """One dbt run (a unique prefix of its id is enough)."""
    return transform.get_run(project.db, run_id).to_dict()


# -- tokens, users, audit ----------------------------------------------------------------


class TokenRequest(BaseModel):
    """A personal access token to create."""

    name: str = Field(description="what the token is for, e.g. 'superset'")
    days: int | None = Field(90, ge=1, description="lifetime in days; null for no expiry")


def _token_json(t: Any) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": t.kind,
        "name": t.name,
        "createdAt": t.created_at.isoformat(),
        "expiresAt": t.expires_at.isoformat() if t.expires_at else None,
    }


@router.get("/tokens")
def tokens(project: ProjectDep, user: Authed) -> dict[str, Any]:
    """The caller's live tokens (never their values)."""
    return page([_token_json(t) for t in auth.list_tokens(project.db, user.username)])


@router.post("/tokens")
def token_create(body: TokenRequest, project: ProjectDep, user: Authed) -> dict[str, Any]:
    """A new personal access token, shown once; send it as `Authorization: Bearer <token>`."""
    token, row = auth.create_personal_token(project.db, user.username, body.name, body.days)
    return {**_token_json(row), "token": token}


@router.delete("/tokens/{token_id}", status_code=204)
def token_revoke(token_id: int, project: ProjectDep, user: Authed) -> Response:
    """Revoke one of the caller's tokens."""
    auth.revoke_token_id(project.db, user.username, token_id)
    return Response(status_code=204)


@router.get("/users")
def users(project: ProjectDep, _: UserAdmin) -> dict[str, Any]:
    """Every user with roles and state (MANAGE USERS)."""
    return page(
        [
            {
                "userName": u.username,
                "roles": u.roles,
                "disabled": u.disabled,
                "createdAt": u.created_at.isoformat(),
            }
            for u in auth.list_users(project.db)
        ]
    )


@router.get("/audit")
def audit_events(
    project: ProjectDep,
    _: Admin,
    kind: Annotated[
        str | None, Query(description="login, query, user, token, grant, connection")
    ] = None,
    user: Annotated[str | None, Query()] = None,
    outcome: Annotated[str | None, Query(description="ok, failed, cancelled, denied")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601 time")] = None,
    contains: Annotated[str | None, Query(description="text in the target (e.g. the SQL)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The audit trail, newest first (admins only)."""
    filters = audit.Filters(kind, user, outcome, since, until, contains, limit)
    return page(
        [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "kind": e.kind,
                "action": e.action,
                "outcome": e.outcome,
                "userName": e.username,
                "client": e.client,
                "target": e.target,
                "detail": e.detail,
            }
            for e in audit.events(project.db, filters)
        ]
    )
