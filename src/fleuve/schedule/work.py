"""What can be scheduled: connection syncs, the pipeline, dbt selections, lake maintenance and
reflection refreshes; their definitions from fleuve.yml and how one run of each is carried out.

Syncs and reflection refreshes run in the scheduler's process: a sync stops itself at its
connection's timeout_minutes, a refresh's statement is interrupted at the schedule's, and both
stop when the scheduler asks (its lease was lost to another process, or it is stopping). The
pipeline, dbt and lake maintenance run as a child process (`python -m fleuve.schedule.child`),
killed past its timeout_minutes or when the scheduler asks, and dying with the process that
holds its lease.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleuve.config import ScheduledWork, Settings
from fleuve.errors import ConfigError
from fleuve.triggers import Trigger, parse

if TYPE_CHECKING:
    from fleuve.project import Project

REFLECTIONS = "reflections"
# The pipeline's layers, each naming its dbt run and its tests.
LAYERS = {
    "bronze": ("ingest", "load_bronze"),
    "staging": ("staging", "test_staging"),
    "intermediate": ("intermediate", "test_intermediate"),
    "marts": ("marts", "test_marts"),
}
KILL_GRACE_SECONDS = 10


@dataclass(frozen=True)
class Scheduled:
    """One schedule as the scheduler runs it."""

    name: str
    kind: str  # sync, pipeline, dbt, lake_maintain or reflections
    spec: str
    timezone: str
    trigger: Trigger
    timeout_minutes: float
    catch_up: str
    after: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    command: str = "build"
    # Leases held while it runs besides its own: the connections it syncs.
    resources: tuple[str, ...] = ()
    # Also run when a lake table its dbt selection reads got new data since its last look.
    on_new_data: bool = False

    @property
    def dbt_selection(self) -> tuple[str, ...]:
        """The dbt selections it runs: a dbt schedule's own, or a pipeline's layers."""
        if self.kind == "dbt":
            return self.select
        layers = [name for name, steps in LAYERS.items() if set(steps) & set(self.select)]
        return tuple(layer for layer in layers if layer != "bronze")

    @property
    def shown_spec(self) -> str:
        """The spelling with its time zone, as listed and stored."""
        return self.spec if self.timezone == "UTC" else f"{self.spec} ({self.timezone})"


@dataclass
class RunOutcome:
    """How a run ended."""

    status: str  # succeeded, failed or timed_out
    error: str | None = None
    job_id: int | None = None
    log_path: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def definitions(settings: Settings) -> dict[str, Scheduled]:
    """Every schedule of the project: one per connection, the reflections' check, `schedules:`."""
    defaults = settings.schedule
    out: dict[str, Scheduled] = {}
    for conn in settings.connections:
        tz = conn.timezone or defaults.timezone
        spec = conn.schedule or "manual"
        out[conn.name] = Scheduled(
            name=conn.name,
            kind="sync",
            spec=spec,
            timezone=tz,
            trigger=parse(spec, tz, f"connection '{conn.name}' schedule"),
            timeout_minutes=conn.timeout_minutes,
            catch_up=defaults.catch_up,
            resources=(f"connection:{conn.name}",),
        )
    out[REFLECTIONS] = Scheduled(
        name=REFLECTIONS,
        kind=REFLECTIONS,
        spec=defaults.reflections,
        timezone=defaults.timezone,
        trigger=parse(defaults.reflections, defaults.timezone, "schedule.reflections"),
        timeout_minutes=60,
        catch_up="skip",
    )
    for work in settings.schedules:
        tz = work.timezone or defaults.timezone
        steps = _pipeline_steps(work) if work.what == "pipeline" else ()
        syncs = work.what == "pipeline" and (not steps or "ingest" in steps)
        if work.on_new_data and work.what == "pipeline" and (not steps or "load_bronze" in steps):
            raise ConfigError(
                f"schedule '{work.name}' runs on new data but ingests the sources itself, so "
                "no new data would come before it runs",
                "select the layers it should rebuild, e.g. select: [staging, marts], and let "
                "the connections' own schedules bring the data",
            )
        out[work.name] = Scheduled(
            name=work.name,
            kind=work.what,
            spec=work.schedule,
            timezone=tz,
            trigger=parse(work.schedule, tz, f"schedule '{work.name}'"),
            timeout_minutes=work.timeout_minutes,
            catch_up=work.catch_up or defaults.catch_up,
            after=tuple(work.after),
            select=tuple(steps if work.what == "pipeline" else work.select),
            command=work.command,
            resources=tuple(f"connection:{c.name}" for c in settings.connections) if syncs else (),
            on_new_data=work.on_new_data,
        )
    return out


def _pipeline_steps(work: ScheduledWork) -> tuple[str, ...]:
    """The pipeline steps a selection of steps and layers names, in pipeline order."""
    from fleuve.pipeline import STEPS

    names = [s.name for s in STEPS]
    wanted: set[str] = set()
    for item in work.select:
        if item in LAYERS:
            wanted.update(LAYERS[item])
        elif item in names:
            wanted.add(item)
        else:
            raise ConfigError(
                f"schedule '{work.name}' selects {item!r}, which is no pipeline step or layer",
                f"select among the layers {', '.join(LAYERS)} or the steps {', '.join(names)}",
            )
    return tuple(n for n in names if n in wanted)


def run_sync(project: Project, item: Scheduled, stop: threading.Event) -> RunOutcome:
    """Sync the connection in this process; its job records the attempts and the log. `stop`
    (the lease was lost, or the scheduler stops) interrupts it."""
    from fleuve.ingest import sync_connection
    from fleuve.security.audit import Origin

    result = sync_connection(
        project.settings,
        project.lake,
        project.db,
        item.name,
        origin=Origin("scheduler"),
        stop=stop,
    )
    timed_out = any("ran past its timeout" in e for e in result.errors.values())
    status = "timed_out" if timed_out else result.status
    return RunOutcome(status, result.error, result.job_id, details={"records": result.records})


def run_reflections(
    project: Project, engine: Any, item: Scheduled, stop: threading.Event
) -> RunOutcome:
    """Refresh the reflections that are due (each refresh takes its own lease); past the
    schedule's timeout_minutes, or once `stop` is set, the running refresh is interrupted (it
    rolls back) and the others wait for the next run."""
    due = engine.reflections.due()
    if not due:
        return RunOutcome("succeeded", details={"refreshed": 0})  # a look, no job to keep
    job_id = _start_job(project, REFLECTIONS, REFLECTIONS, {"due": [r.name for r in due]})
    halted, done = threading.Event(), threading.Event()
    watcher = threading.Thread(
        target=_halt_refreshes,
        args=(engine.project.lake, threading.get_ident(), item, stop, halted, done),
        name=f"fleuve-{item.name}-watch",
        daemon=True,
    )
    watcher.start()
    try:
        results = engine.refresh_due(stop=halted)
    except Exception as exc:  # recorded on the run, the loop goes on
        _finish_job(project, job_id, "failed", {"error": str(exc)})
        return RunOutcome("failed", f"{type(exc).__name__}: {exc}", job_id)
    finally:
        done.set()
        watcher.join()
    failed = [r for r in results if r.mode == "FAILED"]
    refreshed = [{"reflection": r.reflection, "mode": r.mode, "rows": r.rows} for r in results]
    left = len(due) - len(results)
    error: str | None
    if halted.is_set() and (failed or left):
        status = "cancelled" if stop.is_set() else "timed_out"
        error = (
            "stopped by the scheduler (its lease was lost, or it is stopping)"
            if stop.is_set()
            else f"ran past its timeout of {item.timeout_minutes:g} minutes and was stopped"
        )
        if left:
            error += f"; {left} due reflection(s) left for the next run"
    else:
        status = "failed" if failed else "succeeded"
        error = "; ".join(f"{r.reflection}: {r.reason}" for r in failed) or None
    detail = {"refreshed": refreshed, **({"error": error} if error else {})}
    _finish_job(project, job_id, status, detail)
    return RunOutcome(status, error, job_id, details={"refreshed": len(results)})


def _halt_refreshes(
    lake: Any,
    thread: int,
    item: Scheduled,
    stop: threading.Event,
    halted: threading.Event,
    done: threading.Event,
) -> None:
    """Until `done`: at the timeout or on `stop`, set `halted` and interrupt what `thread`
    commits to the lake (again each time, as the refresh may be between two statements)."""
    deadline = time.monotonic() + item.timeout_minutes * 60
    while not done.wait(0.2):
        if not halted.is_set() and (stop.is_set() or time.monotonic() >= deadline):
            halted.set()
        if halted.is_set():
            lake.interrupt(thread)


def run_child(project: Project, item: Scheduled, run_id: int, stop: threading.Event) -> RunOutcome:
    """Run pipeline, dbt or lake maintenance in a child process; stop it at its timeout."""
    settings = project.settings
    folder = settings.state_dir / "logs" / "schedules"
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"{item.name}-{run_id}.log"
    job_id = _start_job(
        project, item.kind, item.name, {"schedule_run": run_id, "log": str(log_path)}
    )
    command = [
        sys.executable,
        "-m",
        "fleuve.schedule.child",
        str(settings.project_dir),
        json.dumps(
            {
                "kind": item.kind,
                "select": list(item.select),
                "command": item.command,
                "name": item.name,
            }
        ),
        json.dumps(project.overrides),
    ]
    with log_path.open("ab") as log:
        child = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only a prctl call between fork and exec
        )
        _update_job(project, job_id, {"child_pid": child.pid})
        deadline = item.timeout_minutes * 60
        waited, status, error = 0.0, None, None
        while status is None:
            try:
                code = child.wait(timeout=0.5)
                status = "succeeded" if code == 0 else "failed"
                if code:
                    error = _last_line(log_path) or f"exited with status {code}"
            except subprocess.TimeoutExpired:
                waited += 0.5
                if waited >= deadline or stop.is_set():
                    _stop(child)
                    status = "timed_out" if waited >= deadline else "cancelled"
                    error = (
                        f"ran past its timeout of {item.timeout_minutes:g} minutes and was stopped"
                        if status == "timed_out"
                        else "stopped with the process that ran it"
                    )
                    with log_path.open("a", encoding="utf-8") as note:
                        note.write(f"\n{error}\n")
    _finish_job(project, job_id, status, {"error": error} if error else {})
    return RunOutcome(status, error, job_id, str(log_path))


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when the scheduler's process dies, so a run never outlives
    its lease holder (another process retries it once the lease expires)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _last_line(path: Path) -> str | None:
    try:
        lines = [
            ln
            for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
            if ln.strip()
        ]
    except OSError:
        return None
    return lines[-1][:500] if lines else None


def _start_job(project: Project, kind: str, name: str, detail: dict[str, Any]) -> int:
    from fleuve.ingest.sync_jobs import HOST
    from fleuve.metadata import Job

    with project.db.session() as s:
        job = Job(
            config_type=kind,
            config_id=name,
            status="running",
            detail={"pid": os.getpid(), "host": HOST, **detail},
        )
        s.add(job)
        s.flush()
        return job.id


def _update_job(project: Project, job_id: int, detail: dict[str, Any]) -> None:
    from fleuve.metadata import Job

    with project.db.session() as s:
        job = s.get_one(Job, job_id)
        job.detail = {**job.detail, **detail}


def _finish_job(project: Project, job_id: int, status: str, detail: dict[str, Any]) -> None:
    from fleuve.metadata import Job

    with project.db.session() as s:
        job = s.get_one(Job, job_id)
        job.status = status
        job.detail = {**job.detail, **detail}
