"""`GET /metrics`: the platform's Prometheus metrics, for a MONITOR token or an allowed address."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response

# The text format every Prometheus reads, 2.x included (1.0.0 is newer than some servers).
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as CONTENT_TYPE

from fleuve.engine import privileges
from fleuve.observe import metrics
from fleuve.project import Project
from fleuve.serve.rest.deps import ProjectDep, QueriesDep

PATH = "/metrics"

router = APIRouter(tags=["Monitoring"])


def allowed(project: Project, host: str | None) -> bool:
    """True when `host` is in `observe.metrics.allow` (it may scrape without a token)."""
    networks = project.settings.observe.metrics.allow
    if not networks or not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


@router.get(
    PATH,
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "the metrics"}},
)
def scrape(request: Request, project: ProjectDep, queries: QueriesDep) -> Response:
    """Every metric in Prometheus' text exposition format (docs/operations.md#monitoring lists
    them). Needs the token of a user with the MONITOR privilege, unless the caller's address is
    in `observe.metrics.allow`."""
    user = getattr(request.state, "user", None)
    if user is not None:
        privileges.require(project.db, user, privileges.MONITOR, "reading the metrics")
    # This process's query jobs are written behind; make the scrape see them.
    queries.engine.jobs_store.flush()
    return Response(metrics.exposition(project), media_type=CONTENT_TYPE)
