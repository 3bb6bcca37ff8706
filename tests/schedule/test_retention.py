"""Old schedule runs are deleted after schedule.run_retention_days; each schedule's last is kept."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from fleuve.metadata.schedule import ScheduleRun
from fleuve.schedule.clock import ManualClock
from fleuve.schedule.scheduler import Scheduler
from tests.schedule.conftest import START, Recorder, make_project


def test_runs_past_the_retention_are_deleted_but_each_last_run_is_kept(
    tmp_path: Path, projects: list
) -> None:
    work = [{"name": n, "what": "lake_maintain"} for n in ("often", "rarely")]
    project = make_project(
        tmp_path / "p",
        schedules=work,
        schedule={"reflections": "manual", "run_retention_days": 10},
    )
    projects.append(project)
    clock = ManualClock(START)
    # The work itself is a stand-in: this test is about the run history only.
    scheduler = Scheduler(project, clock=clock, runner=Recorder())
    first = scheduler.run_now("often", "admin")
    only = scheduler.run_now("rarely", "admin")
    clock.advance(days=9)
    recent = scheduler.run_now("often", "admin")
    clock.advance(days=2)  # the first runs ended 11 days ago, the recent one 2 days ago
    last = scheduler.run_now("often", "admin")
    scheduler.tick()
    with project.db.session() as s:
        kept = {r.id for r in s.scalars(select(ScheduleRun))}
    assert first not in kept
    assert kept == {only, recent, last}
