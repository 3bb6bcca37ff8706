"""The web UI: overview, catalog, SQL Lab, charts, dashboards, jobs and admin, in one page app.

`install(app)` adds it to the HTTP application: the pages and assets (public, no data), the
UI's JSON endpoints (behind the same login as the REST API), and the project's YAML
dashboards, loaded once at start-up.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from fleuve.dashboards import load_dashboards
from fleuve.serve.ui.api import router
from fleuve.serve.ui.pages import PublicPages

log = logging.getLogger("fleuve.serve")


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


__all__ = ["install"]
