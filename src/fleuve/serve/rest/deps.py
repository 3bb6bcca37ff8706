"""What every HTTP route shares, the web UI's included: the authenticated user, the services,
the privilege checks, and the caller's own query jobs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from fleuve.engine import QueryJob, privileges
from fleuve.errors import FleuveError, Forbidden, NotFound
from fleuve.metadata import User
from fleuve.project import Project
from fleuve.serve.queries import Caller, Queries


def current_user(request: Request) -> User:
    """The user the auth middleware identified (every route but health and login has one)."""
    return request.state.user


def project(request: Request) -> Project:
    """The served project."""
    return request.app.state.project


def queries(request: Request) -> Queries:
    """The engine's door for this server."""
    return request.app.state.queries


def caller(request: Request, user: Annotated[User, Depends(current_user)]) -> Caller:
    """The caller of a query made over HTTP."""
    return Caller(user.username, request.client.host if request.client else None, "rest")


def admin(user: Annotated[User, Depends(current_user)]) -> User:
    """The current user, who must have the admin role."""
    if "admin" not in (user.roles or []):
        raise Forbidden("this needs the admin role", "ask an admin: `fleuve users roles`")
    return user


def needs(privilege: str, doing: str) -> Any:
    """A route's user, who must hold the system `privilege` (else 403 naming how to get it)."""

    def check(request: Request, user: Annotated[User, Depends(current_user)]) -> User:
        privileges.require(request.app.state.project.db, user, privilege, doing)
        return user

    return Depends(check)


Authed = Annotated[User, Depends(current_user)]
Admin = Annotated[User, Depends(admin)]
ProjectDep = Annotated[Project, Depends(project)]
QueriesDep = Annotated[Queries, Depends(queries)]
CallerDep = Annotated[Caller, Depends(caller)]


def page(data: list[Any]) -> dict[str, Any]:
    """A list answer in Dremio's `{"data": [...]}` shape."""
    return {"data": data}


def own_job(queries: Queries, job_id: str, user: User) -> QueryJob:
    """The query job, if it is the user's (administrators see every job)."""
    job = queries.engine.job(job_id)
    if job.user != user.username and "admin" not in user.roles:
        raise NotFound(f"no job with id {job_id}", "submit the query with POST /api/v3/sql")
    return job


def completed_job(queries: Queries, job_id: str, user: User) -> QueryJob:
    """The user's query job, which must have COMPLETED (its rows are there to read)."""
    job = own_job(queries, job_id, user)
    if job.state != "COMPLETED":
        raise FleuveError(
            f"job {job_id} is {job.state}, not COMPLETED", "wait until jobState is COMPLETED"
        )
    return job
