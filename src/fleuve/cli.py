"""The `fleuve` command."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleuve import __version__
from fleuve.config import CONFIG_FILE, find_project, parse_assignments
from fleuve.dashboards.cli import dashboards
from fleuve.errors import FleuveError
from fleuve.project import ADMIN_PASSWORD_FILE, Project, init_project

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _fail(exc: FleuveError) -> None:
    err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
    if exc.fix:
        err_console.print(f"[bold]Fix:[/] {exc.fix}", highlight=False)
    sys.exit(1)


def handles_errors(fn: F) -> F:
    """Turn FleuveErrors into a two-line message and exit status 1, never a stack trace."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FleuveError as exc:
            _fail(exc)

    return wrapper  # type: ignore[return-value]


class Context:
    """Options shared by every subcommand."""

    def __init__(self, project_dir: Path | None, overrides: dict[str, Any]) -> None:
        self.project_dir = project_dir
        self.overrides = overrides
        self._project: Project | None = None

    def project(self, check: bool = True) -> Project:
        """The opened project (settings validated, metadata checked)."""
        if self._project is None:
            folder = self.project_dir or find_project()
            if not (Path(folder) / CONFIG_FILE).exists():
                raise FleuveError(
                    f"no Fleuve project in {Path(folder).resolve()} (no {CONFIG_FILE} here or above)",
                    "run `fleuve init` to create one, or pass --project DIR",
                )
            self._project = Project.open(folder, self.overrides)
            if check:
                self._project.check()
        return self._project


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fleuve")
@click.option(
    "-p",
    "--project",
    "project_dir",
    type=click.Path(path_type=Path),
    help="Project folder (default: the nearest folder with fleuve.yml, or $FLEUVE_PROJECT).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting, e.g. --set server.http_port=9100 (repeatable).",
)
@click.pass_context
@handles_errors
def cli(ctx: click.Context, project_dir: Path | None, assignments: tuple[str, ...]) -> None:
    """Fleuve: a lakehouse data platform in one package.

    Sources → ingestion → bronze/silver/gold lake → dbt → SQL engine → REST, Flight and dashboards.
    """
    import getpass

    from fleuve.security import audit

    ctx.obj = Context(project_dir, parse_assignments(assignments))
    # Changes and queries run by this command are audited as coming from the CLI.
    ctx.with_resource(audit.acting_from("cli", getpass.getuser()))


# -- project ---------------------------------------------------------------------------


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path), required=False)
@click.option("--name", help="Project name (default: the folder's name).")
@pass_ctx
@handles_errors
def init(ctx: Context, directory: Path | None, name: str | None) -> None:
    """Create a project in DIRECTORY (or --project, or here): fleuve.yml, dbt project, lake,
    metadata, admin user.

    Running it again on an existing project changes nothing.
    """
    if directory and ctx.project_dir and directory.resolve() != ctx.project_dir.resolve():
        raise FleuveError(
            f"two folders given: --project {ctx.project_dir} and DIRECTORY {directory}",
            "give the project's folder once",
        )
    report = init_project(directory or ctx.project_dir or Path("."), name, ctx.overrides)
    _print_init(report)


def _print_init(report: Any) -> None:
    if report.created:
        console.print(f"Project ready in [bold]{report.project_dir}[/]")
        for path in report.created:
            console.print(f"  created {path.relative_to(report.project_dir)}")
    else:
        console.print(
            f"Project in [bold]{report.project_dir}[/] is already complete; nothing changed."
        )
    if report.admin_password:
        console.print(
            f"\nAdmin user: [bold]admin[/]  password: [bold]{report.admin_password}[/]\n"
            f"(shown once; also in {report.project_dir / '.fleuve' / ADMIN_PASSWORD_FILE} until you change it)"
        )


@cli.group()
def db() -> None:
    """The platform's metadata database."""


@db.command("upgrade")
@pass_ctx
@handles_errors
def db_upgrade(ctx: Context) -> None:
    """Apply pending migrations to the metadata database, keeping its data."""
    project = ctx.project(check=False)
    before, _ = project.db.revisions()
    after = project.db.upgrade()
    if set(after) == before:
        console.print(f"Metadata database already current ({', '.join(after)}).")
    else:
        console.print(f"Metadata database upgraded to {', '.join(after)}.")


@db.command("current")
@pass_ctx
@handles_errors
def db_current(ctx: Context) -> None:
    """Show the metadata database's revision and the latest one."""
    current, heads = ctx.project(check=False).db.revisions()
    console.print(
        f"current: {', '.join(sorted(current)) or '(empty)'}\nlatest:  {', '.join(sorted(heads))}"
    )


@cli.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@pass_ctx
@handles_errors
def config_show(ctx: Context) -> None:
    """Print the effective settings (file < environment < flags), secrets masked."""
    settings = ctx.project(check=False).settings
    console.print_json(settings.model_dump_json(exclude={"project_dir"}))


# -- lake ------------------------------------------------------------------------------


@cli.group()
def lake() -> None:
    """The lake: tables, snapshots and time travel."""


@lake.command("tables")
@click.argument("schema", required=False)
@pass_ctx
@handles_errors
def lake_tables(ctx: Context, schema: str | None) -> None:
    """List the lake's tables, optionally of one SCHEMA (bronze, silver, gold, logs)."""
    project = ctx.project()
    table = Table("schema", "table", "rows")
    con = project.lake.connect()
    for sch, name in project.lake.tables(schema):
        rows = con.execute(f'SELECT count(*) FROM "{sch}"."{name}"').fetchone()[0]
        table.add_row(sch, name, f"{rows:,}")
    console.print(table)


@lake.command("snapshots")
@click.option("--limit", default=20, show_default=True, help="How many recent snapshots.")
@pass_ctx
@handles_errors
def lake_snapshots(ctx: Context, limit: int) -> None:
    """List the lake's recent snapshots (versions usable for time travel)."""
    table = Table("version", "time", "changes")
    for snap in ctx.project().lake.snapshots()[-limit:]:
        table.add_row(
            str(snap.snapshot_id),
            snap.time.isoformat(timespec="seconds"),
            json.dumps(snap.changes, ensure_ascii=False)[:100],
        )
    console.print(table)


@lake.command("maintain")
@pass_ctx
@handles_errors
def lake_maintain(ctx: Context) -> None:
    """Compact small files and expire snapshots older than lake.snapshot_retention_days."""
    from fleuve.pipeline import maintain

    console.print(maintain(ctx.project()))


@lake.command("at")
@click.argument("table")
@click.argument("version", type=int)
@click.option("--limit", default=10, show_default=True)
@pass_ctx
@handles_errors
def lake_at(ctx: Context, table: str, version: int, limit: int) -> None:
    """Show TABLE (schema.table) as it was at snapshot VERSION."""
    rows = ctx.project().lake.read_at(table, version)
    console.print(f"{table} at version {version}: {rows.num_rows:,} rows")
    console.print(rows.slice(0, limit).to_pandas().to_string() if rows.num_rows else "(empty)")


# -- pipeline --------------------------------------------------------------------------


def _as_user(fn: F) -> F:
    """`--user NAME`: act as that user, refused without the privilege (else the local operator)."""
    return click.option(
        "--user",
        "as_user",
        default=None,
        help="Act as this user: refused unless they hold the privilege "
        "(without --user, the local operator may do everything).",
    )(fn)


def _check_user(project: Project, username: str | None, privilege: str, doing: str) -> None:
    """Refuse when `--user` was given and that user lacks the system `privilege`."""
    if username is not None:
        from fleuve.security import privileges

        privileges.require_user(project.db, username, privilege, doing)


@cli.command()
@_as_user
@pass_ctx
@handles_errors
def run(ctx: Context, as_user: str | None) -> None:
    """Run the daily batch: ingest → bronze → dbt layers with tests → reflections → warm-up."""
    from fleuve.demo import demo_sources

    project = ctx.project()
    _check_user(project, as_user, "RUN PIPELINES", "running the pipeline")
    with demo_sources(project.settings):
        _run_pipeline(project)


def _run_pipeline(project: Project) -> None:
    from fleuve.pipeline import STEPS, StepOutcome, run_pipeline

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(STEPS))

        def on_step(outcome: StepOutcome) -> None:
            if outcome.status == "running":
                progress.update(task, description=outcome.title)
            else:
                progress.advance(task)
                mark = "[green]✓[/]" if outcome.status == "succeeded" else "[red]✗[/]"
                progress.console.print(
                    f"{mark} {outcome.title:<28} {outcome.seconds:6.2f}s  {outcome.summary}",
                    highlight=False,
                )

        report = run_pipeline(project, on_step=on_step)
    if report.error:
        table = Table("step", "status", "seconds", title=f"Pipeline run {report.run_id} failed")
        for st in report.steps:
            table.add_row(st.name, st.status, f"{st.seconds:.2f}" if st.status != "skipped" else "")
        console.print(table)
        raise report.error
    console.print(f"[bold green]Pipeline run {report.run_id} succeeded[/] in {report.seconds:.1f}s")


@cli.command()
@click.argument("connection")
@click.option("--stream", "streams", multiple=True, help="Sync only this stream (repeatable).")
@click.option(
    "--full-refresh", is_flag=True, help="Ignore saved cursors and read every stream in full."
)
@_as_user
@pass_ctx
@handles_errors
def sync(
    ctx: Context,
    connection: str,
    streams: tuple[str, ...],
    full_refresh: bool,
    as_user: str | None,
) -> None:
    """Sync one CONNECTION's streams into bronze, showing rows, MB and rows/s as they go."""
    from fleuve.demo import demo_sources
    from fleuve.ingest import StreamProgress, sync_connection

    project = ctx.project()
    _check_user(project, as_user, "SYNC", "starting a sync")
    project.settings.connection(connection)
    with (
        demo_sources(project.settings),
        # Sized to fit an 80-column terminal with stream names up to 16 characters.
        Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(bar_width=10),
            TextColumn(
                "{task.fields[rows]:>11} rows {task.fields[mb]:>8} MB {task.fields[rate]:>12}"
            ),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        tasks: dict[str, Any] = {}

        def show(states: list[StreamProgress]) -> None:
            for st in states:
                if st.stream not in tasks:
                    tasks[st.stream] = progress.add_task(
                        st.stream, total=100, rows="", mb="", rate=""
                    )
                elapsed = time.monotonic() - st.started if st.started else 0.0
                rate = _rate(st.rows / elapsed) + " rows/s" if elapsed > 0 and st.rows else ""
                done = 100 if st.phase in ("committed", "failed") else (st.percent or 0)
                label = f"{st.stream} ✗" if st.phase == "failed" else st.stream
                progress.update(
                    tasks[st.stream],
                    completed=done,
                    description=label,
                    rows=f"{st.rows:,}" if st.rows else "",
                    mb=f"{st.bytes / 1e6:,.1f}" if st.bytes else "",
                    rate=rate,
                )

        result = sync_connection(
            project.settings,
            project.lake,
            project.db,
            connection,
            streams=list(streams) or None,
            full_refresh=full_refresh,
            on_progress=show,
            username=as_user,
        )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("stream", overflow="fold", min_width=14)
    for name in ("mode", "committed", "rejected", "MB", "s", "rows/s"):
        table.add_column(
            name, no_wrap=True, min_width=len(name), justify="left" if name == "mode" else "right"
        )
    drifted = any(out.schema_changes for out in result.streams.values())
    if drifted:
        table.add_column("schema changes", overflow="fold")
    for name, out in result.streams.items():
        rate = out.records_committed / out.seconds if out.seconds else 0
        table.add_row(
            name,
            out.mode.replace("full_refresh", "full")
            .replace("incremental", "incr")
            .replace("+", " "),
            f"{out.records_committed:,}",
            f"{out.records_rejected:,}",
            f"{out.bytes_read / 1e6:,.1f}",
            f"{out.seconds:.1f}",
            _rate(rate),
            *(["; ".join(out.schema_changes)] if drifted else []),
        )
    console.print(table)
    if result.status != "succeeded":
        raise FleuveError(
            f"sync of '{connection}' failed (job {result.job_id}, {result.attempts} attempt(s)): "
            + "; ".join(f"{k}: {v}" for k, v in result.errors.items()),
            "see `fleuve jobs` for details, fix the cause, then sync again",
        )
    console.print(
        f"Job {result.job_id} succeeded: {result.records:,} records committed"
        + (f", {result.rejected:,} rejected (see bronze._rejected)" if result.rejected else "")
        + f" in {result.seconds:.1f}s."
    )


def _rate(per_second: float) -> str:
    """A rate in a few characters: 2.16M, 950k, 12."""
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f}M"
    return f"{per_second / 1e3:,.0f}k" if per_second >= 1e3 else f"{per_second:,.0f}"


@cli.command()
@click.option("--limit", default=20, show_default=True, help="How many recent jobs.")
@click.option("--connection", help="Only the jobs of this connection.")
@click.option("--json", "as_json", is_flag=True, help="Print JobInfoRead objects as JSON.")
@pass_ctx
@handles_errors
def jobs(ctx: Context, limit: int, connection: str | None, as_json: bool) -> None:
    """List recent sync jobs with their attempts, records, duration and failure."""
    from datetime import UTC, datetime

    from fleuve.ingest import recent_jobs

    infos = recent_jobs(ctx.project().db, limit, connection)
    if as_json:
        console.print_json(json.dumps(infos))
        return
    # Tight cells, failures below: the table fits an 80-column terminal.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("job", "connection", "status", "started (UTC)", "tries", "records", "MB", "s"):
        table.add_column(
            name, no_wrap=True, justify="left" if name in ("connection", "status") else "right"
        )
    for info in infos:
        job, attempts = info["job"], [a["attempt"] for a in info["attempts"]]
        last = attempts[-1] if attempts else {}
        ended = last.get("endedAt") or job["updatedAt"]
        table.add_row(
            str(job["id"]),
            job["configId"],
            job["status"],
            datetime.fromtimestamp(job["createdAt"], UTC).strftime("%m-%d %H:%M:%S"),
            str(len(attempts)),
            f"{sum(a['recordsSynced'] for a in attempts):,}",
            f"{sum(a['bytesSynced'] for a in attempts) / 1e6:,.1f}",
            str(ended - job["createdAt"]) if ended else "",
        )
    console.print(table)
    for info in infos:
        if failure := _first_failure(info):
            console.print(f"job {info['job']['id']} failed: {failure}", markup=False)


def _first_failure(info: dict[str, Any]) -> str:
    """The message of the first failure of a job's last attempt; '' when it did not fail."""
    attempts = info["attempts"]
    summary = (attempts[-1]["attempt"].get("failureSummary") or {}) if attempts else {}
    first = (summary.get("failures") or [{}])[0]
    return first.get("externalMessage") or ""


@cli.group()
def source() -> None:
    """Connections' sources: test them and list what they offer."""


@source.command("check")
@click.argument("connection")
@pass_ctx
@handles_errors
def source_check(ctx: Context, connection: str) -> None:
    """Reach CONNECTION's source and report what was found, or what is wrong and how to fix it."""
    from fleuve.demo import demo_sources
    from fleuve.ingest.discover import check_connection

    project = ctx.project(check=False)
    with demo_sources(project.settings):
        message = check_connection(project.settings, project.lake, connection)
    console.print(f"[green]✓[/] {connection}: {message}")


@source.command("discover")
@click.argument("connection")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
@pass_ctx
@handles_errors
def source_discover(ctx: Context, connection: str, as_json: bool) -> None:
    """List CONNECTION's streams with inferred schemas and the sync modes each supports."""
    from fleuve.demo import demo_sources
    from fleuve.ingest.discover import discover_connection

    project = ctx.project(check=False)
    with demo_sources(project.settings):
        catalog = discover_connection(project.settings, project.lake, connection)
    if as_json:
        console.print_json(json.dumps(catalog, default=str))
        return
    for stream in catalog["streams"]:
        cols = ", ".join(f"{c['name']} {c['type']}" for c in stream["columns"])
        rows = f", ~{stream['estimated_rows']:,} rows" if stream.get("estimated_rows") else ""
        console.print(f"[bold]{stream['name']}[/]{rows}", highlight=False)
        console.print(f"  columns: {cols or '(none found)'}", highlight=False)
        console.print(f"  primary key: {', '.join(stream['primary_key']) or '-'}", highlight=False)
        console.print(
            f"  cursor candidates: {', '.join(stream['cursor_candidates']) or '-'}", highlight=False
        )
        console.print(
            f"  sync modes: {', '.join(stream['sync_modes'])} x "
            f"{', '.join(catalog['capabilities']['destination_sync_modes'])}",
            highlight=False,
        )


# -- transformations -------------------------------------------------------------------


@cli.group()
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
@_as_user
@pass_ctx
@handles_errors
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
@_as_user
@pass_ctx
@handles_errors
def transform_test(
    ctx: Context, select: tuple[str, ...], exclude: tuple[str, ...], as_user: str | None
) -> None:
    """Test the selected models; failing rows are kept in the lake's audit schema."""
    _transform(ctx, "test", select, exclude, False, as_user)


@transform.command("build")
@_selection
@_full_refresh
@_as_user
@pass_ctx
@handles_errors
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
    from fleuve.transform import NodeEvent, run_transform

    project = ctx.project()
    _check_user(project, as_user, "RUN PIPELINES", f"running dbt ({command})")
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
            "see the failures above; failing rows are in the audit tables named there, the full "
            "dbt log in .fleuve/logs/dbt/dbt.log",
        )


@transform.command("freshness")
@_selection
@pass_ctx
@handles_errors
def transform_freshness(ctx: Context, select: tuple[str, ...], exclude: tuple[str, ...]) -> None:
    """Check how recently each bronze source landed rows (warn after 24 h, fail after 48 h)."""
    _transform(ctx, "source freshness", select, exclude, False, None)


@transform.command("history")
@click.argument("run_id", required=False)
@click.option("--limit", default=20, show_default=True, help="How many recent runs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
@handles_errors
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
@handles_errors
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


# -- users and audit -------------------------------------------------------------------


def _actor() -> str:
    """Who runs a CLI change, for the audit trail."""
    import getpass

    return f"cli:{getpass.getuser()}"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@cli.group()
def users() -> None:
    """Users, their roles and their tokens."""


@users.command("list")
@pass_ctx
@handles_errors
def users_list(ctx: Context) -> None:
    """List users with their roles."""
    from fleuve.security import auth

    table = Table("user", "roles", "state", "created")
    for user in auth.list_users(ctx.project().db):
        table.add_row(
            user.username,
            ", ".join(user.roles) or "-",
            "disabled" if user.disabled else "enabled",
            user.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@users.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="A role to give (repeatable), e.g. analyst.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
@handles_errors
def users_add(ctx: Context, username: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Add USERNAME (the password is prompted for, never passed as an argument)."""
    from fleuve.security import auth

    project = ctx.project()
    auth.create_user(
        project.db, username, _read_password(password_stdin), list(roles), actor=_actor()
    )
    console.print(
        f"User [bold]{username}[/] added" + (f" with roles {', '.join(roles)}." if roles else ".")
    )


@users.command("passwd")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_ctx
@handles_errors
def users_passwd(ctx: Context, username: str, password_stdin: bool) -> None:
    """Change USERNAME's password; their login sessions end."""
    from fleuve.security import auth

    auth.set_password(ctx.project().db, username, _read_password(password_stdin), actor=_actor())
    console.print(f"Password of [bold]{username}[/] changed; their sessions were ended.")


@users.command("roles")
@click.argument("username")
@click.argument("roles", nargs=-1)
@click.option("--add", "added", multiple=True, help="A role to add (repeatable).")
@click.option("--remove", "removed", multiple=True, help="A role to remove (repeatable).")
@pass_ctx
@handles_errors
def users_roles(
    ctx: Context,
    username: str,
    roles: tuple[str, ...],
    added: tuple[str, ...],
    removed: tuple[str, ...],
) -> None:
    """Show USERNAME's roles, set them to ROLES, or --add/--remove some."""
    from fleuve.security import auth

    db = ctx.project().db
    user = auth.get_user(db, username)
    if roles or added or removed:
        wanted = list(roles) if roles else list(user.roles)
        wanted = [r for r in [*wanted, *added] if r not in removed]
        user = auth.set_roles(db, username, wanted, actor=_actor())
    console.print(f"{username}: {', '.join(user.roles) or '(no roles)'}")


@users.command("disable")
@click.argument("username")
@pass_ctx
@handles_errors
def users_disable(ctx: Context, username: str) -> None:
    """Disable USERNAME: logins fail and their tokens stop working at once."""
    from fleuve.security import auth

    auth.set_disabled(ctx.project().db, username, True, actor=_actor())
    console.print(f"User [bold]{username}[/] disabled.")


@users.command("enable")
@click.argument("username")
@pass_ctx
@handles_errors
def users_enable(ctx: Context, username: str) -> None:
    """Enable a disabled USERNAME again."""
    from fleuve.security import auth

    auth.set_disabled(ctx.project().db, username, False, actor=_actor())
    console.print(f"User [bold]{username}[/] enabled.")


@users.command("token")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for, e.g. superset.")
@click.option("--days", type=click.IntRange(1), default=90, show_default=True, help="Lifetime.")
@pass_ctx
@handles_errors
def users_token(ctx: Context, username: str, name: str, days: int) -> None:
    """Create a personal access token for USERNAME (shown once; use it as a Bearer token)."""
    from fleuve.security import auth

    token, row = auth.create_personal_token(ctx.project().db, username, name, days, actor=_actor())
    console.print(
        f"Token {row.id} ({name}) for {username}, valid {days} days:\n{token}", highlight=False
    )


@users.command("tokens")
@click.argument("username")
@pass_ctx
@handles_errors
def users_tokens(ctx: Context, username: str) -> None:
    """List USERNAME's live tokens (ids and names; token values are never stored)."""
    from fleuve.security import auth

    table = Table("id", "kind", "name", "created", "expires")
    for t in auth.list_tokens(ctx.project().db, username):
        table.add_row(
            str(t.id),
            t.kind,
            t.name or "-",
            t.created_at.isoformat(timespec="seconds"),
            t.expires_at.isoformat(timespec="seconds") if t.expires_at else "never",
        )
    console.print(table)


@users.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
@pass_ctx
@handles_errors
def users_revoke(ctx: Context, username: str, token_id: int) -> None:
    """Revoke token TOKEN_ID of USERNAME."""
    from fleuve.security import auth

    auth.revoke_token_id(ctx.project().db, username, token_id, actor=_actor())
    console.print(f"Token {token_id} of {username} revoked.")


def _when(text: str | None) -> Any:
    """A time from '15m', '2h', '7d' (ago) or an ISO 8601 date/time."""
    from datetime import UTC, datetime, timedelta

    if not text:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FleuveError(
            f"cannot read the time {text!r}", "write e.g. 2h, 7d or 2026-01-31T12:00"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@cli.group(invoke_without_command=True)
@click.option(
    "--kind",
    type=click.Choice(
        [
            "login",
            "query",
            "user",
            "token",
            "grant",
            "connection",
            "reflection",
            "privilege",
            "schedule",
        ]
    ),
)
@click.option("--user", "username", help="Only this user's events.")
@click.option("--outcome", type=click.Choice(["ok", "failed", "cancelled", "denied"]))
@click.option("--since", help="From this time: 15m, 2h, 7d or an ISO date.")
@click.option("--until", help="Before this time: 15m, 2h, 7d or an ISO date.")
@click.option("--contains", help="Text in the target (the SQL, the user or connection changed).")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
@handles_errors
def audit(
    click_ctx: click.Context,
    kind: str | None,
    username: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    contains: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show the audit trail: logins, queries and changes to users, grants and connections."""
    if click_ctx.invoked_subcommand is not None:
        return
    from fleuve.security import audit as trail

    ctx: Context = click_ctx.obj
    filters = trail.Filters(kind, username, outcome, _when(since), _when(until), contains, limit)
    events = trail.events(ctx.project().db, filters)
    if as_json:
        for e in events:
            click.echo(
                json.dumps(
                    {
                        "id": e.id,
                        "at": e.at.isoformat(),
                        "kind": e.kind,
                        "action": e.action,
                        "outcome": e.outcome,
                        "user": e.username,
                        "client": e.client,
                        "target": e.target,
                        "detail": e.detail,
                    },
                    ensure_ascii=False,
                    default=str,
                )
            )
        return
    table = Table("time", "kind", "action", "outcome", "user", "target", "detail")
    for e in events:
        detail = {
            k: v for k, v in (e.detail or {}).items() if v not in (None, [], "") and k != "sql"
        }
        table.add_row(
            e.at.isoformat(timespec="seconds"),
            e.kind,
            e.action,
            e.outcome,
            e.username or "-",
            (e.target or "")[:60],
            json.dumps(detail, ensure_ascii=False, default=str)[:80],
        )
    console.print(table)


@audit.command("purge")
@pass_ctx
@handles_errors
def audit_purge(ctx: Context) -> None:
    """Delete events older than server.audit_retention_days (the server does it daily)."""
    from fleuve.security import audit as trail

    project = ctx.project()
    days = project.settings.server.audit_retention_days
    console.print(f"Removed {trail.purge(project.db, days):,} events older than {days} days.")


# -- the SQL engine --------------------------------------------------------------------


def _engine(ctx: Context) -> Any:
    from fleuve.engine import Engine

    return Engine(ctx.project())


def _print_arrow(table: Any, limit: int = 200) -> None:
    out = Table(*table.schema.names)
    for row in table.slice(0, limit).to_pylist():
        out.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(out)
    if table.num_rows > limit:
        console.print(f"({table.num_rows:,} rows, {limit} shown)")


@cli.command("sql")
@click.argument("query")
@click.option("--user", default="admin", show_default=True, help="Run as this user (grants apply).")
@click.option(
    "--dialect", type=click.Choice(["duckdb", "dremio"]), default="duckdb", show_default=True
)
@click.option("--context", help="Resolve relative names here, e.g. gold or 'My Space.folder'.")
@click.option("--limit", default=200, show_default=True, help="Rows to print.")
@click.option("--json", "as_json", is_flag=True, help="Print rows as JSON lines.")
@pass_ctx
@handles_errors
def sql_command(
    ctx: Context,
    query: str,
    user: str,
    dialect: str,
    context: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Run QUERY through the engine: datasets, views, reflections, grants, DDL."""
    engine = _engine(ctx)
    try:
        result = engine.execute(query, user=user, dialect=dialect, default_schema=context)
        table = result.read_all()
        if as_json:
            for row in table.slice(0, limit).to_pylist():
                console.print_json(json.dumps(row, default=str))
        else:
            _print_arrow(table, limit)
        job = engine.job(result.job_id)
        chosen = [r["reflectionName"] for r in job.reflections if r["relationship"] == "CHOSEN"]
        err_console.print(
            f"job {job.id}: {job.row_count:,} rows, planned in {job.planning_ms or 0:.1f} ms"
            + (f", accelerated by {', '.join(chosen)}" if chosen else ""),
            highlight=False,
        )
    finally:
        engine.close()


@cli.group()
def reflections() -> None:
    """Reflections: list them, show one, refresh them."""


@reflections.command("list")
@click.option("--user", default="admin", show_default=True)
@pass_ctx
@handles_errors
def reflections_list(ctx: Context, user: str) -> None:
    """Every reflection with its status, size and use."""
    engine = _engine(ctx)
    try:
        table = Table("name", "type", "dataset", "status", "rows", "refreshed", "policy", "chosen")
        for r in engine.list_reflections(user=user):
            m, st = r["metrics"], r["status"]
            policy = r["refreshPolicy"]["type"] + (
                f" {r['refreshPolicy']['everySeconds']}s"
                if r["refreshPolicy"]["everySeconds"]
                else ""
            )
            table.add_row(
                r["name"],
                r["type"],
                ".".join(r["datasetPath"]),
                st["combinedStatus"],
                f"{m['rows']:,}",
                st["lastRefreshFinished"] or "never",
                policy,
                str(m["chosen"]),
            )
        console.print(table)
    finally:
        engine.close()


@reflections.command("show")
@click.argument("name")
@click.option("--user", default="admin", show_default=True)
@pass_ctx
@handles_errors
def reflections_show(ctx: Context, name: str, user: str) -> None:
    """One reflection as the REST API returns it."""
    engine = _engine(ctx)
    try:
        console.print_json(json.dumps(engine.reflection(name, user=user)))
    finally:
        engine.close()


@reflections.command("refresh")
@click.argument("name", required=False)
@click.option(
    "--full", is_flag=True, help="Rebuild from scratch even if an incremental refresh would do."
)
@click.option("--user", default="admin", show_default=True)
@pass_ctx
@handles_errors
def reflections_refresh(ctx: Context, name: str | None, full: bool, user: str) -> None:
    """Refresh NAME now, or every reflection that is due."""
    engine = _engine(ctx)
    try:
        if name:
            results = [engine.refresh_reflection(name, user=user, mode="FULL" if full else "AUTO")]
        else:
            results = engine.refresh_due()
        for r in results:
            console.print(
                f"{r.reflection}: {r.mode.lower()}, {r.rows:,} rows at snapshot {r.snapshot}"
                f" in {r.seconds:.2f}s" + (f" ({r.reason})" if r.reason else ""),
                highlight=False,
            )
        if not results:
            console.print("No reflection is due.")
    finally:
        engine.close()


@cli.group()
def grants() -> None:
    """Grants of SELECT or ALL on datasets, schemas and spaces, and of privileges on SYSTEM."""


@grants.command("list")
@click.option("--on", "path", help="Only grants on this dataset or container (e.g. gold.*).")
@click.option("--grantee", help="Only grants to this user or role.")
@click.option("--user", default="admin", show_default=True)
@pass_ctx
@handles_errors
def grants_list(ctx: Context, path: str | None, grantee: str | None, user: str) -> None:
    """List grants."""
    engine = _engine(ctx)
    try:
        table = Table("grantee", "type", "privilege", "object")
        for g in engine.list_grants(user=user, path=path, grantee=grantee):
            table.add_row(g.grantee, g.grantee_kind, g.privilege, g.as_json()["object"])
        console.print(table)
    finally:
        engine.close()


def _grant_command(revoke: bool) -> Callable[..., None]:
    @click.argument("privilege")
    @click.argument("path")
    @click.option("--role", help="Grantee role.")
    @click.option("--to-user", "to_user", help="Grantee user.")
    @click.option("--user", default="admin", show_default=True, help="Who grants.")
    @pass_ctx
    @handles_errors
    def command(
        ctx: Context, privilege: str, path: str, role: str | None, to_user: str | None, user: str
    ) -> None:
        if bool(role) == bool(to_user):
            raise FleuveError("name one grantee", "pass --role NAME or --to-user NAME")
        engine = _engine(ctx)
        try:
            kind, who = ("ROLE", role) if role else ("USER", to_user)
            if revoke:
                n = engine.revoke(privilege, path, user=user, grantee=who, grantee_type=kind)
                console.print(
                    f"Revoked {privilege.upper()} on {path} from {kind.lower()} {who} ({n})."
                )
            else:
                engine.grant(privilege, path, user=user, grantee=who, grantee_type=kind)
                console.print(f"Granted {privilege.upper()} on {path} to {kind.lower()} {who}.")
        finally:
            engine.close()

    return command


grants.command(
    "add",
    help="GRANT PRIVILEGE on PATH: SELECT or ALL on a dataset, or a container as path.*; "
    "a system privilege (e.g. SYNC, 'MANAGE GRANTS') on SYSTEM.",
)(_grant_command(revoke=False))
grants.command("revoke", help="REVOKE PRIVILEGE on PATH.")(_grant_command(revoke=True))


@cli.group()
def catalog() -> None:
    """The engine's catalog: external sources and promoted folders of files."""


@catalog.command("add-source")
@click.argument("name")
@click.argument("kind", type=click.Choice(["postgres", "mysql", "files"]))
@click.option(
    "--dsn",
    help="postgres/mysql: e.g. 'host=db port=5432 dbname=shop user=reader password=${PGPASS}'.",
)
@click.option("--location", help="files: a folder or s3://bucket/prefix.")
@click.option(
    "--option", "options", multiple=True, metavar="KEY=VALUE", help="e.g. endpoint=minio:9000."
)
@pass_ctx
@handles_errors
def catalog_add_source(
    ctx: Context,
    name: str,
    kind: str,
    dsn: str | None,
    location: str | None,
    options: tuple[str, ...],
) -> None:
    """Attach an external database read-only, or a folder or bucket of files."""
    config: dict[str, Any] = dict(parse_assignments(options))
    if dsn:
        config["dsn"] = dsn
    if location:
        config["location"] = location
    engine = _engine(ctx)
    try:
        src = engine.add_source(name, kind, user="admin", **config)
        console.print(f"Source {src['name']} ({src['type']}) added.")
    finally:
        engine.close()


@catalog.command("promote")
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "json"]))
@pass_ctx
@handles_errors
def catalog_promote(ctx: Context, path: str, fmt: str | None) -> None:
    """Make PATH (source.folder...) a dataset in place; Hive partitions become columns."""
    from fleuve.engine import paths

    engine = _engine(ctx)
    try:
        ds = engine.promote(paths.parse(path), user="admin", format=fmt)
        console.print(f"{paths.render(ds.path)}: {', '.join(f.name for f in ds.fields)}")
    finally:
        engine.close()


# -- serving and demo ------------------------------------------------------------------


@cli.command()
@click.option("--host", help="Interface to bind (default: server.host).")
@click.option("--port", type=int, help="HTTP port (default: server.http_port, 9047).")
@click.option(
    "--flight-port", type=int, help="Arrow Flight port (default: server.flight_port, 32010)."
)
@click.option(
    "--compat-ports/--no-compat-ports",
    default=None,
    help="Also serve the ingestion API on the seed's port 8001 (default: server.compat_ports).",
)
@pass_ctx
@handles_errors
def serve(
    ctx: Context,
    host: str | None,
    port: int | None,
    flight_port: int | None,
    compat_ports: bool | None,
) -> None:
    """Serve the REST API and Arrow Flight (with Flight SQL) until stopped (Ctrl-C or SIGTERM)."""
    from fleuve.demo import demo_sources
    from fleuve.serve.server import serve as run_server

    project = ctx.project()
    with demo_sources(project.settings):
        run_server(
            project,
            host=host,
            port=port,
            flight_port=flight_port,
            compat_ports=compat_ports,
            on_ready=lambda where: _print_where(project, where),
        )


def _print_where(project: Project, where: Any) -> None:
    console.print(f"\nFleuve {__version__} serving [bold]{project.settings.project_dir}[/]")
    console.print(f"  Web UI       {where.http}/  (dashboards at {where.http}/ui/dashboards)")
    console.print(f"  REST API     {where.http}/api/v3  (OpenAPI at {where.http}/docs)")
    console.print(f"  Arrow Flight {where.flight}  (Dremio-style commands and Flight SQL)")
    if where.compat:
        console.print(f"  Ingestion    {where.compat}/api/v1  (the seed's port)")
    console.print(f"  Health       {where.http}/health")
    secret = project.settings.state_dir / ADMIN_PASSWORD_FILE
    if secret.exists():
        console.print(f"  Log in       user [bold]admin[/], password in {secret}")
    console.print("Stop with Ctrl-C.")


@cli.command()
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
@handles_errors
def demo(ctx: Context, directory: Path, scale: int, serve_after: bool, api_port: int) -> None:
    """Build the embedded showcase in DIRECTORY, run the whole pipeline on it, then serve.

    Generates an e-commerce shop (customers, products, orders, order lines, web events; names in
    French, Arabic, Chinese and Japanese) into a SQLite database, CSV drops and a JSON REST API.
    """
    from fleuve.demo import demo_sources, ensure_reflections, prepare

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
        _print_init(report)
    project = Project.open(directory, ctx.overrides)
    with demo_sources(project.settings):
        _run_pipeline(project)
        for name in ensure_reflections(project):
            console.print(f"Created and built reflection {name}.")
        console.print(f"Demo ready in {time.monotonic() - started:.1f}s.")
        if serve_after:
            from fleuve.serve.server import serve as run_server

            run_server(project, on_ready=lambda where: _print_where(project, where))


# -- schedules -------------------------------------------------------------------------


@cli.command()
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    help="Runs this worker starts at once (default: schedule.max_parallel).",
)
@pass_ctx
@handles_errors
def worker(ctx: Context, max_parallel: int | None) -> None:
    """Run the project's schedules until stopped (Ctrl-C or SIGTERM).

    Start several workers, on one machine or many sharing the project's PostgreSQL metadata:
    each due run is started by exactly one of them.
    """
    from fleuve.schedule.worker import run_worker

    project = ctx.project()

    def ready(scheduler: Any) -> None:
        console.print(
            f"Fleuve worker {scheduler.owner}: {len(scheduler.defs)} schedules, up to "
            f"{scheduler.max_parallel} runs at once. Stop with Ctrl-C.",
            highlight=False,
        )

    run_worker(project, max_parallel=max_parallel, on_ready=ready)


@cli.group()
def schedules() -> None:
    """Schedules: list them, pause, resume, run one now, see its runs."""


def _when_short(iso: str | None) -> str:
    """'2026-03-02T08:15:00+00:00' as '03-02 08:15' (UTC), to fit 80 columns."""
    return iso[5:16].replace("T", " ") if iso else ""


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_as_user
@pass_ctx
@handles_errors
def schedules_list(ctx: Context, as_json: bool, as_user: str | None) -> None:
    """Every schedule: name, kind, schedule, last run, next run (UTC) and state."""
    from fleuve.schedule import scheduler

    project = ctx.project()
    _check_user(project, as_user, "MONITOR", "listing schedules")
    entries = scheduler.describe(project)
    if as_json:
        console.print_json(json.dumps({"data": entries}))
        return
    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, caption="times in UTC"
    )
    for title in ("name", "kind", "schedule", "last run", "next run", "state"):
        table.add_column(
            title,
            overflow="fold",
            no_wrap=title in ("name", "next run", "state"),
            min_width=16 if title == "schedule" else None,
        )
    for e in entries:
        last = e["lastRun"]
        spec = e["schedule"] + (f" ({e['timezone']})" if e["timezone"] != "UTC" else "")
        if e["after"]:
            spec += f" + after {', '.join(e['after'])}"
        if e["onNewData"]:
            spec += " + on new data"
        table.add_row(
            e["name"],
            e["kind"],
            spec,
            f"{_when_short(last['startedAt'])} {last['status']}" if last else "never",
            _when_short(e["nextRun"]) or "-",
            e["state"],
        )
    console.print(table)


_SCHEDULE_CHANGES = {
    "pause": "Pause schedule NAME: no scheduled run starts until it is resumed.",
    "resume": "Resume schedule NAME from its next due time (runs missed meanwhile are not run).",
}


def _schedule_change(action: str, doing: str) -> Callable[..., None]:
    @schedules.command(action, help=_SCHEDULE_CHANGES[action])
    @click.argument("name")
    @_as_user
    @pass_ctx
    @handles_errors
    def command(ctx: Context, name: str, as_user: str | None) -> None:
        from fleuve.schedule import scheduler

        project = ctx.project()
        _check_user(project, as_user, "MANAGE SCHEDULES", f"{doing} schedule '{name}'")
        entry = getattr(scheduler, action)(project, name, as_user or _actor())
        next_run = _when_short(entry["nextRun"]) or "none"
        console.print(f"{name}: {entry['state']} (next run {next_run})", highlight=False)

    return command


_schedule_change("pause", "pausing")
_schedule_change("resume", "resuming")


@schedules.command("run-now")
@click.argument("name")
@click.option(
    "--queue",
    is_flag=True,
    help="Ask the running workers (or fleuve serve) to run it, instead of running it here.",
)
@_as_user
@pass_ctx
@handles_errors
def schedules_run_now(ctx: Context, name: str, queue: bool, as_user: str | None) -> None:
    """Run schedule NAME now, here, and wait for it (what follows it with `after:` is queued)."""
    from fleuve.schedule import scheduler

    project = ctx.project()
    _check_user(project, as_user, "MANAGE SCHEDULES", f"running schedule '{name}'")
    who = as_user or _actor()
    if queue:
        scheduler.request_run(project, name, who)
        console.print(f"{name}: asked; a worker starts it as soon as it is free.")
        return
    runner = scheduler.Scheduler(project)
    run_id = runner.run_now(name, who)
    [run] = [r for r in scheduler.runs(project, name, 50) if r["id"] == run_id]
    job = f", job {run['jobId']}" if run["jobId"] else ""
    console.print(f"{name}: run {run_id} {run['status']}{job}", highlight=False)
    if run["log"]:
        console.print(f"Log: {run['log']}", highlight=False)
    if run["status"] != "succeeded":
        raise FleuveError(
            f"run {run_id} of '{name}' {run['status']}: {run['error']}",
            "see the log above or `fleuve jobs`, fix the cause, then run it again",
        )


@schedules.command("runs")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, help="How many recent runs.")
@_as_user
@pass_ctx
@handles_errors
def schedules_runs(ctx: Context, name: str, limit: int, as_user: str | None) -> None:
    """The latest runs of schedule NAME: due time, trigger, status, job."""
    from fleuve.schedule import scheduler

    project = ctx.project()
    _check_user(project, as_user, "MONITOR", "listing schedule runs")
    scheduler.describe_one(project, name)  # an unknown name fails here, naming the known ones
    table = Table(
        "run",
        "due (UTC)",
        "trigger",
        "try",
        "status",
        "job",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for r in scheduler.runs(project, name, limit):
        table.add_row(
            str(r["id"]),
            _when_short(r["dueAt"]),
            r["trigger"],
            str(r["attempt"]),
            r["status"],
            str(r["jobId"] or ""),
        )
    console.print(table)


cli.add_command(dashboards)


def main() -> None:
    """Entry point of the `fleuve` command."""
    cli(prog_name="fleuve")
