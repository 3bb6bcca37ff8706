"""The REST API with httpx: login, the SQL job flow, pages, catalog, reflections, ingestion."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleuve.security import auth
from tests.serve.conftest import ANALYST_PASSWORD, ORDERS_ROWS, VISITS, Served


@pytest.fixture(scope="module")
def api(served: Served) -> httpx.Client:
    token = served.login()
    return httpx.Client(
        base_url=served.http, headers={"Authorization": f"_dremio{token}"}, timeout=30
    )


def wait(api: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = api.get(f"/api/v3/job/{job_id}").json()
        if state["jobState"] in ("COMPLETED", "FAILED", "CANCELED"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_login_answers_a_dremio_session(served: Served) -> None:
    resp = httpx.post(
        f"{served.http}/apiv2/login", json={"userName": "admin", "password": "admin-pass-1234"}
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["userName"] == "admin" and body["token"]
    assert body["expires"] > time.time() * 1000


def test_sql_job_flow(api: httpx.Client) -> None:
    job = api.post(
        "/api/v3/sql",
        json={
            "sql": "SELECT store_id, sum(amount) AS revenue FROM gold.fct_daily_revenue GROUP BY 1 ORDER BY 1"
        },
    )
    assert job.status_code == 200
    state = wait(api, job.json()["id"])
    assert state["jobState"] == "COMPLETED" and state["rowCount"] == 7
    assert "errorMessage" not in state
    assert "reflectionRelationships" in state["acceleration"]
    page = api.get(f"/api/v3/job/{job.json()['id']}/results", params={"offset": 2, "limit": 3})
    body = page.json()
    assert body["rowCount"] == 7
    assert body["schema"] == [
        {"name": "store_id", "type": {"name": "BIGINT"}},
        {"name": "revenue", "type": {"name": "DOUBLE"}},
    ]
    assert [r["store_id"] for r in body["rows"]] == [2, 3, 4]


def test_context_sets_the_default_schema(api: httpx.Client) -> None:
    job = api.post(
        "/api/v3/sql",
        json={"sql": "SELECT count(*) AS n FROM fct_daily_revenue", "context": ["gold"]},
    ).json()
    assert wait(api, job["id"])["jobState"] == "COMPLETED"
    rows = api.get(f"/api/v3/job/{job['id']}/results").json()["rows"]
    assert rows == [{"n": ORDERS_ROWS}]


def test_results_pages_are_500_rows_at_most(api: httpx.Client) -> None:
    job = api.post(
        "/api/v3/sql", json={"sql": "SELECT * FROM gold.fct_daily_revenue LIMIT 1200"}
    ).json()
    wait(api, job["id"])
    too_big = api.get(f"/api/v3/job/{job['id']}/results", params={"limit": 501})
    assert too_big.status_code == 400
    assert set(too_big.json()) == {"errorMessage", "moreInfo"}
    rows = []
    for offset in range(0, 1200, 500):
        rows += api.get(
            f"/api/v3/job/{job['id']}/results", params={"offset": offset, "limit": 500}
        ).json()["rows"]
    assert len(rows) == 1200
    assert {r["city"] for r in rows} == {"Café", "مرحبا", "北京", "東京"}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rows[0]["order_date"])


def test_job_errors(api: httpx.Client) -> None:
    unknown = api.get("/api/v3/job/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404 and unknown.json()["errorMessage"]
    failed = api.post("/api/v3/sql", json={"sql": "SELECT * FROM gold.nope"}).json()
    state = wait(api, failed["id"])
    assert state["jobState"] == "FAILED" and "nope" in state["errorMessage"]
    assert api.get(f"/api/v3/job/{failed['id']}/results").status_code == 400
    assert api.post("/api/v3/sql", json={}).status_code == 400


def test_cancel_a_running_job(api: httpx.Client) -> None:
    job = api.post(
        "/api/v3/sql", json={"sql": "SELECT count(*) FROM range(100000000000) a(i) WHERE i % 7 = 3"}
    ).json()
    time.sleep(0.3)
    assert api.post(f"/api/v3/job/{job['id']}/cancel").status_code == 204
    state = wait(api, job["id"])
    assert state["jobState"] == "CANCELED"
    assert api.get(f"/api/v3/job/{job['id']}/results").status_code == 400


def test_catalog(api: httpx.Client) -> None:
    root = api.get("/api/v3/catalog").json()["data"]
    gold = next(c for c in root if c["path"] == ["gold"])
    assert gold["type"] == "CONTAINER" and gold["containerType"] == "SOURCE"
    container = api.get(f"/api/v3/catalog/{gold['id']}").json()
    child = next(c for c in container["children"] if c["path"] == ["gold", "fct_daily_revenue"])
    by_id = api.get(f"/api/v3/catalog/{child['id']}").json()
    by_path = api.get("/api/v3/catalog/by-path/gold/fct_daily_revenue").json()
    assert by_id == by_path
    assert by_path["entityType"] == "dataset" and by_path["type"] == "PHYSICAL_DATASET"
    assert [f["name"] for f in by_path["fields"]] == ["order_date", "store_id", "amount", "city"]
    assert api.get("/api/v3/catalog/by-path/gold/nope").status_code == 404


def test_reflection_lifecycle(api: httpx.Client, served: Served) -> None:
    dataset = api.get("/api/v3/catalog/by-path/gold/fct_daily_revenue").json()
    body = {
        "type": "AGGREGATION",
        "name": "revenue_by_store",
        "datasetId": dataset["id"],
        "enabled": True,
        "dimensionFields": [{"name": "store_id"}],
        "measureFields": [{"name": "amount", "measureTypeList": ["SUM", "COUNT"]}],
    }
    assert api.post("/api/v3/reflection", json=body).status_code == 200
    listed = api.get("/api/v3/reflection").json()["data"]
    created = next(r for r in listed if r["name"] == "revenue_by_store")
    assert api.get(f"/api/v3/reflection/{created['id']}").json()["datasetId"] == dataset["id"]

    sql = "SELECT store_id, sum(amount) AS s FROM gold.fct_daily_revenue GROUP BY store_id"
    job = api.post("/api/v3/sql", json={"sql": sql}).json()
    state = wait(api, job["id"])
    chosen = [
        r for r in state["acceleration"]["reflectionRelationships"] if r["relationship"] == "CHOSEN"
    ]
    assert [r["reflectionId"] for r in chosen] == [created["id"]]
    (event,) = served.audit_events("query", target=sql)
    assert event.detail["reflections"] == [created["id"]]

    # Without a grant on the dataset, its reflection gives the analyst nothing either.
    analyst = httpx.Client(
        base_url=served.http,
        headers={"Authorization": f"Bearer {served.login('analyst', ANALYST_PASSWORD)}"},
    )
    denied = wait(analyst, analyst.post("/api/v3/sql", json={"sql": sql}).json()["id"])
    assert denied["jobState"] == "FAILED" and "not found" in denied["errorMessage"]
    assert analyst.get("/api/v3/reflection").json()["data"] == []
    assert analyst.get(f"/api/v3/reflection/{created['id']}").status_code == 404

    changed = api.put(f"/api/v3/reflection/{created['id']}", json={"enabled": False}).json()
    assert changed["enabled"] is False
    assert api.delete(f"/api/v3/reflection/{created['id']}").status_code == 204
    assert api.get(f"/api/v3/reflection/{created['id']}").status_code == 404
    missing_enabled = {k: v for k, v in body.items() if k != "enabled"}
    assert api.post("/api/v3/reflection", json=missing_enabled).status_code == 400


def test_grants_through_the_api_open_a_dataset_to_a_role(served: Served, api: httpx.Client) -> None:
    analyst = httpx.Client(
        base_url=served.http,
        headers={"Authorization": f"Bearer {served.login('analyst', ANALYST_PASSWORD)}"},
    )
    sql = {"sql": "SELECT count(*) AS n FROM bronze.shop_customers"}
    denied = wait(analyst, analyst.post("/api/v3/sql", json=sql).json()["id"])
    assert denied["jobState"] == "FAILED"
    assert analyst.get("/api/v3/catalog/by-path/bronze/shop_customers").status_code == 404
    grant = {"privilege": "SELECT", "object": "bronze.shop_customers", "grantee": "analyst"}
    assert analyst.post("/api/fleuve/v1/grants", json=grant).status_code in (403, 404)
    assert api.post("/api/fleuve/v1/grants", json=grant).status_code == 200
    try:
        allowed = analyst.post("/api/v3/sql", json=sql).json()
        assert wait(analyst, allowed["id"])["jobState"] == "COMPLETED"
        assert analyst.get(f"/api/v3/job/{allowed['id']}/results").json()["rows"] == [{"n": 1000}]
        assert analyst.get("/api/v3/catalog/by-path/gold/fct_daily_revenue").status_code == 404
        # Jobs are private: the analyst cannot read the admin's.
        other = api.post("/api/v3/sql", json={"sql": "SELECT 1"}).json()
        assert analyst.get(f"/api/v3/job/{other['id']}").status_code == 404
    finally:
        assert api.post("/api/fleuve/v1/grants/revoke", json=grant).json() == {"removed": 1}
    grants = served.audit_events("grant", wait_for=2)
    assert [e.action for e in grants[-2:]] == ["grant", "revoke"]


def test_fleuve_endpoints(api: httpx.Client) -> None:
    datasets = api.get("/api/fleuve/v1/datasets").json()["data"]
    assert {
        "path": ["gold", "fct_daily_revenue"],
        "name": "gold.fct_daily_revenue",
        "type": "TABLE",
    } in datasets
    assert api.get("/api/fleuve/v1/lake/layers").json()["data"][0]["schema"] == "bronze"
    rows = api.get("/api/fleuve/v1/lake/tables/bronze/shop_customers", params={"limit": 3}).json()
    assert len(rows["rows"]) == 3 and rows["version"] > 0
    assert api.get("/api/fleuve/v1/transform/runs").json() == {"data": []}
    assert api.get("/api/fleuve/v1/connections/nope").status_code == 404
    assert api.get("/api/fleuve/v1/jobs").status_code == 200
    users = {u["userName"] for u in api.get("/api/fleuve/v1/users").json()["data"]}
    assert users == {"admin", "analyst"}
    assert api.get("/api/fleuve/v1/audit", params={"kind": "login"}).json()["data"]


def test_errors_answer_their_status_and_fix(served: Served, api: httpx.Client) -> None:
    """Every API answers a missing object with 404 and the error's fix as moreInfo."""
    unknown_table = api.get("/api/fleuve/v1/lake/tables/gold/nope")
    assert unknown_table.status_code == 404, unknown_table.text
    chart = api.get("/api/fleuve/v1/ui/charts/nope")
    assert chart.status_code == 404
    assert chart.json() == {"errorMessage": "no chart 'nope'", "moreInfo": "list charts at /charts"}
    assert api.delete("/api/fleuve/v1/tokens/987654321").status_code == 404
    assert api.post("/api/fleuve/v1/connections/nope/sync").status_code == 404
    # Another user's SQL job is not found, through the REST API as through the web UI's.
    job = api.post("/api/v3/sql", json={"sql": "SELECT 1 AS one"}).json()["id"]
    assert wait(api, job)["jobState"] == "COMPLETED"
    analyst = {"Authorization": f"Bearer {served.login('analyst', ANALYST_PASSWORD)}"}
    for path in (f"/api/v3/job/{job}/results", f"/api/fleuve/v1/ui/sql/{job}/download"):
        theirs = httpx.get(served.http + path, headers=analyst, timeout=30)
        assert theirs.status_code == 404, path
        assert theirs.json()["errorMessage"] == f"no job with id {job}", path


def test_personal_access_tokens(served: Served, api: httpx.Client) -> None:
    made = api.post("/api/fleuve/v1/tokens", json={"name": "superset", "days": 30}).json()
    pat = httpx.Client(base_url=served.http, headers={"Authorization": f"Bearer {made['token']}"})
    assert pat.get("/api/v3/catalog").status_code == 200
    listed = api.get("/api/fleuve/v1/tokens").json()["data"]
    assert any(t["id"] == made["id"] and t["kind"] == "pat" and "token" not in t for t in listed)
    assert api.delete(f"/api/fleuve/v1/tokens/{made['id']}").status_code == 204
    assert pat.get("/api/v3/catalog").status_code == 401


def test_logout_revokes_the_session(served: Served) -> None:
    client = httpx.Client(
        base_url=served.http, headers={"Authorization": f"_dremio{served.login()}"}
    )
    assert client.get("/api/v3/catalog").status_code == 200
    assert client.delete("/apiv2/login").status_code == 204
    assert client.get("/api/v3/catalog").status_code == 401


def test_expired_revoked_and_disabled_tokens_are_refused(served: Served) -> None:
    db = served.project.db
    analyst = auth.get_user(db, "analyst")
    expired, _ = auth.issue_token(db, analyst, ttl=timedelta(seconds=-1))
    revoked, row = auth.issue_token(db, analyst)
    auth.revoke_token_id(db, "analyst", row.id)
    for token in (expired, revoked, "made-up"):
        resp = httpx.get(
            f"{served.http}/api/v3/catalog", headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 401
        assert resp.json()["errorMessage"] == "the token is invalid, expired or revoked"
    live, _ = auth.issue_token(db, analyst)
    headers = {"Authorization": f"Bearer {live}"}
    assert httpx.get(f"{served.http}/api/v3/catalog", headers=headers).status_code == 200
    auth.set_disabled(db, "analyst", True)
    try:
        assert httpx.get(f"{served.http}/api/v3/catalog", headers=headers).status_code == 401
    finally:
        auth.set_disabled(db, "analyst", False)


def test_every_route_needs_authentication(served: Served) -> None:
    """Every operation of the app, enumerated from its OpenAPI description, answers 401."""
    app = served.server._http.config.app
    operations = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    ]
    assert len(operations) > 40
    client = httpx.Client()
    public = {("GET", "/health"), ("POST", "/apiv2/login")}
    assert public <= set(operations)
    for method, path in operations:
        if (method, path) in public:
            continue
        url = f"{served.http}{re.sub(r'{[^}]+}', 'x', path)}"
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "_dremionope"}):
            resp = client.request(method, url, headers=headers, json={})
            assert resp.status_code == 401, f"{method} {path} answered {resp.status_code}"
            assert set(resp.json()) == {"errorMessage", "moreInfo"}
    for path in ("/docs", "/openapi.json", "/no/such/route"):
        assert httpx.get(f"{served.http}{path}").status_code == 401
    assert httpx.get(f"{served.http}/health").json()["status"] == "ok"


def test_openapi_opens_with_basic_credentials(served: Served) -> None:
    resp = httpx.get(f"{served.http}/docs", auth=("admin", "admin-pass-1234"))
    assert resp.status_code == 200 and "swagger" in resp.text.lower()
    spec = httpx.get(f"{served.http}/openapi.json", auth=("admin", "admin-pass-1234")).json()
    assert "/api/v3/sql" in spec["paths"] and "/api/v1/connections/sync" in spec["paths"]
    challenge = httpx.get(f"{served.http}/docs")
    assert challenge.headers["www-authenticate"].startswith("Basic")


def test_repeated_failures_slow_logins_down(served: Served) -> None:
    auth.create_user(served.project.db, "target", "target-pass-123")
    url = f"{served.http}/apiv2/login"
    for _ in range(auth.FREE_FAILURES):
        assert httpx.post(url, json={"userName": "target", "password": "wrong!"}).status_code == 401
    started = time.monotonic()
    ok = httpx.post(url, json={"userName": "target", "password": "target-pass-123"})
    assert ok.status_code == 200
    assert time.monotonic() - started >= 0.5  # slowed even when right: guessing stays slow
    failed = served.audit_events(
        "login", wait_for=auth.FREE_FAILURES, username="target", outcome="failed"
    )
    assert len(failed) == auth.FREE_FAILURES


def test_ingestion_api_syncs_a_connection(served: Served, api: httpx.Client) -> None:
    """The seed's curl lines: POST connections/sync, then POST jobs/get until it succeeded."""
    started = api.post("/api/v1/connections/sync", json={"connectionId": "site_drops"})
    assert started.status_code == 200
    info = started.json()
    assert info["job"]["configType"] == "sync" and info["job"]["configId"] == "site_drops"
    assert info["job"]["status"] in ("pending", "running", "succeeded")
    job_id = info["job"]["id"]
    deadline = time.monotonic() + 60
    while info["job"]["status"] in ("pending", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        info = api.post("/api/v1/jobs/get", json={"id": str(job_id)}).json()
    assert info["job"]["status"] == "succeeded"
    attempt = info["attempts"][-1]["attempt"]
    assert attempt["status"] == "succeeded" and attempt["recordsSynced"] == VISITS
    assert isinstance(info["job"]["createdAt"], int) and attempt["endedAt"] >= attempt["createdAt"]

    assert api.post("/api/v1/jobs/get", json={"id": 999999}).status_code == 404
    assert api.post("/api/v1/jobs/get", json={"id": "job-id"}).status_code == 400
    missing = api.post("/api/v1/connections/sync", json={"connectionId": "nope"})
    assert missing.status_code == 404 and "site_drops" in missing.json()["errorMessage"]
    listed = api.get("/api/fleuve/v1/jobs", params={"connection": "site_drops"}).json()["data"]
    assert listed[0]["job"]["id"] == job_id
    (event,) = served.audit_events("connection", target="site_drops")
    assert event.action == "sync" and event.username == "admin"
    connections = api.get("/api/fleuve/v1/connections").json()["data"]
    assert [c["name"] for c in connections] == ["site_drops"]


def test_http_connections_send_without_delay(served: Served) -> None:
    """Kept-alive requests must not wait for the client's delayed ACKs (Nagle's algorithm):
    connections accepted on the listening sockets inherit TCP_NODELAY."""
    import socket

    for sock in served.server._sockets:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
