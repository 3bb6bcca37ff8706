"""A worker killed (SIGKILL) while holding a run's lease: the run is taken over and retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from fleuve.metadata import Job
from fleuve.metadata.schedule import ScheduleRun
from fleuve.schedule.clock import CLOCK_FILE_ENV, FileClock
from fleuve.schedule.scheduler import Scheduler
from tests.schedule.conftest import START, make_project, wait_for


def test_a_killed_leaseholder_is_detected_and_its_run_retried(
    tmp_path: Path, projects: list
) -> None:
    project = make_project(
        tmp_path / "p",
        schedules=[{"name": "tidy", "what": "lake_maintain", "schedule": "every_1_minutes"}],
        schedule={"reflections": "manual", "lease_seconds": 30},
    )
    projects.append(project)
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    env = {**os.environ, CLOCK_FILE_ENV: str(clock.path)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "fleuve", "--project", str(project.settings.project_dir), "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def runs() -> list[ScheduleRun]:
            with project.db.session() as s:
                return list(s.scalars(select(ScheduleRun).order_by(ScheduleRun.id)))

        def child_pid() -> int | None:
            with project.db.session() as s:
                job = s.scalar(select(Job).where(Job.config_type == "lake_maintain"))
                return job.detail.get("child_pid") if job else None

        # The worker records the next due time (08:01) once started: then the minute comes.
        wait_for(lambda: worker.poll() is None and _has_state(project), 60, "the worker")
        clock.set(START.replace(second=0) + timedelta(minutes=1))
        wait_for(lambda: child_pid() is not None, 60, "the run's child process")
        [first] = runs()
        assert first.status == "running" and first.attempt == 1
        child = child_pid()
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        # The run's child dies with the worker that held the lease.
        wait_for(lambda: not _alive(child), 10, "the child to die with its worker")

        other = Scheduler(project, clock=clock)
        other.tick()
        assert [r.status for r in runs()] == ["running"]  # the lease has not expired yet
        clock.set(clock.now() + timedelta(seconds=31))
        other.tick()
        wait_for(lambda: other.running == 0, 120, "the retried run")
        first, second = runs()[:2]
        assert first.status == "abandoned" and "stopped before the run finished" in first.error
        assert (second.attempt, second.trigger, second.due_at) == (2, "retry", first.due_at)
        assert second.owner == other.owner != first.owner
        assert second.status == "succeeded", Path(second.log_path).read_text(encoding="utf-8")
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(10)


def _has_state(project) -> bool:  # type: ignore[no-untyped-def]
    from fleuve.metadata.schedule import ScheduleState

    with project.db.session() as s:
        return s.get(ScheduleState, "tidy") is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie until its parent (gone) is reaped by init: read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
