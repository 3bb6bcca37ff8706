"""What every REST route shares: the authenticated user, the services, error answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from fleuve.metadata import User
from fleuve.project import Project
from fleuve.security import privileges
from fleuve.serve.queries import Caller, Queries


class ApiError(HTTPException):
    """An error answered as `{"errorMessage", "moreInfo"}` with its status code."""

    def __init__(self, status: int, message: str, more_info: str = "") -> None:
        super().__init__(status, message)
        self.more_info = more_info


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
    """The REST caller of a query."""
    return Caller(user.username, request.client.host if request.client else None, "rest")


def admin(user: Annotated[User, Depends(current_user)]) -> User:
    """The current user, who must have the admin role."""
    if "admin" not in (user.roles or []):
        raise ApiError(403, "this needs the admin role", "ask an admin: `fleuve users roles`")
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
