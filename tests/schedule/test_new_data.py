"""Schedules run on new data: a sync landing rows in bronze starts what reads them, only that."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from fleuve.cli import cli
from fleuve.errors import ConfigError
from fleuve.ingest import sync_connection
from fleuve.metadata.schedule import ScheduleRun
from fleuve.project import Project
from fleuve.schedule import scheduler as sched
from fleuve.schedule.clock import ManualClock
from fleuve.schedule.inputs import read_tables
from fleuve.schedule.scheduler import Scheduler
from fleuve.schedule.work import definitions
from fleuve.transform.lineage import _load_manifest
from tests.schedule.conftest import (
    START,
    Recorder,
    make_project,
    sqlite_connection,
    tick_until,
    wait_for,
)


def shop(folder: Path) -> dict:
    """A connection landing the scaffolded dbt project's bronze.raw_customers."""
    conn = sqlite_connection(folder, "shop")
    conn["streams"] = [{"name": "raw_customers", "table": "towns"}]
    return conn


WATCHERS = [
    # Reads bronze.raw_customers.
    {"name": "customers", "what": "dbt", "select": ["stg_customers"], "on_new_data": True},
    # Reads bronze.raw_orders only.
    {"name": "orders", "what": "dbt", "select": ["stg_orders"], "on_new_data": True},
    # Reads silver models, which no sync writes.
    {"name": "marts", "what": "pipeline", "select": ["marts"], "on_new_data": True},
]


def runs(project: Project) -> list[tuple[str, str]]:
    with project.db.session() as s:
        return [(r.schedule, r.trigger) for r in s.scalars(select(ScheduleRun))]


@pytest.fixture
def project(tmp_path: Path, projects: list) -> Project:
    p = make_project(
        tmp_path / "p", [shop(tmp_path / "src")], WATCHERS, schedule={"reflections": "manual"}
    )
    projects.append(p)
    return p


def test_a_sync_starts_only_the_schedules_reading_its_tables(project: Project) -> None:
    clock = ManualClock(START)
    # The work itself is a stand-in: this test is about what starts; the runs of dbt and the
    # pipeline are tested with real dbt elsewhere.
    recorder = Recorder()
    scheduler = Scheduler(project, clock=clock, runner=recorder)
    scheduler.tick()  # the first look only notes where the lake is
    clock.advance(minutes=5)
    scheduler.tick()
    assert runs(project) == []  # no new data: nothing runs

    result = sync_connection(project.settings, project.lake, project.db, "shop")
    assert result.status == "succeeded"
    clock.advance(minutes=5)
    tick_until(scheduler, recorder.names, what="the run on new data")
    wait_for(lambda: scheduler.running == 0, what="the run on new data to end")
    assert runs(project) == [("customers", "new data in bronze.raw_customers")]

    # Nothing new since: nothing more runs, however often the scheduler looks.
    for _ in range(3):
        clock.advance(minutes=5)
        scheduler.tick()
    assert recorder.names() == ["customers"]
    [entry] = [e for e in sched.describe(project, clock) if e["name"] == "customers"]
    assert entry["onNewData"] is True and entry["lastRun"]["status"] == "succeeded"
    listed = CliRunner().invoke(
        cli,
        ["--project", str(project.settings.project_dir), "schedules", "list"],
        env={"COLUMNS": "200"},  # one line per schedule
    )
    assert listed.exit_code == 0 and "on new data" in listed.output


def test_a_snapshot_of_other_tables_and_a_paused_schedule_start_nothing(project: Project) -> None:
    _load_manifest(project.settings)  # parsed first: every tick below reads the selections' tables
    clock = ManualClock(START)
    recorder = Recorder()
    scheduler = Scheduler(project, clock=clock, runner=recorder)
    scheduler.tick()
    project.lake.commit(
        lambda c: c.execute("CREATE TABLE bronze.unrelated AS SELECT 1 AS id"), creates=True
    )
    clock.advance(minutes=1)
    scheduler.tick()
    assert runs(project) == []

    sched.pause(project, "customers", "admin", clock)
    sync_connection(project.settings, project.lake, project.db, "shop")
    clock.advance(minutes=1)
    scheduler.tick()
    sched.resume(project, "customers", "admin", clock)
    clock.advance(minutes=1)
    scheduler.tick()
    # Data landed while paused is not run on resume, as missed scheduled runs are not.
    assert runs(project) == [] and scheduler.running == 0


def test_the_tables_a_selection_reads(project: Project) -> None:
    manifest = _load_manifest(project.settings)
    assert read_tables(manifest, ("stg_customers",), "t") == {("bronze", "raw_customers")}
    staging = read_tables(manifest, ("staging",), "t")
    assert staging and all(schema == "bronze" for schema, _ in staging)
    # A selection with its ancestors reads only what its earliest models read.
    assert read_tables(manifest, ("+fct_orders",), "t") <= staging
    with pytest.raises(ConfigError, match="names no dbt model"):
        read_tables(manifest, ("no_such_model",), "t")
    with pytest.raises(ConfigError, match="cannot tell which tables"):
        read_tables(manifest, ("source_status:fresher",), "t")


def test_a_pipeline_that_ingests_cannot_run_on_new_data(tmp_path: Path) -> None:
    entry = {"name": "all", "what": "pipeline", "on_new_data": True}
    project = make_project(tmp_path / "p", [], [entry])
    try:
        with pytest.raises(ConfigError, match="ingests the sources itself"):
            definitions(project.settings)
    finally:
        project.close()


def test_the_look_is_due_again_after_a_run_started_by_new_data(project: Project) -> None:
    """Rows landed while a run on new data runs start one more run after it."""
    clock = ManualClock(START)
    recorder = Recorder(hold=True)
    scheduler = Scheduler(project, clock=clock, runner=recorder)
    scheduler.tick()
    sync_connection(project.settings, project.lake, project.db, "shop")
    tick_until(scheduler, lambda: recorder.names() == ["customers"], what="the first run")
    sync_connection(project.settings, project.lake, project.db, "shop")
    clock.advance(seconds=1)
    scheduler.tick()
    recorder.hold.set()
    wait_for(lambda: scheduler.running == 0, what="the first run to end")
    clock.advance(minutes=1)
    scheduler.tick()
    wait_for(lambda: recorder.names() == ["customers", "customers"], what="the second run")
    assert clock.now() - START < timedelta(minutes=5)
