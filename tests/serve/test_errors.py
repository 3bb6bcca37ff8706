"""One error hierarchy for HTTP: each layer's errors carry their status, and the web UI's
routes share the REST API's dependencies instead of copies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from fleuve import errors
from fleuve.config import ConnectionNotFound
from fleuve.dashboards.store import DashboardNotFound
from fleuve.engine import AccessDenied, ObjectNotFound
from fleuve.schedule.scheduler import ScheduleNotFound
from fleuve.security.auth import TokenNotFound
from fleuve.serve.rest import platform
from fleuve.serve.ui.routes import router as ui_router


@pytest.mark.parametrize(
    ("error", "base", "status"),
    [
        (ObjectNotFound, errors.NotFound, 404),
        (DashboardNotFound, errors.NotFound, 404),
        (ScheduleNotFound, errors.NotFound, 404),
        (ConnectionNotFound, errors.NotFound, 404),
        (TokenNotFound, errors.NotFound, 404),
        (AccessDenied, errors.Forbidden, 403),
        (errors.Conflict, errors.FleuveError, 409),
        (errors.Unauthenticated, errors.FleuveError, 401),
        (errors.ConfigError, errors.FleuveError, 400),
    ],
)
def test_each_error_carries_its_status(error: type, base: type, status: int) -> None:
    assert issubclass(error, base) and error("x").status == status


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def test_the_ui_routes_use_the_rest_dependencies() -> None:
    calls = {
        dep.call.__qualname__: dep.call.__module__
        for route in ui_router.routes
        if isinstance(route, APIRoute)
        for dep in _dependencies(route.dependant)
    }
    assert calls and set(calls.values()) == {"fleuve.serve.rest.deps"}, calls


def test_the_ui_has_no_copy_of_a_public_endpoint() -> None:
    """Lineage, grants, dbt runs and reflections are read from the public API."""
    ui = {route.path.removeprefix(ui_router.prefix) for route in ui_router.routes}
    public = {route.path.removeprefix(platform.router.prefix) for route in platform.router.routes}
    assert {"/lineage", "/grants", "/transform/runs"} <= public
    assert not ui & {"/lineage", "/reflections", "/dbt/runs", "/admin/grants"}, ui
