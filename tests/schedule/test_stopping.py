"""Runs are stopped when they must be: a reflection refresh past its timeout, a sync whose lease
another process took over; and a dbt parse never holds the loop's ticks back."""

from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from fleuve.engine import Engine
from fleuve.ingest import sync_connection
from fleuve.metadata import Job
from fleuve.metadata.engine import EngineReflection
from fleuve.metadata.schedule import ScheduleRun
from fleuve.project import Project
from fleuve.schedule import leases
from fleuve.schedule import scheduler as sched
from fleuve.schedule.clock import ManualClock
from fleuve.schedule.scheduler import Scheduler
from fleuve.schedule.work import REFLECTIONS
from tests.ingest.conftest import TestAPI
from tests.schedule.conftest import (
    START,
    Recorder,
    make_project,
    on_postgresql,
    sqlite_connection,
    tick_until,
    wait_for,
)

# The module, not the function `fleuve.transform.lineage` that the package exports.
lineage = importlib.import_module("fleuve.transform.lineage")


def all_runs(project: Project) -> list[ScheduleRun]:
    with project.db.session() as s:
        return list(s.scalars(select(ScheduleRun).order_by(ScheduleRun.id)))


@pytest.mark.timeout(300)
def test_a_reflection_refresh_past_its_timeout_is_interrupted_and_recorded(
    tmp_path: Path, projects: list
) -> None:
    project = make_project(tmp_path / "p", schedule={"reflections": "manual"})
    projects.append(project)
    project.lake.commit(
        lambda c: c.execute("CREATE TABLE gold.nums AS SELECT range AS n FROM range(10)"),
        creates=True,
    )
    engine = Engine(project)
    try:
        for sql in (
            "CREATE SPACE Shop",
            "CREATE VIEW Shop.cubes AS SELECT a.n % 7 AS k FROM gold.nums a, gold.nums b, gold.nums c",
            "CREATE REFLECTION cubes ON Shop.cubes USING DIMENSIONS (k) MEASURES (COUNT(*))",
        ):
            engine.execute(sql, user="admin").read_all()
        # 3,010 rows make the view's cross join 2.7e10 rows: minutes of work for the refresh.
        project.lake.commit(
            lambda c: c.execute("INSERT INTO gold.nums SELECT range FROM range(10, 3010)")
        )
        assert [r.name for r in engine.reflections.due()] == ["cubes"]
        scheduler = Scheduler(project, engine=engine)
        scheduler.defs[REFLECTIONS] = dataclasses.replace(
            scheduler.defs[REFLECTIONS], timeout_minutes=0.05
        )
        started = time.monotonic()
        scheduler.run_now(REFLECTIONS, "test")
        assert time.monotonic() - started < 60  # 3 s of timeout, then the statement stops
        [run] = all_runs(project)
        assert run.status == "timed_out", run.error
        assert "ran past its timeout of 0.05 minutes" in run.error
        with project.db.session() as s:
            job = s.get(Job, run.job_id)
            assert (job.config_type, job.status) == (REFLECTIONS, "timed_out")
            assert [r["mode"] for r in job.detail["refreshed"]] == ["FAILED"]
            row = s.scalar(select(EngineReflection).where(EngineReflection.name == "cubes"))
            # Its refresh lease is given back: the next run of the schedule tries it again.
            assert row.refresh_started_at is None and row.error
        assert [r.name for r in engine.reflections.due()] == ["cubes"]
    finally:
        engine.close()


@pytest.fixture
def api() -> Iterator[TestAPI]:
    """A JSON API on loopback whose pages come slowly: a sync of it takes seconds."""
    server = TestAPI()
    server.state.records["things"] = [{"id": i, "v": f"valeur {i} — 値"} for i in range(200)]
    server.state.delay = 0.25  # 41 pages of 5 records: ten seconds
    try:
        yield server
    finally:
        server.stop()


def test_a_sync_whose_lease_was_taken_over_is_stopped(
    tmp_path: Path, projects: list, api: TestAPI, pg_schema: str, pg_database: str
) -> None:
    source = {
        "type": "rest",
        "url": api.url,
        "api_key": api.state.api_key,
        "pagination": {"type": "page", "size": 5},
    }
    conn = {
        "name": "api",
        "source": source,
        "streams": [{"name": "things", "path": "/page/things"}],
    }
    project = make_project(
        tmp_path / "p",
        [conn],
        schedule={"reflections": "manual", "lease_seconds": 30},
        **on_postgresql(pg_schema, pg_database),
    )
    projects.append(project)
    clock = ManualClock(START)
    first = Scheduler(project, clock=clock)
    second = Scheduler(Project.open(project.settings.project_dir), clock=clock)
    projects.append(second.project)
    sched.request_run(project, "api", "test", clock)
    first.tick()
    wait_for(lambda: len(api.state.requests) >= 2, what="the first sync to read")
    # The first process stalls past its lease (no heartbeat): the second one takes the run over
    # and syncs the connection again; the first sees its lease lost at its next tick.
    clock.advance(seconds=31)
    second.tick()
    assert second.running == 1
    first.tick()
    wait_for(lambda: first.running == 0, 30, "the first sync to stop")
    api.state.delay = 0  # the rest of the second sync needs not be slow
    wait_for(lambda: second.running == 0, 60, "the second sync")

    abandoned, retried = all_runs(project)
    assert abandoned.status == "abandoned" and abandoned.owner == first.owner
    assert (retried.status, retried.attempt, retried.owner) == ("succeeded", 2, second.owner)
    with project.db.session() as s:
        jobs = list(s.scalars(select(Job).where(Job.config_type == "sync").order_by(Job.id)))
    assert [j.status for j in jobs] == ["cancelled", "succeeded"]
    # Stopped once it saw the loss, long before its forty pages were read.
    assert jobs[0].updated_at < jobs[1].updated_at
    rows = project.lake.query('SELECT count(*) AS n FROM bronze."things"')["n"][0].as_py()
    assert rows == 200  # the stopped sync committed nothing


def test_a_dbt_parse_never_holds_a_tick_back(
    tmp_path: Path, projects: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = sqlite_connection(tmp_path / "src", "shop")
    shop["streams"] = [{"name": "raw_customers", "table": "towns"}]
    project = make_project(
        tmp_path / "p",
        [shop],
        [
            {"name": "customers", "what": "dbt", "select": ["stg_customers"], "on_new_data": True},
            {"name": "tidy", "what": "lake_maintain", "schedule": "every_1_minutes"},
        ],
        schedule={"reflections": "manual"},
    )
    projects.append(project)
    # The parse is dbt's own; it is only held back until the test has seen the tick end (ten
    # seconds at most: a loop that waited for the parse would wait that long), as a large
    # project's parse takes seconds. The runs are stand-ins: this test is about the loop.
    parses: list[list[str]] = []
    release = threading.Event()
    real_run_dbt = lineage.run_dbt

    def slow_parse(settings: Any, args: list[str], **more: Any) -> Any:
        parses.append(args)
        release.wait(10)
        return real_run_dbt(settings, args, **more)

    monkeypatch.setattr(lineage, "run_dbt", slow_parse)
    clock, recorder = ManualClock(START), Recorder()
    scheduler = Scheduler(project, clock=clock, runner=recorder)
    scheduler.tick()  # the first look notes where the lake is
    assert sync_connection(project.settings, project.lake, project.db, "shop").status == (
        "succeeded"
    )
    # New data for `customers` (whose tables are known once the project is parsed), and `tidy`
    # due: the tick starts `tidy` on time while the parse goes on beside the loop.
    clock.set(START.replace(second=0) + timedelta(minutes=1))
    began = time.monotonic()
    scheduler.tick()
    late = time.monotonic() - began
    release.set()
    assert late < 10, f"the tick waited {late:.1f}s for the parse"
    wait_for(lambda: recorder.names() == ["tidy"], what="the due run")
    assert parses == [["parse"]]
    # Once parsed, a later tick asks for the run on new data.
    tick_until(scheduler, lambda: "customers" in recorder.names(), 300, what="the run on new data")
    assert parses == [["parse"]]
    assert [t for n, t in _triggers(project) if n == "customers"] == [
        "new data in bronze.raw_customers"
    ]


def _triggers(project: Project) -> list[tuple[str, str]]:
    return [(r.schedule, r.trigger) for r in all_runs(project)]


def test_a_run_stops_before_its_lease_runs_out_when_the_metadata_database_is_out_of_reach(
    tmp_path: Path, projects: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(
        tmp_path / "p",
        schedules=[{"name": "tidy", "what": "lake_maintain"}],
        schedule={"reflections": "manual", "lease_seconds": 60},
    )
    projects.append(project)
    clock, recorder = ManualClock(START), Recorder(hold=True)
    scheduler = Scheduler(project, clock=clock, runner=recorder)
    sched.request_run(project, "tidy", "test", clock)
    scheduler.tick()
    wait_for(lambda: recorder.names() == ["tidy"], what="the run")

    # Only the renewal fails, as it does when the database is out of reach (a real outage would
    # stop this test's own bookkeeping too); the rest of each tick reads the database as usual.
    def unreachable(*args: Any) -> bool:
        raise OperationalError(
            "UPDATE schedule_leases", {}, Exception("server closed the connection")
        )

    monkeypatch.setattr(leases, "renew", unreachable)
    clock.advance(seconds=25)
    scheduler.tick()  # 35 s of lease left, more than a heartbeat: the run goes on
    assert scheduler.running == 1
    clock.advance(seconds=20)
    scheduler.tick()  # 15 s left: the next heartbeat would come too late
    wait_for(lambda: scheduler.running == 0, what="the run to stop")
    [run] = all_runs(project)
    assert run.status == "cancelled" and clock.now() - run.started_at < timedelta(seconds=60)
