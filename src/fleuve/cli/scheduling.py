"""`fleuve worker` and `fleuve schedules`: running by itself, and steering what runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from rich import box
from rich.table import Table

from fleuve.cli.context import (
    Context,
    FleuveGroup,
    actor,
    as_user_option,
    check_user,
    console,
    pass_ctx,
)
from fleuve.errors import FleuveError


@click.command()
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    help="Runs this worker starts at once (default: schedule.max_parallel).",
)
@pass_ctx
def worker(ctx: Context, max_parallel: int | None) -> None:
    """Run the project's schedules until stopped (Ctrl-C or SIGTERM).

    Start several workers, on one machine or many sharing the project's PostgreSQL metadata:
    each due run is started by exactly one of them.
    """
    from fleuve.schedule.worker import run_worker

    project = ctx.project()
    project.log_to_lake()

    def ready(scheduler: Any) -> None:
        console.print(
            f"Fleuve worker {scheduler.owner}: {len(scheduler.defs)} schedules, up to "
            f"{scheduler.max_parallel} runs at once. Stop with Ctrl-C.",
            highlight=False,
        )

    run_worker(project, max_parallel=max_parallel, on_ready=ready)


@click.group(cls=FleuveGroup)
def schedules() -> None:
    """Schedules: list them, pause, resume, run one now, see its runs."""


def _when_short(iso: str | None) -> str:
    """'2026-03-02T08:15:00+00:00' as '03-02 08:15' (UTC), to fit 80 columns."""
    return iso[5:16].replace("T", " ") if iso else ""


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@as_user_option
@pass_ctx
def schedules_list(ctx: Context, as_json: bool, as_user: str | None) -> None:
    """Every schedule: name, kind, schedule, last run, next run (UTC) and state."""
    from fleuve.schedule import scheduler

    project = ctx.project()
    check_user(project, as_user, "MONITOR", "listing schedules")
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
    """`schedules pause` or `schedules resume`: one schedule's state changed."""

    @schedules.command(action, help=_SCHEDULE_CHANGES[action])
    @click.argument("name")
    @as_user_option
    @pass_ctx
    def command(ctx: Context, name: str, as_user: str | None) -> None:
        from fleuve.schedule import scheduler

        project = ctx.project()
        check_user(project, as_user, "MANAGE SCHEDULES", f"{doing} schedule '{name}'")
        entry = getattr(scheduler, action)(project, name, as_user or actor())
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
@as_user_option
@pass_ctx
def schedules_run_now(ctx: Context, name: str, queue: bool, as_user: str | None) -> None:
    """Run schedule NAME now, here, and wait for it (what follows it with `after:` is queued)."""
    from fleuve.schedule import scheduler

    project = ctx.project()
    check_user(project, as_user, "MANAGE SCHEDULES", f"running schedule '{name}'")
    who = as_user or actor()
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
            "see the log above or `fleuve ingest jobs`, fix the cause, then run it again",
        )


@schedules.command("runs")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, help="How many recent runs.")
@as_user_option
@pass_ctx
def schedules_runs(ctx: Context, name: str, limit: int, as_user: str | None) -> None:
    """The latest runs of schedule NAME: due time, trigger, status, job."""
    from fleuve.schedule import scheduler

    project = ctx.project()
    check_user(project, as_user, "MONITOR", "listing schedule runs")
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
