"""Projects with schedules: files connections, `schedules:` entries, a clock tests move."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from fleuve.project import Project, init_project
from fleuve.schedule.work import RunOutcome, Scheduled
from tests.conftest import PG_ADMIN

START = datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC)


def sqlite_connection(folder: Path, name: str, schedule: str | None = None) -> dict[str, Any]:
    """A connection reading a three-row SQLite table (made here) into bronze."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE IF NOT EXISTS towns (id INTEGER PRIMARY KEY, ville TEXT)")
        con.execute(
            "INSERT OR REPLACE INTO towns VALUES (1, 'Orléans'), (2, '東京'), (3, 'الرباط')"
        )
    conn: dict[str, Any] = {
        "name": name,
        "source": {"type": "sqlite", "path": str(path)},
        "streams": [{"name": f"{name}_towns", "table": "towns"}],
    }
    if schedule:
        conn["schedule"] = schedule
    return conn


def make_project(
    folder: Path,
    connections: list[dict[str, Any]] | None = None,
    schedules: list[dict[str, Any]] | None = None,
    schedule: dict[str, Any] | None = None,
    **more: Any,
) -> Project:
    """Initialize a project in `folder` with these settings in its fleuve.yml."""
    init_project(folder, "sched", more.pop("overrides", None))
    config = folder / "fleuve.yml"
    raw = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    raw["connections"] = connections or []
    raw["schedules"] = schedules or []
    if schedule:
        raw["schedule"] = schedule
    raw.update(more)
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return Project.open(folder)


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the metadata, dropped afterwards."""
    name = f"fleuve_sched_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def on_postgresql(pg_schema: str, pg_database: str) -> dict[str, Any]:
    """`make_project` keywords for a lake catalog and a metadata database on PostgreSQL."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_database}"
    return {
        "overrides": {
            "lake.catalog": PG_ADMIN,
            "lake.catalog_schema": pg_schema,
            "metadata.url": url,
        },
        "lake": {"catalog": PG_ADMIN, "catalog_schema": pg_schema},
        "metadata": {"url": url},
    }


@pytest.fixture
def projects() -> Iterator[list[Project]]:
    """Projects a test opens, closed afterwards."""
    opened: list[Project] = []
    yield opened
    for p in opened:
        p.close()


class Recorder:
    """A runner standing in for the work itself, where a test is about the scheduling only:
    it records which runs started and can hold them until released."""

    def __init__(self, hold: bool = False) -> None:
        self.started: list[tuple[str, int]] = []
        self.hold = threading.Event()
        if not hold:
            self.hold.set()
        self.fail: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, item: Scheduled, run_id: int, stop: threading.Event) -> RunOutcome:
        with self._lock:
            self.started.append((item.name, run_id))
        while not self.hold.wait(0.02):
            if stop.is_set():
                return RunOutcome("cancelled", "stopped")
        return (
            RunOutcome("failed", "asked to fail")
            if item.name in self.fail
            else RunOutcome("succeeded")
        )

    def names(self) -> list[str]:
        with self._lock:
            return [n for n, _ in self.started]


def wait_for(check: Callable[[], bool], seconds: float = 30, what: str = "condition") -> None:
    """Poll `check` until it holds, failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def tick_until(
    scheduler: Any, check: Callable[[], bool], seconds: float = 120, what: str = ""
) -> None:
    """Tick `scheduler` until `check` holds: a run on new data starts at the first tick after
    the dbt project is parsed, which happens beside the loop."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        scheduler.tick()
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what or 'condition'}")
