"""`fleuve serve`: run the HTTP application until stopped."""

from __future__ import annotations

import uvicorn

from fleuve.project import Project
from fleuve.serve.app import create_app


def serve(project: Project, *, host: str | None = None, port: int | None = None) -> None:
    """Serve the project's HTTP API until SIGINT/SIGTERM."""
    settings = project.settings.server
    config = uvicorn.Config(
        create_app(project),
        host=host or settings.host,
        port=port or settings.http_port,
        log_level="warning",
        ssl_certfile=str(project.settings.path(settings.tls_cert)) if settings.tls_cert else None,
        ssl_keyfile=str(project.settings.path(settings.tls_key)) if settings.tls_key else None,
    )
    uvicorn.Server(config).run()
