"""`fleuve demo`: the showcase's command, added to `fleuve` through `fleuve.plugins`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from fleuve.cli.batch import run_pipeline_with_progress
from fleuve.cli.context import Context, console, pass_ctx
from fleuve.cli.project_setup import print_init
from fleuve.cli.serving import print_where
from fleuve.demo import demo_sources, ensure_reflections, prepare
from fleuve.project import Project, init_project


@click.command()
@click.argument("directory", type=click.Path(path_type=Path), default="fleuve-demo")
@click.option(
    "--scale",
    type=click.IntRange(1_000, 10_000_000),
    default=100_000,
    show_default=True,
    help="Number of orders to generate (up to 10M).",
)
@click.option(
    "--serve/--no-serve",
    "serve_after",
    default=True,
    show_default=True,
    help="Serve the APIs once the pipeline has run.",
)
@click.option(
    "--api-port",
    type=int,
    default=9088,
    show_default=True,
    help="Loopback port of the demo's catalog API.",
)
@pass_ctx
def demo(ctx: Context, directory: Path, scale: int, serve_after: bool, api_port: int) -> None:
    """Build the embedded showcase in DIRECTORY, run the whole pipeline on it, then serve.

    Generates an e-commerce shop (customers, products, orders, order lines, web events; names in
    French, Arabic, Chinese and Japanese) into a SQLite database, CSV drops and a JSON REST API.
    """
    started = time.monotonic()
    directory = directory.expanduser().resolve()
    data = prepare(directory, scale, api_port)
    console.print(
        f"Generated the shop in {data.seconds:.1f}s: {data.sizes.customers:,} customers, "
        f"{data.sizes.products:,} products, {data.sizes.orders:,} orders, "
        f"{data.sizes.web_events:,} web events"
    )
    report = init_project(directory, "fleuve-demo", ctx.overrides)
    if report.admin_password:
        print_init(report)
    project = Project.open(directory, ctx.overrides)
    with demo_sources(project.settings):
        run_pipeline_with_progress(project)
        for name in ensure_reflections(project):
            console.print(f"Created and built reflection {name}.")
        console.print(f"Demo ready in {time.monotonic() - started:.1f}s.")
        if serve_after:
            from fleuve.serve.server import serve as run_server

            run_server(project, on_ready=lambda where: print_where(project, where))
