"""The scheduler on a clock the tests move: due runs, catch-up, leases, `after`, timeouts."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fleuve.metadata import Job
from fleuve.metadata.schedule import ScheduleRun, ScheduleState
from fleuve.project import Project
from fleuve.schedule import scheduler as sched
from fleuve.schedule.clock import ManualClock
from fleuve.schedule.scheduler import ScheduleBusy, ScheduleNotFound, Scheduler
from fleuve.schedule.work import definitions
from tests.schedule.conftest import START, Recorder, make_project, sqlite_connection, wait_for


def all_runs(project: Project) -> list[ScheduleRun]:
    with project.db.session() as s:
        return list(s.scalars(select(ScheduleRun).order_by(ScheduleRun.id)))


def work(name: str, schedule: str = "manual", **more: object) -> dict:
    return {"name": name, "what": "lake_maintain", "schedule": schedule, **more}


def settle(scheduler: Scheduler) -> None:
    wait_for(lambda: scheduler.running == 0, what="runs to end")


def test_a_real_sync_runs_when_due_and_records_its_job(tmp_path: Path, projects: list) -> None:
    project = make_project(
        tmp_path / "p",
        [sqlite_connection(tmp_path / "src", "shop", "every_15_minutes")],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    clock = ManualClock(START)  # 08:00:30; due at 08:15
    scheduler = Scheduler(project, clock=clock)
    assert scheduler.tick() == pytest.approx(1.0) and all_runs(project) == []
    clock.set(START.replace(minute=15, second=0))
    scheduler.tick()
    settle(scheduler)
    [run] = all_runs(project)
    assert (run.schedule, run.status, run.trigger) == ("shop", "succeeded", "schedule")
    assert run.due_at == START.replace(minute=15, second=0)
    with project.db.session() as s:
        job = s.get(Job, run.job_id)
        assert (job.config_type, job.config_id, job.status) == ("sync", "shop", "succeeded")
    rows = project.lake.query('SELECT count(*) AS n FROM bronze."shop_towns"')["n"][0].as_py()
    assert rows == 3
    [entry] = [e for e in sched.describe(project, clock) if e["name"] == "shop"]
    assert entry["nextRun"] == START.replace(minute=30, second=0).isoformat()
    assert entry["lastRun"]["status"] == "succeeded" and entry["state"] == "scheduled"


@pytest.mark.parametrize(("catch_up", "expected"), [("once", ["succeeded"]), ("skip", ["skipped"])])
def test_runs_missed_while_down_are_caught_up_once_or_skipped(
    tmp_path: Path, projects: list, catch_up: str, expected: list[str]
) -> None:
    project = make_project(
        tmp_path / "p",
        schedules=[work("tidy", "every_1_minutes", catch_up=catch_up)],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    clock, runner = ManualClock(START), Recorder()
    Scheduler(project, clock=clock, runner=runner)  # records the next due time, 08:01
    clock.advance(hours=3)  # everything was down for three hours: 180 ticks missed
    scheduler = Scheduler(project, clock=clock, runner=runner)
    scheduler.tick()
    settle(scheduler)
    scheduler.tick()
    settle(scheduler)
    runs = all_runs(project)
    assert [r.status for r in runs] == expected
    assert runs[0].trigger == "catch_up" and runs[0].due_at == START.replace(second=0) + timedelta(
        minutes=1
    )
    assert runner.names() == (["tidy"] if catch_up == "once" else [])
    with project.db.session() as s:
        assert s.get(ScheduleState, "tidy").next_due_at == clock.now().replace(
            second=0
        ) + timedelta(minutes=1)


def test_each_due_run_starts_once_among_competing_schedulers(
    tmp_path: Path, projects: list
) -> None:
    names = [f"w{i}" for i in range(12)]
    project = make_project(
        tmp_path / "p",
        schedules=[work(n, "every_1_minutes") for n in names],
        schedule={"reflections": "manual", "max_parallel": 64},
    )
    projects.append(project)
    clock, runner = ManualClock(START), Recorder()
    schedulers = [
        Scheduler(Project.open(project.settings.project_dir), clock=clock, runner=runner)
        for _ in range(4)
    ]
    projects.extend(s.project for s in schedulers)
    for minute in range(1, 4):
        clock.set(START.replace(second=0) + timedelta(minutes=minute))
        threads = [threading.Thread(target=s.tick) for s in schedulers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in schedulers:
            settle(s)
    runs = all_runs(project)
    assert sorted(runner.names()) == sorted(names * 3)
    assert len({(r.schedule, r.due_at) for r in runs}) == len(runs) == 36
    # Which scheduler claims a run is a race: on a loaded machine one may claim all 36, rightly.
    assert all(r.owner for r in runs)


def test_a_schedule_runs_once_at_a_time_and_run_now_waits_for_it(
    tmp_path: Path, projects: list
) -> None:
    project = make_project(
        tmp_path / "p",
        schedules=[work("slow", "every_1_minutes")],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    clock, runner = ManualClock(START), Recorder(hold=True)
    scheduler = Scheduler(project, clock=clock, runner=runner)
    clock.set(START.replace(second=0) + timedelta(minutes=1))
    scheduler.tick()
    other = Scheduler(Project.open(project.settings.project_dir), clock=clock, runner=runner)
    projects.append(other.project)
    with pytest.raises(ScheduleBusy, match=r"'slow'.*running in another process"):
        other.run_now("slow", "test")
    sched.request_run(project, "slow", "test", clock)
    clock.advance(minutes=1)  # the next tick comes while the first run still goes on
    scheduler.tick()
    other.tick()
    assert runner.names() == ["slow"]
    runner.hold.set()
    settle(scheduler)
    other.tick()
    settle(other)
    scheduler.tick()
    settle(scheduler)
    runs = all_runs(project)
    assert sorted(r.trigger for r in runs) == ["run_now by test", "schedule", "schedule"]
    assert all(r.status == "succeeded" for r in runs)
    ordered = sorted(runs, key=lambda r: r.started_at)
    for a, b in itertools.pairwise(ordered):
        assert a.ended_at <= b.started_at  # never two at once


def test_after_runs_exactly_what_is_downstream(tmp_path: Path, projects: list) -> None:
    project = make_project(
        tmp_path / "p",
        schedules=[
            work("extract"),
            work("clean", after=["extract"]),
            work("report", after=["clean"]),
            work("audit", after=["clean", "other"]),
            work("other"),
            work("unrelated", after=["other"]),
        ],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    clock, runner = ManualClock(START), Recorder()
    scheduler = Scheduler(project, clock=clock, runner=runner)
    scheduler.run_now("extract", "test")
    for _ in range(4):
        scheduler.tick()
        settle(scheduler)
    assert runner.names() == ["extract", "clean", "report"]
    triggers = {r.schedule: r.trigger for r in all_runs(project)}
    assert triggers == {
        "extract": "run_now by test",
        "clean": "after extract",
        "report": "after clean",
    }
    # `audit` waits for both of its upstreams: once `other` succeeds too, it runs (once).
    clock.advance(minutes=1)
    scheduler.run_now("other", "test")
    for _ in range(3):
        scheduler.tick()
        settle(scheduler)
    assert sorted(runner.names()[3:]) == ["audit", "other", "unrelated"]
    # A failure stops the chain.
    runner.fail.add("extract")
    clock.advance(minutes=1)
    scheduler.run_now("extract", "test")
    scheduler.tick()
    settle(scheduler)
    assert runner.names()[6:] == ["extract"]


def test_pause_resume_and_unknown_names(tmp_path: Path, projects: list) -> None:
    project = make_project(
        tmp_path / "p",
        schedules=[work("tidy", "every_1_minutes")],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    clock, runner = ManualClock(START), Recorder()
    scheduler = Scheduler(project, clock=clock, runner=runner)
    assert sched.pause(project, "tidy", "ops", clock)["state"] == "paused"
    clock.advance(minutes=10)
    scheduler.tick()
    assert runner.names() == []
    resumed = sched.resume(project, "tidy", "ops", clock)
    # Resuming does not run what was missed while paused: the next run is the next tick.
    assert resumed["state"] == "scheduled"
    assert resumed["nextRun"] == (clock.now().replace(second=0) + timedelta(minutes=1)).isoformat()
    scheduler.tick()
    assert runner.names() == []
    with pytest.raises(ScheduleNotFound, match="no schedule named 'tidi'") as err:
        sched.pause(project, "tidi", "ops", clock)
    assert "tidy" in err.value.fix


def test_a_child_run_past_its_timeout_is_stopped_and_recorded(
    tmp_path: Path, projects: list
) -> None:
    # 0.01 minutes: the child process is stopped while it is still starting up.
    project = make_project(
        tmp_path / "p",
        schedules=[work("tidy", timeout_minutes=0.01)],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    scheduler = Scheduler(project)
    run_id = scheduler.run_now("tidy", "test")
    [run] = all_runs(project)
    assert (run.id, run.status) == (run_id, "timed_out")
    assert "timeout of 0.01 minutes" in run.error
    assert "timeout of 0.01 minutes" in Path(run.log_path).read_text(encoding="utf-8")
    with project.db.session() as s:
        job = s.get(Job, run.job_id)
        assert (job.config_type, job.status) == ("lake_maintain", "timed_out")


def test_lake_maintenance_runs_in_a_child_process_with_its_log(
    tmp_path: Path, projects: list
) -> None:
    project = make_project(
        tmp_path / "p", schedules=[work("tidy")], schedule={"reflections": "manual"}
    )
    projects.append(project)
    Scheduler(project).run_now("tidy", "test")
    [run] = all_runs(project)
    assert run.status == "succeeded", Path(run.log_path).read_text(encoding="utf-8")
    assert Path(run.log_path).read_text(encoding="utf-8").strip()


def test_pipeline_selections_and_the_connections_they_hold(tmp_path: Path, projects: list) -> None:
    project = make_project(
        tmp_path / "p",
        [sqlite_connection(tmp_path / "src", "shop", "every_1_minutes")],
        schedules=[
            {"name": "batch", "what": "pipeline", "schedule": "every_1_minutes"},
            {"name": "marts", "what": "pipeline", "select": ["staging", "marts", "warm_up"]},
            {"name": "finance", "what": "dbt", "select": ["tag:finance"], "command": "run"},
        ],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    defs = definitions(project.settings)
    assert defs["marts"].select == ("staging", "test_staging", "marts", "test_marts", "warm_up")
    assert defs["marts"].resources == ()  # it syncs nothing
    assert defs["batch"].resources == ("connection:shop",)
    assert (defs["finance"].kind, defs["finance"].command) == ("dbt", "run")
    # The whole pipeline syncs every connection: while it runs, the connection's own
    # schedule waits for it instead of syncing at the same time.
    clock, runner = ManualClock(START), Recorder(hold=True)
    scheduler = Scheduler(project, clock=clock, runner=runner)
    with project.db.session() as s:  # the pipeline's tick comes first
        s.get(ScheduleState, "shop").next_due_at += timedelta(seconds=30)
    clock.set(START.replace(second=0) + timedelta(minutes=1))
    scheduler.tick()
    clock.advance(seconds=40)
    scheduler.tick()
    assert runner.names() == ["batch"]
    runner.hold.set()
    settle(scheduler)
    scheduler.tick()
    settle(scheduler)
    assert runner.names() == ["batch", "shop"]
