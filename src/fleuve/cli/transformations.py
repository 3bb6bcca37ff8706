"""`fleuve transform`: the dbt project's runs, tests, freshness, run history and lineage."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleuve.cli.context import (
    Context,
    F,
    FleuveGroup,
    as_user_option,
    check_user,
    console,
    pass_ctx,
)
from fleuve.errors import FleuveError


@click.group(cls=FleuveGroup)
def transform() -> None:
    """The dbt project: run, test and build it; its run history and its lineage.

    Plain dbt works too: `cd transform && dbt build --profiles-dir .`
    """


def _selection(fn: F) -> F:
    fn = click.option(
        "--exclude", multiple=True, metavar="SPEC", help="dbt exclusion (repeatable)."
    )(fn)
    return click.option(
        "-s",
        "--select",
        multiple=True,
        metavar="SPEC",
        help="dbt selection, e.g. staging, stg_orders+ or tag:daily (repeatable).",
    )(fn)


def _full_refresh(fn: F) -> F:
    return click.option(
        "--full-refresh", is_flag=True, help="Rebuild incremental models from scratch."
    )(fn)


@transform.command("run")
@_selection
@_full_refresh
@as_user_option
@pass_ctx
def transform_run(
    ctx: Context,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    full_refresh: bool,
    as_user: str | None,
) -> None:
    """Build the selected models (all by default) in the lake."""
    _transform(ctx, "run", select, exclude, full_refresh, as_user)


@transform.command("test")
@_selection
@as_user_option
@pass_ctx
def transform_test(
    ctx: Context, select: tuple[str, ...], exclude: tuple[str, ...], as_user: str | None
) -> None:
    """Test the selected models; failing rows are kept in the lake's test_failures schema."""
    _transform(ctx, "test", select, exclude, False, as_user)


@transform.command("build")
@_selection
@_full_refresh
@as_user_option
@pass_ctx
def transform_build(
    ctx: Context,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    full_refresh: bool,
    as_user: str | None,
) -> None:
    """Run and test the selected models in order; a failing test skips what depends on it."""
    _transform(ctx, "build", select, exclude, full_refresh, as_user)


def _transform(
    ctx: Context,
    command: str,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    full_refresh: bool,
    as_user: str | None,
) -> None:
    """Run one dbt command, one line per node as it ends; raise if it failed."""
    from fleuve.transform import NodeEvent, run_transform

    project = ctx.project()
    check_user(project, as_user, "RUN PIPELINES", f"running dbt ({command})")
    args = command.split()
    args += [a for spec in select for a in ("--select", spec)]
    args += [a for spec in exclude for a in ("--exclude", spec)]
    if full_refresh:
        args.append("--full-refresh")
    marks = {"success": "[green]✓[/]", "pass": "[green]✓[/]", "warn": "[yellow]![/]"}
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"dbt {command}: parsing", total=None)

        def on_event(event: NodeEvent) -> None:
            if event.kind == "start":
                progress.update(task, total=event.total, description=f"{event.name}")
                return
            progress.advance(task)
            status = event.status or ""
            mark = marks.get(status, "[dim]-[/]" if status in ("skipped", "no-op") else "[red]✗[/]")
            rows = f", {event.failures:,} failing rows" if event.failures else ""
            width = max(20, console.width - 32)
            name = event.name if len(event.name) <= width else event.name[: width - 1] + "…"
            progress.console.print(
                f"{mark} {event.resource_type:<5} {name:<{width}} "
                f"{event.seconds or 0:6.2f}s {status}{rows}",
                highlight=False,
            )

        result = run_transform(project.settings, args, db=project.db, on_event=on_event)
    for node in result.failed:
        console.print(f"[red]✗[/] {node.describe()}", highlight=False)
    line = f"dbt {command}: {', '.join(f'{n} {s}' for s, n in sorted(result.counts().items()))}"
    console.print(
        f"{line or 'nothing selected'} in {result.seconds:.1f}s (run {result.run_id[:8]})",
        highlight=False,
    )
    if not result.success:
        raise FleuveError(
            f"dbt {command} failed: {result.error or f'{len(result.failed)} node(s) failed'}",
            "see the failures above; failing rows are in the test_failures tables named there, "
            "the full dbt log in .fleuve/logs/dbt/dbt.log",
        )


@transform.command("freshness")
@_selection
@pass_ctx
def transform_freshness(ctx: Context, select: tuple[str, ...], exclude: tuple[str, ...]) -> None:
    """Check how recently each bronze source landed rows (warn after 24 h, fail after 48 h)."""
    _transform(ctx, "source freshness", select, exclude, False, None)


@transform.command("history")
@click.argument("run_id", required=False)
@click.option("--limit", default=20, show_default=True, help="How many recent runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def transform_history(ctx: Context, run_id: str | None, limit: int, as_json: bool) -> None:
    """List recent dbt runs, or show RUN_ID's nodes with their timings."""
    from fleuve.transform import get_run, run_history
    from fleuve.transform.history import record_plain_run

    project = ctx.project()
    db = project.db
    record_plain_run(db, project.settings.path(project.settings.transform.project_dir))
    if run_id:
        record = get_run(db, run_id)
        if as_json:
            console.print_json(json.dumps(record.to_dict(), ensure_ascii=False))
            return
        table = Table(
            "node", "type", "status", "seconds", "failures", title=f"dbt run {record.run_id}"
        )
        for node in record.nodes:
            table.add_row(
                node.name,
                node.resource_type,
                node.status,
                f"{node.seconds:.2f}",
                "" if node.failures is None else f"{node.failures:,}",
            )
        console.print(table)
        return
    records = run_history(db, limit)
    if as_json:
        console.print_json(json.dumps([r.to_dict() for r in records], ensure_ascii=False))
        return
    table = Table()
    for name in ("run", "started", "status", "models", "tests", "seconds"):
        table.add_column(name, no_wrap=True)
    table.add_column("command")
    for r in records:
        table.add_row(
            r.run_id[:8],
            f"{r.started_at:%m-%d %H:%M:%S}",
            r.status,
            str(r.models_run),
            str(r.tests_run),
            f"{r.metadata.get('seconds') or 0:.1f}",
            " ".join(r.metadata.get("command") or []),
        )
    console.print(table)


@transform.command("lineage")
@click.argument("node", required=False)
@click.option("--column", help="Trace one column of NODE back to the sources and forward.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole graph as JSON.")
@pass_ctx
def transform_lineage(ctx: Context, node: str | None, column: str | None, as_json: bool) -> None:
    """Show how data flows: every layer, or what NODE reads and what reads it."""
    from rich.tree import Tree

    from fleuve.transform.lineage import lineage

    project = ctx.project()
    graph = lineage(project.settings, lake=project.lake, columns=bool(column) or as_json)
    if as_json:
        console.print_json(json.dumps(graph.to_dict(), ensure_ascii=False))
        return
    if node is None:
        for layer, nodes in graph.layers().items():
            console.print(f"[bold]{layer}[/]")
            for n in nodes:
                parents = ", ".join(p.id for p in graph.parents(n.id))
                console.print(f"  {n.id}" + (f"  ← {parents}" if parents else ""), highlight=False)
        return
    target = graph.node(node)
    if column:
        sources = ", ".join(map(str, graph.column_sources(target.id, column))) or "(none known)"
        dependents = ", ".join(map(str, graph.column_dependents(target.id, column))) or "(none)"
        console.print(f"{target.id}.{column}\n  from: {sources}\n  feeds: {dependents}")
        return

    def grow(tree: Tree, ref: str, step: Any) -> None:
        for n in step(ref):
            grow(tree.add(f"{n.id} [dim]({n.kind}, {n.layer})[/]"), n.id, step)

    for title, step in (("reads", graph.parents), ("read by", graph.children)):
        tree = Tree(f"[bold]{target.id}[/] {title}")
        grow(tree, target.id, step)
        console.print(tree)
