"""The web UI: overview, catalog, SQL Lab, charts, dashboards, jobs and admin, in one page app.

`install(app)` adds it to the HTTP application: the pages and assets (public, no data), the
UI's JSON endpoints (behind the same login as the REST API), and the project's YAML
dashboards, loaded once at start-up and read once in the background so that their first
viewer does not pay for opening the lake and reading its files.
"""

from __future__ import annotations

import logging
import threading
import time

from fastapi import FastAPI

from fleuve.dashboards import DashboardSpec, chart_query, filter_conditions, load_dashboards, store
from fleuve.project import Project
from fleuve.security import auth
from fleuve.serve.queries import Queries
from fleuve.serve.ui.pages import PublicPages
from fleuve.serve.ui.routes import router

log = logging.getLogger("fleuve.serve")


def warm_up(project: Project, queries: Queries) -> None:
    """Run every dashboard's chart queries once, as an admin, and discard the rows."""
    admin = next((u for u in auth.list_users(project.db) if "admin" in u.roles), None)
    if admin is None:
        return
    started, failed = time.monotonic(), 0
    for row in store.list_dashboards(project.db):
        spec = DashboardSpec.model_validate(row.spec)
        for chart in spec.charts:
            sql = chart_query(chart, filter_conditions(spec, chart, {}))
            try:
                queries.engine.execute(sql, user=admin.username).read_all()
            except Exception:  # a warm-up is best effort: the chart's viewer sees any error
                failed += 1
    log.info(
        "dashboards warmed up in %.1fs",
        time.monotonic() - started,
        extra={"failed_charts": failed},
    )


def install(app: FastAPI) -> None:
    """Serve the UI from `app` (whose state holds the project and its queries)."""
    project = app.state.project
    report = load_dashboards(project.db, project.settings.project_dir)
    if report.loaded or report.errors:
        log.info(
            "dashboards loaded: %s",
            ", ".join(report.loaded) or "none",
            extra={"errors": report.errors, "removed": report.removed},
        )
    app.include_router(router)
    app.add_middleware(PublicPages)
    threading.Thread(
        target=warm_up, args=(project, app.state.queries), name="fleuve-ui-warm-up", daemon=True
    ).start()


__all__ = ["install", "warm_up"]
