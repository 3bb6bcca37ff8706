"""Three `fleuve worker` processes sharing a PostgreSQL-backed project: 50 connections synced
every minute for five minutes of a simulated clock — each due run started once, none lost, no
connection synced twice at once."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fleuve.metadata import Job
from fleuve.metadata.schedule import ScheduleRun, ScheduleState
from fleuve.schedule.clock import CLOCK_FILE_ENV, FileClock
from tests.conftest import PG_ADMIN
from tests.schedule.conftest import START, make_project, sqlite_connection, wait_for

CONNECTIONS = int(os.environ.get("FLEUVE_TEST_CONNECTIONS", 50))
MINUTES = int(os.environ.get("FLEUVE_TEST_MINUTES", 5))
WORKERS = 3


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 250 syncs into a PostgreSQL-catalogued lake
def test_three_workers_start_each_due_run_exactly_once(
    tmp_path: Path, pg_schema: str, pg_database: str, projects: list
) -> None:
    settings = {
        "lake.catalog": PG_ADMIN,
        "lake.catalog_schema": pg_schema,
        "metadata.url": f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_database}",
    }
    names = [f"src{i:02d}" for i in range(CONNECTIONS)]
    project = make_project(
        tmp_path / "p",
        [sqlite_connection(tmp_path / "src", n, "every_1_minutes") for n in names],
        schedule={"reflections": "manual", "max_parallel": 1, "lease_seconds": 600},
        overrides=settings,
        lake={"catalog": PG_ADMIN, "catalog_schema": pg_schema},
        metadata={"url": settings["metadata.url"]},
    )
    projects.append(project)
    assert project.db.engine.dialect.name == "postgresql"
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    env = {**os.environ, CLOCK_FILE_ENV: str(clock.path)}
    logs = [open(tmp_path / f"worker{i}.log", "wb") for i in range(WORKERS)]  # noqa: SIM115
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "fleuve", "--project", str(tmp_path / "p"), "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:

        def count(*where: object) -> int:
            with project.db.session() as s:
                return s.scalar(select(func.count()).select_from(ScheduleRun).where(*where))

        def states() -> int:
            with project.db.session() as s:
                return s.scalar(select(func.count()).select_from(ScheduleState))

        wait_for(lambda: states() == CONNECTIONS + 1, 120, "the workers to start")
        for minute in range(1, MINUTES + 1):
            due = START.replace(second=0) + timedelta(minutes=minute)
            clock.set(due)
            wait_for(
                lambda due=due: (
                    count(ScheduleRun.due_at == due) >= CONNECTIONS
                    and count(ScheduleRun.status == "running") == 0
                ),
                300,
                f"minute {minute}'s runs",
            )
            assert all(w.poll() is None for w in workers), "a worker stopped"
        with project.db.session() as s:
            runs = list(s.scalars(select(ScheduleRun)))
            jobs = list(s.scalars(select(Job).where(Job.config_type == "sync")))
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(60)
        for log in logs:
            log.close()

    # Each due run started exactly once, none lost, and the work was shared.
    starts = Counter((r.schedule, r.due_at) for r in runs)
    assert len(runs) == CONNECTIONS * MINUTES and set(starts.values()) == {1}
    assert {r.schedule for r in runs} == set(names)
    assert all(r.attempt == 1 and r.trigger == "schedule" for r in runs)
    failed = [(r.schedule, r.error) for r in runs if r.status != "succeeded"]
    assert not failed
    owners = Counter(r.owner for r in runs)
    assert len(owners) == WORKERS, owners
    # One sync job per run, and no connection synced twice at once (job times are wall time).
    assert len(jobs) == len(runs)
    for name in names:
        mine = sorted((j for j in jobs if j.config_id == name), key=lambda j: j.created_at)
        for a, b in itertools.pairwise(mine):
            assert a.updated_at <= b.created_at, f"{name}: jobs {a.id} and {b.id} overlap"
    for w in workers:
        assert w.returncode == 0  # SIGTERM: stopped cleanly
