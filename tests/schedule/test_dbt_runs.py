"""A sync and the dbt run scheduled after it, for real: the model's table is in the lake."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from fleuve.metadata import Job
from fleuve.metadata.schedule import ScheduleRun
from fleuve.schedule.clock import ManualClock
from fleuve.schedule.scheduler import Scheduler
from tests.schedule.conftest import START, make_project, wait_for

CUSTOMERS = [
    (1, "Léa Dubois", "Léa", "Dubois", "fr", "FR", "Lyon"),
    (2, "محمد العلوي", "محمد", "العلوي", "ar", "MA", "فاس"),
    (3, "王 伟", "伟", "王", "zh", "CN", "上海"),
    (4, "中村 さくら", "さくら", "中村", "ja", "JP", "神戸"),
]


def shop_database(path: Path) -> Path:
    """A SQLite shop whose customers table has the columns the dbt project's staging reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.execute(
            "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, full_name TEXT, "
            "first_name TEXT, last_name TEXT, email TEXT, phone TEXT, address TEXT, city TEXT, "
            "region TEXT, postal_code TEXT, country_code TEXT, locale TEXT, created_at TEXT, "
            "updated_at TEXT)"
        )
        con.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, '+33 600000000', '1 rue de la Paix', ?, "
            "?, '69001', ?, ?, '2026-01-01 10:00:00', '2026-02-01 10:00:00')",
            [
                (i, full, first, last, f"client{i}@example.org", city, city, country, locale)
                for i, full, first, last, locale, country, city in CUSTOMERS
            ],
        )
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_dbt_run_after_a_sync_builds_its_model_in_the_lake(
    tmp_path: Path, projects: list
) -> None:
    source = shop_database(tmp_path / "src" / "shop.sqlite")
    connection = {
        "name": "shop",
        "source": {"type": "sqlite", "path": str(source)},
        "streams": [{"name": "raw_customers", "table": "customers"}],
        "schedule": "hourly",
    }
    staging = {
        "name": "customers_model",
        "what": "dbt",
        "select": ["stg_customers"],
        "command": "run",
        "after": ["shop"],
    }
    project = make_project(
        tmp_path / "p", [connection], [staging], schedule={"reflections": "manual"}
    )
    projects.append(project)
    clock = ManualClock(START)
    scheduler = Scheduler(project, clock=clock)
    clock.set(START.replace(minute=0, second=0).replace(hour=START.hour + 1))
    scheduler.tick()  # the hourly sync
    wait_for(lambda: scheduler.running == 0, 120, "the sync")
    scheduler.tick()  # the dbt run it asked for
    wait_for(lambda: scheduler.running == 0, 300, "the dbt run")

    with project.db.session() as s:
        sync, run = s.scalars(select(ScheduleRun).order_by(ScheduleRun.id)).all()
        job = s.get(Job, run.job_id)
        assert (sync.schedule, sync.status) == ("shop", "succeeded")
        log = Path(run.log_path).read_text(encoding="utf-8")
        assert (run.schedule, run.trigger, run.status) == (
            "customers_model",
            "after shop",
            "succeeded",
        ), log
        assert (job.config_type, job.config_id, job.status) == (
            "dbt",
            "customers_model",
            "succeeded",
        )
        assert job.detail["log"] == run.log_path
    assert "stg_customers" in log
    built = project.lake.query(
        "SELECT customer_id, customer_name, city FROM silver.stg_customers ORDER BY customer_id"
    ).to_pylist()
    assert [(r["customer_id"], r["city"]) for r in built] == [
        (i, city) for i, *_, city in CUSTOMERS
    ]
    assert built[0]["customer_name"] == "LÉA DUBOIS"
