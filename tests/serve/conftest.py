"""A served project: REST and Flight on free ports, an admin, an analyst, and a few tables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.flight as flight
import pytest

from fleuve.metadata import AuditEvent
from fleuve.project import Project, init_project
from fleuve.security import auth
from fleuve.serve.server import FleuveServer

ADMIN_PASSWORD = "admin-pass-1234"
ANALYST_PASSWORD = "analyst-pass-5678"
ORDERS_ROWS = 300_000
VISITS = 250
# Written into fleuve.yml in place of the template's `connections: []`.
CONNECTION = """
  - name: site_drops
    source: {type: files, path: drops, format: csv}
    streams:
      - {name: raw_visits, path: "*.csv"}
"""


@dataclass
class Served:
    """A running server and what the tests need to talk to it."""

    project: Project
    server: FleuveServer

    @property
    def http(self) -> str:
        return self.server.addresses.http

    @property
    def flight_url(self) -> str:
        return self.server.addresses.flight

    def login(self, user: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        """A REST session token."""
        resp = httpx.post(f"{self.http}/apiv2/login", json={"userName": user, "password": password})
        resp.raise_for_status()
        return resp.json()["token"]

    def flight_client(self) -> tuple[flight.FlightClient, flight.FlightCallOptions]:
        """An authenticated Flight client, as the seed's snippet makes it."""
        client = flight.FlightClient(self.flight_url)
        pair = client.authenticate_basic_token("admin", ADMIN_PASSWORD)
        return client, flight.FlightCallOptions(headers=[pair])

    def audit_events(self, kind: str, *, wait_for: int = 1, **where: str) -> list[AuditEvent]:
        """Audit events of `kind` (waiting briefly: queries are audited in the background)."""
        from sqlalchemy import select

        deadline = time.monotonic() + 10
        while True:
            with self.project.db.session() as s:
                q = select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
                for column, value in where.items():
                    q = q.where(getattr(AuditEvent, column) == value)
                found = list(s.scalars(q))
            if len(found) >= wait_for or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def make_project(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project with an admin, an analyst (no grants) and tables in bronze and gold."""
    monkeypatch.setenv("FLEUVE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    init_project(folder, "serve-test")
    drops = folder / "drops"
    drops.mkdir()
    (drops / "visits.csv").write_text(
        "visit_id,page\n" + "".join(f"{i},/p/{i % 5}\n" for i in range(VISITS)), encoding="utf-8"
    )
    config = folder / "fleuve.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("connections: []", "connections:" + CONNECTION),
        encoding="utf-8",
    )
    project = Project.open(folder)
    auth.create_user(project.db, "analyst", ANALYST_PASSWORD, ["analyst"])
    project.lake.commit(
        lambda c: c.execute(
            f"""
            CREATE TABLE gold.fct_daily_revenue AS
              SELECT DATE '2026-01-01' + (i % 365)::INT AS order_date,
                     (i % 7)::BIGINT AS store_id,
                     (i * 1.25)::DOUBLE AS amount,
                     ['Café', 'مرحبا', '北京', '東京'][(i % 4) + 1] AS city
              FROM range({ORDERS_ROWS}) t(i);
            CREATE TABLE bronze.shop_customers AS
              SELECT i AS customer_id, 'client ' || i AS name FROM range(1000) t(i);
            """
        ),
        what="serve test data",
    )
    return project


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A project served on free loopback ports for the whole test module."""
    with pytest.MonkeyPatch.context() as mp:
        project = make_project(tmp_path_factory.mktemp("served") / "proj", mp)
    server = FleuveServer(project, host="127.0.0.1", http_port=0, flight_port=0)
    server.start()
    try:
        yield Served(project, server)
    finally:
        server.stop()
        project.close()
