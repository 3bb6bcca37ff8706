"""Schedules over REST: list them, see one and its runs, pause, resume, run now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fleuve.engine import privileges
from fleuve.metadata import User
from fleuve.schedule import scheduler
from fleuve.serve.rest.deps import ProjectDep, needs, page
from fleuve.serve.rest.http_errors import error_responses

router = APIRouter(prefix="/api/fleuve/v1/schedules", tags=["Schedules"])


class LastRun(BaseModel):
    """The latest run of a schedule."""

    id: int
    status: str = Field(description="running, succeeded, failed, timed_out, abandoned or skipped")
    trigger: str = Field(description="schedule, catch_up, retry, run_now by USER or after NAME")
    dueAt: str | None
    startedAt: str | None
    endedAt: str | None
    jobId: int | None = Field(description="the job of the run (a sync job for a connection)")
    error: str | None


class ScheduleOut(BaseModel):
    """A schedule, its state, its last and next runs (times in UTC, ISO 8601)."""

    name: str
    kind: str = Field(description="sync, pipeline, dbt, lake_maintain or reflections")
    schedule: str = Field(description="the spelling from fleuve.yml, e.g. '0 1 * * *' or 'daily'")
    timezone: str
    after: list[str] = Field(description="schedules whose success starts this one")
    state: str = Field(description="scheduled, manual, running, requested or paused")
    nextRun: str | None
    lastRun: LastRun | None
    pausedBy: str | None
    lastSuccessAt: str | None


class ScheduleList(BaseModel):
    """Every schedule of the project."""

    data: list[ScheduleOut]


class RunOut(BaseModel):
    """One run of a schedule."""

    id: int
    schedule: str
    kind: str
    dueAt: str | None
    attempt: int = Field(description="1, or more when a run whose process died was tried again")
    trigger: str
    status: str
    owner: str = Field(description="the process that ran it: host:pid:suffix")
    startedAt: str | None
    endedAt: str | None
    jobId: int | None
    log: str | None = Field(description="the run's log file, for pipeline, dbt and maintenance")
    error: str | None


class RunList(BaseModel):
    """Runs, newest first."""

    data: list[RunOut]


Monitor = Annotated[User, needs(privileges.MONITOR, "listing schedules")]
Manager = Annotated[User, needs(privileges.MANAGE_SCHEDULES, "changing or running schedules")]


@router.get("", response_model=ScheduleList, responses=error_responses(400, 401, 403))
def list_schedules(project: ProjectDep, _: Monitor) -> dict[str, Any]:
    """Every schedule: each connection's sync, the reflections' check and `schedules:` work."""
    return page(scheduler.describe(project))


@router.get("/{name}", response_model=ScheduleOut, responses=error_responses(400, 401, 403, 404))
def get_schedule(name: str, project: ProjectDep, _: Monitor) -> dict[str, Any]:
    """One schedule."""
    return scheduler.describe_one(project, name)


@router.get("/{name}/runs", response_model=RunList, responses=error_responses(400, 401, 403, 404))
def schedule_runs(
    name: str,
    project: ProjectDep,
    _: Monitor,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> dict[str, Any]:
    """The latest runs of a schedule, newest first."""
    scheduler.describe_one(project, name)  # an unknown name answers 404
    return page(scheduler.runs(project, name, limit))


@router.post(
    "/{name}/pause", response_model=ScheduleOut, responses=error_responses(400, 401, 403, 404)
)
def pause_schedule(name: str, project: ProjectDep, user: Manager) -> dict[str, Any]:
    """Start no scheduled run of it until resumed (a running run finishes)."""
    return scheduler.pause(project, name, user.username)


@router.post(
    "/{name}/resume", response_model=ScheduleOut, responses=error_responses(400, 401, 403, 404)
)
def resume_schedule(name: str, project: ProjectDep, user: Manager) -> dict[str, Any]:
    """Run it on schedule again, from its next due time (runs missed while paused are not run)."""
    return scheduler.resume(project, name, user.username)


@router.post(
    "/{name}/run",
    response_model=ScheduleOut,
    status_code=202,
    responses=error_responses(400, 401, 403, 404),
)
def run_schedule(name: str, project: ProjectDep, user: Manager) -> dict[str, Any]:
    """Ask for a run now: the first free scheduler (this server's or a worker's) starts it."""
    return scheduler.request_run(project, name, user.username)
