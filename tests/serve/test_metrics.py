"""/metrics: the seed's Prometheus names with the values of real syncs, queries and dbt runs,
behind a MONITOR token or the configured allow-list."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleuve.project import Project
from fleuve.security import auth
from fleuve.serve.server import FleuveServer
from fleuve.transform.history import record_plain_run
from tests.serve.conftest import ANALYST_PASSWORD, VISITS, Served, make_project

SEED_NAMES = (
    "airbyte_records_synced_total",
    "airbyte_sync_duration_seconds",
    "airbyte_sync_failures_total",
    "minio_disk_usage_bytes",
    "minio_objects_total",
    "postgres_connections_active",
    "dremio_query_duration_seconds",
    "dremio_reflection_refresh_seconds",
    "dbt_model_execution_time",
    "superset_dashboard_load_time",
    "superset_query_cache_hit_rate",
    "api_requests_per_second",
)
BROKEN = """
  - name: broken_drops
    source: {type: files, path: no_such_folder, format: csv}
    streams:
      - {name: raw_nothing, path: "*.csv"}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A served project with a working and a broken connection, metrics open to no address."""
    folder = tmp_path_factory.mktemp("metrics") / "proj"
    with pytest.MonkeyPatch.context() as mp:
        make_project(folder, mp).close()
    config = folder / "fleuve.yml"
    # No log records written into the lake: each write is a new lake snapshot, which the
    # dashboards' result cache keys on.
    config.write_text(
        config.read_text(encoding="utf-8").replace("connections:", "connections:" + BROKEN, 1)
        + "\nobserve:\n  logs:\n    lake: false\n",
        encoding="utf-8",
    )
    project = Project.open(folder)
    server = FleuveServer(project, host="127.0.0.1", http_port=0, flight_port=0)
    server.start()
    try:
        yield Served(project, server)
    finally:
        server.stop()
        project.close()


@pytest.fixture(scope="module")
def api(served: Served) -> httpx.Client:
    return httpx.Client(
        base_url=served.http, headers={"Authorization": f"Bearer {served.login()}"}, timeout=60
    )


def scrape(client: httpx.Client) -> dict[str, dict[tuple, float]]:
    """Every sample of /metrics: {sample name: {sorted label pairs: value}}."""
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def sync(api: httpx.Client, connection: str) -> dict[str, Any]:
    """Run a sync through the seed's ingestion API and wait for its end."""
    info = api.post("/api/v1/connections/sync", json={"connectionId": connection}).json()
    deadline = time.monotonic() + 60
    while info["job"]["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        info = api.post("/api/v1/jobs/get", json={"id": info["job"]["id"]}).json()
    return info


def query(api: httpx.Client, sql: str) -> str:
    """Run SQL through the REST API v3 and wait for its final state."""
    job_id = api.post("/api/v3/sql", json={"sql": sql}).json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = api.get(f"/api/v3/job/{job_id}").json()["jobState"]
        if state in ("COMPLETED", "FAILED", "CANCELED"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_metrics_count_what_was_done(served: Served, api: httpx.Client, tmp_path: Path) -> None:
    # Every name is declared before anything happened (dashboards and alerts find them).
    declared = api.get("/metrics").text
    for name in SEED_NAMES:
        assert f"# TYPE {name} " in declared, name
    assert sync(api, "site_drops")["job"]["status"] == "succeeded"
    assert sync(api, "site_drops")["job"]["status"] == "succeeded"
    assert sync(api, "broken_drops")["job"]["status"] in ("failed", "incomplete")
    assert query(api, "SELECT count(*) FROM gold.fct_daily_revenue") == "COMPLETED"
    assert query(api, "SELECT 1") == "COMPLETED"
    assert query(api, "SELECT * FROM no_such_table") == "FAILED"
    # A plain dbt run, recorded from its run_results.json as `fleuve transform history` does.
    target = tmp_path / "target"
    target.mkdir()
    (target / "run_results.json").write_text(json.dumps(RUN_RESULTS), encoding="utf-8")
    assert record_plain_run(served.project.db, tmp_path)

    m = scrape(api)
    conn = (("connection", "site_drops"),)
    assert m["airbyte_records_synced_total"][conn] == 2 * VISITS
    assert m["airbyte_sync_failures_total"][(("connection", "broken_drops"),)] == 1
    assert m["airbyte_sync_failures_total"][conn] == 0
    done = (("connection", "site_drops"), ("status", "succeeded"))
    assert m["airbyte_sync_duration_seconds_count"][done] == 2
    assert m["airbyte_sync_duration_seconds_sum"][done] > 0
    assert m["fleuve_jobs_total"][(("kind", "sync"), ("status", "succeeded"))] == 2

    completed = (("query_type", "REST"), ("state", "COMPLETED"))
    failed = (("query_type", "REST"), ("state", "FAILED"))
    assert m["dremio_query_duration_seconds_count"][completed] == 2
    assert m["dremio_query_duration_seconds_count"][failed] == 1
    assert m["dremio_query_duration_seconds_bucket"][(("le", "+Inf"), *completed)] == 2
    assert m["fleuve_query_jobs_total"][completed] == 2

    model = (("model", "stg_orders"), ("status", "success"))
    assert m["dbt_model_execution_time_count"][model] == 1
    assert m["dbt_model_execution_time_sum"][model] == pytest.approx(1.5)
    assert (("model", "not_null_stg_orders_id"), ("status", "pass")) not in m[
        "dbt_model_execution_time_count"
    ]

    # The lake holds bronze (the synced visits) and gold (the served tables).
    assert m["minio_disk_usage_bytes"][(("layer", "bronze"),)] > 0
    assert m["minio_objects_total"][(("layer", "gold"),)] >= 1
    assert m["fleuve_lake_snapshot_id"][()] >= m["fleuve_lake_snapshots"][()] - 1 > 0
    assert m["postgres_connections_active"][(("database", "metadata"),)] >= 0

    # This process's requests, by route template (not by the job's id).
    job_route = (("method", "GET"), ("route", "/api/v3/job/{job_id}"), ("status", "200"))
    assert m["fleuve_http_requests_total"][job_route] >= 3
    assert m["api_requests_per_second"][()] > 0
    assert m["fleuve_queue_depth"][(("kind", "query"),)] == 0


def test_reflection_refresh_and_dashboard_loads(served: Served, api: httpx.Client) -> None:
    created = api.post(
        "/api/v3/sql",
        json={
            "sql": "CREATE REFLECTION revenue_by_store ON gold.fct_daily_revenue "
            "USING DIMENSIONS (store_id) MEASURES (SUM(amount), COUNT(*))"
        },
    ).json()["id"]
    name = (("reflection", "revenue_by_store"),)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = scrape(api)
        refreshed = m.get("dremio_reflection_refresh_seconds_count", {})
        fresh = m.get("fleuve_reflection_freshness_seconds", {})
        if refreshed.get((*name, ("status", "succeeded"))) and name in fresh:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"reflection of job {created} never refreshed")
    assert 0 <= m["fleuve_reflection_freshness_seconds"][name] < 60

    dashboard = {"slug": "sales", "title": "Sales"}
    assert api.post("/api/fleuve/v1/ui/dashboards", json=dashboard).status_code == 200
    chart = {
        "name": "by_store",
        "title": "By store",
        "type": "bar",
        "dataset": "gold.fct_daily_revenue",
        "x": "store_id",
        "measures": [{"column": "amount", "agg": "sum"}],
    }
    added = api.post("/api/fleuve/v1/ui/dashboards/sales/charts", json={"chart": chart})
    assert added.status_code == 200, added.text
    before = scrape(api)
    for _ in range(3):
        loaded = api.post("/api/fleuve/v1/ui/dashboards/sales/data", json={"filters": {}})
        assert loaded.status_code == 200 and "errorMessage" not in loaded.text, loaded.text
    m = scrape(api)
    loads = (("dashboard", "sales"),)
    earlier_loads = before.get("superset_dashboard_load_time_count", {}).get(loads, 0)
    assert m["superset_dashboard_load_time_count"][loads] - earlier_loads == 3
    # The first load ran the chart's query, the next two were answered from the cache.
    lookups = m["fleuve_chart_cache_lookups_total"]
    hit, miss = (("result", "hit"),), (("result", "miss"),)
    earlier = before.get("fleuve_chart_cache_lookups_total", {})
    assert lookups[hit] - earlier.get(hit, 0) == 2
    assert lookups[miss] - earlier.get(miss, 0) == 1
    assert m["superset_query_cache_hit_rate"][()] == pytest.approx(
        lookups[hit] / (lookups[hit] + lookups[miss])
    )


def test_flight_calls_are_counted(served: Served, api: httpx.Client) -> None:
    import pyarrow.flight as flight

    client, options = served.flight_client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 42 AS x"), options)
    assert client.do_get(info.endpoints[0].ticket, options).read_all().num_rows == 1
    with pytest.raises(flight.FlightUnauthenticatedError):
        flight.FlightClient(served.flight_url).get_flight_info(
            flight.FlightDescriptor.for_command(b"SELECT 1")
        )
    m = scrape(api)
    calls = m["fleuve_flight_requests_total"]
    assert calls[(("method", "do_get"), ("status", "ok"))] >= 1
    assert (
        calls.get((("method", "get_flight_info"), ("status", "FlightUnauthenticatedError")), 0) >= 1
    ), calls
    flight_queries = (("query_type", "FLIGHT"), ("state", "COMPLETED"))
    assert m["dremio_query_duration_seconds_count"][flight_queries] >= 1


def test_metrics_need_monitor_or_an_allowed_address(served: Served) -> None:
    anonymous = httpx.get(f"{served.http}/metrics")
    assert anonymous.status_code == 401
    analyst = httpx.get(
        f"{served.http}/metrics",
        headers={"Authorization": f"Bearer {served.login('analyst', ANALYST_PASSWORD)}"},
    )
    assert analyst.status_code == 403 and "MONITOR" in analyst.json()["errorMessage"]
    # A personal access token of an operator (the engineer role includes MONITOR), as a
    # Prometheus scrape config's `authorization: {credentials: ...}` sends it.
    auth.create_user(served.project.db, "prometheus", "scraper-pass-1234", ["engineer"])
    token, _ = auth.create_personal_token(served.project.db, "prometheus", "scrape")
    scraped = httpx.get(f"{served.http}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200 and "airbyte_records_synced_total" in scraped.text

    allow = served.project.settings.observe.metrics
    allow.allow = ["10.0.0.0/8"]
    assert httpx.get(f"{served.http}/metrics").status_code == 401
    allow.allow = ["127.0.0.0/8"]
    try:
        opened = httpx.get(f"{served.http}/metrics")
        assert opened.status_code == 200 and "dremio_query_duration_seconds" in opened.text
        # The allow-list opens /metrics only.
        assert httpx.get(f"{served.http}/api/v3/catalog").status_code == 401
    finally:
        allow.allow = []


RUN_RESULTS = {
    "metadata": {
        "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
        "dbt_version": "1.11.0",
        "generated_at": "2026-12-07T10:00:05Z",
        "invocation_id": "3c1d6c1e-1f2a-4b7e-9d3e-aa0000000001",
        "invocation_started_at": "2026-12-07T10:00:00Z",
    },
    "results": [
        {
            "unique_id": "model.shop.stg_orders",
            "status": "success",
            "execution_time": 1.5,
            "timing": [],
            "relation_name": '"lake"."silver"."stg_orders"',
            "message": "OK",
            "failures": None,
        },
        {
            "unique_id": "test.shop.not_null_stg_orders_id.abc",
            "status": "pass",
            "execution_time": 0.2,
            "timing": [],
            "relation_name": None,
            "message": None,
            "failures": 0,
        },
    ],
    "elapsed_time": 2.0,
    "args": {"invocation_command": "dbt build"},
}
