"""A view's grantee reads through it without learning what it reads: the view's definition
(which names its base table and its filter) and the base table itself stay hidden from them on
every interface that describes datasets, as EXPLAIN already hides them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.serve.conftest import ADMIN_PASSWORD, ANALYST_PASSWORD, Served

BASE = "shop_customers"  # bronze.shop_customers: the analyst has no grant on it
FILTER = "customer_id < 10"
VIEW_SQL = f"SELECT customer_id FROM bronze.{BASE} WHERE {FILTER}"


def _client(served: Served, user: str, password: str) -> httpx.Client:
    token = served.login(user, password)
    return httpx.Client(base_url=served.http, headers={"Authorization": f"Bearer {token}"})


def _sql(api: httpx.Client, sql: str) -> list[dict[str, Any]]:
    job = api.post("/api/v3/sql", json={"sql": sql}).json()
    deadline = time.monotonic() + 30
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = api.get(f"/api/v3/job/{job['id']}").json()
        if state["jobState"] in ("COMPLETED", "FAILED", "CANCELED"):
            break
        time.sleep(0.05)
    assert state["jobState"] == "COMPLETED", state
    return api.get(f"/api/v3/job/{job['id']}/results", params={"limit": 500}).json()["rows"]


@pytest.fixture(scope="module")
def view(served: Served) -> Iterator[str]:
    """Secrets.v filters bronze.shop_customers; the analyst may read the view only."""
    admin = _client(served, "admin", ADMIN_PASSWORD)
    for sql in (
        "CREATE SPACE Secrets",
        f"CREATE VIEW Secrets.v AS {VIEW_SQL}",
        "GRANT SELECT ON Secrets.v TO USER analyst",
    ):
        _sql(admin, sql)
    yield "Secrets.v"


def _information_schema(api: httpx.Client) -> str:
    rows = _sql(api, "SELECT * FROM INFORMATION_SCHEMA.VIEWS WHERE TABLE_NAME = 'v'")
    assert len(rows) == 1  # the view itself is listed
    return str(rows[0])


def _catalog_by_path(api: httpx.Client) -> str:
    body = api.get("/api/v3/catalog/by-path/Secrets/v").json()
    assert body["type"] == "VIRTUAL_DATASET"
    return str(body)


def _catalog_by_id(api: httpx.Client) -> str:
    found = api.get("/api/v3/catalog/by-path/Secrets/v").json()
    body = api.get(f"/api/v3/catalog/{found['id']}").json()
    assert body["id"] == found["id"]
    return str(body)


def _space_listing(api: httpx.Client) -> str:
    space = next(c for c in api.get("/api/v3/catalog").json()["data"] if c["path"] == ["Secrets"])
    return str(api.get(f"/api/v3/catalog/{space['id']}").json())


def _explain(api: httpx.Client) -> str:
    return str(_sql(api, "EXPLAIN SELECT * FROM Secrets.v"))


# The first lineage request parses the dbt project: give it time.
LINEAGE_TIMEOUT = 180
# The web UI reads it without the column-level edges.
LINEAGES = ("/api/fleuve/v1/lineage", "/api/fleuve/v1/lineage?columns=false")


SINKS: dict[str, Callable[[httpx.Client], str]] = {
    "INFORMATION_SCHEMA.VIEWS": _information_schema,
    "GET /api/v3/catalog/by-path": _catalog_by_path,
    "GET /api/v3/catalog/{id}": _catalog_by_id,
    "the space's listing": _space_listing,
    "EXPLAIN": _explain,
}
# What shows the view's definition to those who may see it.
DEFINES = {"INFORMATION_SCHEMA.VIEWS", "GET /api/v3/catalog/by-path", "GET /api/v3/catalog/{id}"}


@pytest.mark.parametrize("sink", sorted(SINKS))
def test_the_grantee_of_a_view_does_not_see_what_it_reads(
    served: Served, view: str, sink: str
) -> None:
    analyst = _client(served, "analyst", ANALYST_PASSWORD)
    assert _sql(analyst, f"SELECT count(*) AS n FROM {view}") == [{"n": 10}]
    text = SINKS[sink](analyst)
    assert BASE not in text and FILTER not in text, text[:500]


@pytest.mark.parametrize("sink", sorted(DEFINES))
def test_an_administrator_sees_the_definition(served: Served, view: str, sink: str) -> None:
    text = SINKS[sink](_client(served, "admin", ADMIN_PASSWORD))
    assert BASE in text and FILTER in text


def test_a_reader_of_every_input_sees_the_definition(served: Served, view: str) -> None:
    admin = _client(served, "admin", ADMIN_PASSWORD)
    _sql(admin, f"GRANT SELECT ON bronze.{BASE} TO USER analyst")
    try:
        analyst = _client(served, "analyst", ANALYST_PASSWORD)
        for sink in sorted(DEFINES):
            assert FILTER in SINKS[sink](analyst), sink
    finally:
        _sql(admin, f"REVOKE SELECT ON bronze.{BASE} FROM USER analyst")


@pytest.mark.parametrize("endpoint", LINEAGES)
def test_the_lineage_shows_only_the_tables_one_may_read(served: Served, endpoint: str) -> None:
    """The analyst may read no lake table (a view only): no table of the lake in their graph,
    nor an edge naming one; the administrator sees them all."""

    def tables(user: str, password: str) -> tuple[set[str], list[dict[str, Any]]]:
        body = _client(served, user, password).get(endpoint, timeout=LINEAGE_TIMEOUT).json()
        return {n["id"] for n in body["nodes"] if n["relation"]}, body["edges"]

    everything, _ = tables("admin", ADMIN_PASSWORD)
    assert everything  # the project's dbt sources and models
    seen, edges = tables("analyst", ANALYST_PASSWORD)
    assert seen == set()
    assert not [e for e in edges if {e["from"], e["to"]} & everything]
