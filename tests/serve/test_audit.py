"""The audit trail: every change of access, reflections and sources, and every query, recorded
once where it happens, with who did it and through which interface (cli, rest, ui, flight)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import pyarrow.flight as flight
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from fleuve.cli import cli
from fleuve.metadata import AuditEvent
from fleuve.security import auth
from fleuve.serve.ui.routes import _COLUMNS_SQL as COLUMNS_SQL
from tests.serve.conftest import ADMIN_PASSWORD, ANALYST_PASSWORD, Served
from tests.serve.test_rest import wait

DATASET = "bronze.shop_customers"


def _last_id(served: Served) -> int:
    with served.project.db.session() as s:
        return s.scalar(select(func.max(AuditEvent.id))) or 0


def _events_after(served: Served, after: int, *, settle: float = 0.6) -> list[AuditEvent]:
    """Events recorded after id `after`, once the background writer had time to write them."""
    deadline = time.monotonic() + 10
    found: list[AuditEvent] = []
    while time.monotonic() < deadline:
        with served.project.db.session() as s:
            now = list(s.scalars(select(AuditEvent).where(AuditEvent.id > after)))
        if now and len(now) == len(found):
            break  # nothing new since the last look: the writer is done
        found = now
        time.sleep(settle)
    # A login the test made to get a token is not what is being checked.
    return [e for e in found if e.kind != "login"]


def _one(served: Served, act: Callable[[], Any]) -> AuditEvent:
    """Run `act`; it must leave exactly one audit event (logins aside)."""
    before = _last_id(served)
    act()
    events = _events_after(served, before)
    assert len(events) == 1, [(e.kind, e.action, e.client, e.target) for e in events]
    return events[0]


def _cli(served: Served, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--project", str(served.project.settings.project_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _rest(served: Served, user: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
    token = served.login(user, password)
    return httpx.Client(base_url=served.http, headers={"Authorization": f"Bearer {token}"})


def _rest_sql(api: httpx.Client, sql: str) -> dict[str, Any]:
    return wait(api, api.post("/api/v3/sql", json={"sql": sql}).json()["id"])


def test_cli_grant_and_revoke_are_audited_once(served: Served) -> None:
    grant = _one(served, lambda: _cli(served, "grants", "add", "SELECT", DATASET, "--role", "r1"))
    assert (grant.kind, grant.action, grant.username, grant.client) == (
        "grant",
        "grant",
        "admin",
        "cli",
    )
    assert grant.target == DATASET
    assert grant.detail["grantee"] == "r1" and grant.detail["privilege"] == "SELECT"

    revoke = _one(
        served, lambda: _cli(served, "grants", "revoke", "SELECT", DATASET, "--role", "r1")
    )
    assert (revoke.kind, revoke.action, revoke.username, revoke.client) == (
        "grant",
        "revoke",
        "admin",
        "cli",
    )
    assert revoke.detail["removed"] == 1


@pytest.mark.parametrize("client", ["cli", "rest"])
def test_grant_statements_are_audited_as_grants_once(served: Served, client: str) -> None:
    """GRANT and REVOKE sent as SQL are recorded as grant changes, with their statement."""
    role = f"stmt_{client}"
    for action, sql in (
        ("grant", f"GRANT SELECT ON {DATASET} TO ROLE {role}"),
        ("revoke", f"REVOKE SELECT ON {DATASET} FROM ROLE {role}"),
    ):
        if client == "cli":
            event = _one(served, lambda s=sql: _cli(served, "sql", s))
        else:
            api = _rest(served)
            event = _one(served, lambda s=sql, a=api: _rest_sql(a, s))
        assert (event.kind, event.action, event.username, event.client) == (
            "grant",
            action,
            "admin",
            client,
        )
        assert event.detail["sql"] == sql and event.detail["job_id"]
        assert event.detail["grantee"] == role


def test_a_role_change_through_the_engine_is_audited_and_ends_cached_logins(
    served: Served,
) -> None:
    token = served.login("analyst", ANALYST_PASSWORD)
    db = served.project.db
    assert "auditors" not in auth.user_for_token(db, token).roles  # now remembered
    api = _rest(served)
    event = _one(served, lambda: _rest_sql(api, "GRANT ROLE auditors TO USER analyst"))
    assert (event.kind, event.action, event.username, event.client) == (
        "user",
        "roles",
        "admin",
        "rest",
    )
    assert event.target == "analyst" and "auditors" in event.detail["roles"]
    # The remembered login must not keep the roles it had before the change.
    assert "auditors" in auth.user_for_token(db, token).roles
    _one(served, lambda: _cli(served, "sql", "REVOKE ROLE auditors FROM USER analyst"))
    assert "auditors" not in auth.user_for_token(db, token).roles


def test_reflection_changes_through_sql_are_audited_once(served: Served) -> None:
    name = "audit_raw"
    steps = [
        ("create", f"CREATE REFLECTION {name} ON {DATASET} USING DISPLAY (customer_id, name)"),
        ("alter", f"ALTER REFLECTION {name} SET REFRESH EVERY 2 HOURS"),
        ("refresh", f"ALTER TABLE {DATASET} REFRESH REFLECTIONS"),
        ("refresh", f"ALTER REFLECTION {name} REFRESH"),
        ("drop", f"DROP REFLECTION {name}"),
    ]
    for action, sql in steps:
        if action == "drop":  # and the CLI's own command, before the statement drops it
            event = _one(served, lambda: _cli(served, "reflections", "refresh", name))
            assert (event.kind, event.action, event.client) == ("reflection", "refresh", "cli")
            assert "sql" not in event.detail
        event = _one(served, lambda s=sql: _cli(served, "sql", s))
        assert (event.kind, event.action, event.username, event.client) == (
            "reflection",
            action,
            "admin",
            "cli",
        )
        assert event.target == name and event.detail["sql"] == sql


def test_reflection_changes_through_rest_are_audited_once(served: Served) -> None:
    api = _rest(served)
    dataset = api.get("/api/v3/catalog/by-path/bronze/shop_customers").json()
    body = {
        "type": "RAW",
        "name": "audit_rest",
        "datasetId": dataset["id"],
        "enabled": True,
        "displayFields": [{"name": "customer_id"}],
    }
    created: dict[str, Any] = {}

    def create() -> None:
        created.update(api.post("/api/v3/reflection", json=body).json())

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("create", create),
        (
            "alter",
            lambda: api.put(f"/api/v3/reflection/{created['id']}", json={"enabled": False}),
        ),
        ("drop", lambda: api.delete(f"/api/v3/reflection/{created['id']}")),
    ]
    for action, act in steps:
        event = _one(served, act)
        assert (event.kind, event.action, event.username, event.client) == (
            "reflection",
            action,
            "admin",
            "rest",
        )
        assert event.target == "audit_rest" and event.detail["id"] == created["id"]


def _flight(served: Served, sql: str) -> str:
    client = flight.FlightClient(served.flight_url)
    options = flight.FlightCallOptions(
        headers=[client.authenticate_basic_token("admin", ADMIN_PASSWORD)]
    )
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    client.do_get(info.endpoints[0].ticket, options).read_all()
    return sql


def _flight_sql(served: Served, sql: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cannot disable autocommit": there are no transactions
        conn = flight_sql.connect(
            served.flight_url, db_kwargs={"username": "admin", "password": ADMIN_PASSWORD}
        )
    with conn, conn.cursor() as cur:
        cur.execute(sql)
        cur.fetchall()
    return sql


def _ui(served: Served, sql: str) -> str:
    """The web UI's own queries (here its SQL editor's completion list)."""
    assert _rest(served).get("/api/fleuve/v1/ui/completion").status_code == 200
    return COLUMNS_SQL


def _ui_sql_lab(served: Served, sql: str) -> str:
    """The web UI's SQL Lab runs queries through the REST API from its page."""
    api = _rest(served)
    api.headers["Referer"] = f"{served.http}/ui/sql"
    assert _rest_sql(api, sql)["jobState"] == "COMPLETED"
    return sql


def _cli_sql(served: Served, sql: str) -> str:
    _cli(served, "sql", sql)
    return sql


def _rest_query(served: Served, sql: str) -> str:
    assert _rest_sql(_rest(served), sql)["jobState"] == "COMPLETED"
    return sql


QUERIERS: dict[str, Callable[[Served, str], str]] = {
    "cli": _cli_sql,
    "rest": _rest_query,
    "ui": _ui,
    "ui sql lab": _ui_sql_lab,
    "flight": _flight,
    "flight-sql": _flight_sql,
}


@pytest.mark.parametrize("client", sorted(QUERIERS))
def test_a_query_through_each_interface_is_audited_once(served: Served, client: str) -> None:
    sql = f"SELECT count(*) AS n FROM {DATASET} -- through {client}"
    ran: list[str] = []
    event = _one(served, lambda: ran.append(QUERIERS[client](served, sql)))
    interface = client.split()[0]
    assert (event.kind, event.action, event.username, event.client, event.outcome) == (
        "query",
        interface,
        "admin",
        interface,
        "ok",
    )
    assert event.detail["sql"] == ran[0] and event.detail["job_id"]
    if ran[0] == sql:
        assert event.target == sql and event.detail["objects"] == [DATASET]
        assert event.detail["rows"] == 1


def _synced(api: httpx.Client, answer: httpx.Response) -> None:
    """Wait for the sync a route started to end, so that it does not overlap the next test."""
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["job"]["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.post("/api/v1/jobs/get", json={"id": job_id}).json()["job"]["status"]
        if status in ("succeeded", "failed", "cancelled"):
            return
        time.sleep(0.1)
    raise AssertionError(f"sync job {job_id} did not end")


@pytest.mark.parametrize("how", ["cli", "ingestion-api", "fleuve-api"])
def test_a_sync_is_audited_once_with_its_user_and_client(served: Served, how: str) -> None:
    """`fleuve sync`, the Airbyte-style route and Fleuve's own route each leave one event."""
    api = _rest(served)
    act: Callable[[], Any] = {
        "cli": lambda: _cli(served, "sync", "site_drops", "--user", "admin"),
        "ingestion-api": lambda: _synced(
            api, api.post("/api/v1/connections/sync", json={"connectionId": "site_drops"})
        ),
        "fleuve-api": lambda: _synced(api, api.post("/api/fleuve/v1/connections/site_drops/sync")),
    }[how]
    event = _one(served, act)
    assert (event.kind, event.action, event.username, event.target) == (
        "connection",
        "sync",
        "admin",
        "site_drops",
    )
    assert event.client == ("cli" if how == "cli" else "rest")
    assert isinstance(event.detail["job_id"], int) and event.detail["address"]
