"""`fleuve serve`: the REST API, the web UI and Arrow Flight, until stopped."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from fleuve import __version__
from fleuve.cli.context import Context, console, pass_ctx
from fleuve.plugins import source_services
from fleuve.project import ADMIN_PASSWORD_FILE, Project

if TYPE_CHECKING:
    from fleuve.serve.server import Addresses


@click.command()
@click.option("--host", help="Interface to bind (default: server.host).")
@click.option("--port", type=int, help="HTTP port (default: server.http_port, 9047).")
@click.option(
    "--flight-port", type=int, help="Arrow Flight port (default: server.flight_port, 32010)."
)
@click.option(
    "--compat-ports/--no-compat-ports",
    default=None,
    help="Also serve the ingestion API on Airbyte's port 8001 and the log search API on 9200 "
    "(default: server.compat_ports).",
)
@pass_ctx
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    flight_port: int | None,
    compat_ports: bool | None,
) -> None:
    """Serve the REST API and Arrow Flight (with Flight SQL) until stopped (Ctrl-C or SIGTERM)."""
    from fleuve.serve.server import serve as run_server

    project = ctx.project()
    with source_services(project.settings):
        run_server(
            project,
            host=host,
            port=port,
            flight_port=flight_port,
            compat_ports=compat_ports,
            on_ready=lambda where: print_where(project, where),
        )


def print_where(project: Project, where: Addresses) -> None:
    """Where each interface listens, and how to log in."""
    console.print(f"\nFleuve {__version__} serving [bold]{project.settings.project_dir}[/]")
    console.print(f"  Web UI       {where.http}/  (dashboards at {where.http}/ui/dashboards)")
    console.print(f"  REST API     {where.http}/api/v3  (OpenAPI at {where.http}/docs)")
    console.print(f"  Arrow Flight {where.flight}  (Dremio-style commands and Flight SQL)")
    if where.compat:
        console.print(f"  Ingestion    {where.compat}/api/v1  (Airbyte's port)")
        search = where.compat.rsplit(":", 1)[0] + ":9200"
        console.print(f"  Log search   {search}/fleuve-logs-*/_search  (Elasticsearch's port)")
    console.print(f"  Health       {where.http}/health")
    secret = project.settings.state_dir / ADMIN_PASSWORD_FILE
    if secret.exists():
        console.print(f"  Log in       user [bold]admin[/], password in {secret}")
    console.print("Stop with Ctrl-C.")
