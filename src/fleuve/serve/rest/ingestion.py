"""The Airbyte-compatible ingestion API: trigger a connection's sync and follow its job (Airbyte shapes)."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from fleuve import ingest
from fleuve.engine import privileges
from fleuve.errors import FleuveError, NotFound
from fleuve.metadata import Job, User
from fleuve.project import Project
from fleuve.security import audit
from fleuve.serve.rest.deps import ProjectDep, needs
from fleuve.serve.rest.http_errors import error_responses

router = APIRouter(tags=["Ingestion API"])

Syncer = Annotated[User, needs(privileges.SYNC, "starting a sync")]
Monitor = Annotated[User, needs(privileges.MONITOR, "reading sync jobs")]

# How long `connections/sync` waits for the new job to be recorded before answering.
JOB_WAIT_SECONDS = 10


class SyncRequest(BaseModel):
    """The connection to sync."""

    connectionId: str = Field(description="the connection's name in fleuve.yml")


class JobRequest(BaseModel):
    """The job to look up."""

    id: int | str = Field(description="the job id returned by connections/sync")


def read_job(project: Project, job_id: int) -> dict[str, Any]:
    """The JobInfoRead of one sync job; a 404 when there is none."""
    info = ingest.job_info(project.db, job_id)
    if info is None:
        raise NotFound(f"no sync job with id {job_id}", "use the id connections/sync returned")
    return info


def start_sync(project: Project, name: str, username: str) -> int:
    """Start syncing connection `name` in the background for `username`; returns its job id
    once recorded (the sync audits its start, as coming from this request's origin)."""
    project.settings.connection(name)  # an unknown name fails here, naming the known ones
    with project.db.session() as s:
        before = s.scalar(select(Job.id).order_by(Job.id.desc()).limit(1)) or 0
    thread = threading.Thread(
        target=ingest.sync_connection,
        args=(project.settings, project.lake, project.db, name),
        # The thread does not inherit this request's context: its origin is handed over.
        kwargs={"username": username, "origin": audit.origin()},
        name=f"fleuve-sync-{name}",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while time.monotonic() < deadline:
        with project.db.session() as s:
            job_id = s.scalar(
                select(Job.id)
                .where(Job.id > before, Job.config_type == "sync", Job.config_id == name)
                .order_by(Job.id)
                .limit(1)
            )
        if job_id is not None:
            return job_id
        time.sleep(0.05)
    raise FleuveError(
        f"the sync of '{name}' did not start", "look at `fleuve ingest jobs` and the logs"
    )


@router.post("/api/v1/connections/sync", responses=error_responses(404))
def connections_sync(body: SyncRequest, project: ProjectDep, user: Syncer) -> dict[str, Any]:
    """Start a sync of the connection now (SYNC privilege); answers its job (status `running`)."""
    return read_job(project, start_sync(project, body.connectionId, user.username))


@router.post("/api/v1/jobs/get", responses=error_responses(404))
def jobs_get(body: JobRequest, project: ProjectDep, _: Monitor) -> dict[str, Any]:
    """A job with its attempts: status, records and bytes synced, failure summary (MONITOR)."""
    try:
        job_id = int(body.id)
    except ValueError:
        raise FleuveError(
            f"job id {body.id!r} is not a number",
            "pass the numeric id connections/sync returned",
        ) from None
    return read_job(project, job_id)
