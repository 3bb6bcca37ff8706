"""The UI's pages and JSON endpoints on an in-process server: public shell, private data."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from fleuve.project import Project, init_project
from fleuve.serve.server import FleuveServer

ADMIN = ("admin", "admin-pass-1234")
DASHBOARD = """
slug: sales
title: Sales
filters:
  - {name: period, label: Period, type: date_range, column: order_date}
charts:
  - name: revenue
    title: Revenue
    type: line
    dataset: gold.daily
    x: order_date
    time_grain: month
    measures: [{agg: sum, column: amount, label: revenue}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A project with a gold table and one YAML dashboard, served on free ports."""
    folder = tmp_path_factory.mktemp("ui-api") / "proj"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLEUVE_ADMIN_PASSWORD", ADMIN[1])
        init_project(folder, "ui-test")
    (folder / "dashboards").mkdir()
    (folder / "dashboards" / "sales.yml").write_text(DASHBOARD, encoding="utf-8")
    project = Project.open(folder)
    project.lake.commit(
        lambda c: c.execute(
            "CREATE TABLE gold.daily AS SELECT DATE '2026-01-01' + i::INT AS order_date, "
            "(i * 1.5)::DOUBLE AS amount, ['Café', '北京'][(i % 2) + 1] AS city FROM range(90) t(i)"
        ),
        what="ui test data",
    )
    running = FleuveServer(project, host="127.0.0.1", http_port=0, flight_port=0)
    running.start()
    try:
        yield running.addresses.http
    finally:
        running.stop()
        project.close()


def login(url: str, user: str = ADMIN[0], password: str = ADMIN[1]) -> dict[str, str]:
    token = httpx.post(f"{url}/apiv2/login", json={"userName": user, "password": password})
    token.raise_for_status()
    return {"Authorization": f"_dremio{token.json()['token']}"}


def test_pages_are_public_and_pin_their_assets(server: str) -> None:
    for path in ("/", "/ui/dashboards/sales", "/ui/sql"):
        page = httpx.get(server + path)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
    html = httpx.get(server + "/").text
    head = html.split("</head>")[0]
    loaded = re.findall(r'(?:src|href)="([^"]+)"', head)  # everything the page loads
    assert loaded and all(u.startswith(("/ui/static/", "data:")) for u in loaded), loaded
    entry = re.search(r'"(/ui/static/js/main\.js\?v=[0-9a-f]+)"', html)
    assert entry
    script = httpx.get(server + entry.group(1))
    assert script.status_code == 200 and "immutable" in script.headers["cache-control"]
    etag = script.headers["etag"]
    assert httpx.get(server + entry.group(1), headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(server + "/ui/static/../api.py").status_code != 200
    assert httpx.get(server + "/ui/static/missing.js").status_code == 401


def test_every_ui_endpoint_needs_a_login(server: str) -> None:
    for method, path in [
        ("GET", "/api/fleuve/v1/ui/me"),
        ("GET", "/api/fleuve/v1/ui/dashboards"),
        ("POST", "/api/fleuve/v1/ui/dashboards/sales/charts/revenue/data"),
        ("GET", "/api/fleuve/v1/ui/completion"),
        ("POST", "/api/fleuve/v1/ui/charts/preview"),
    ]:
        assert httpx.request(method, server + path, json={}).status_code == 401, path


def test_yaml_dashboard_serves_filtered_chart_data(server: str) -> None:
    headers = login(server)
    listed = httpx.get(f"{server}/api/fleuve/v1/ui/dashboards", headers=headers).json()["data"]
    assert [d["slug"] for d in listed] == ["sales"] and listed[0]["origin"] == "file"
    url = f"{server}/api/fleuve/v1/ui/dashboards/sales/charts/revenue/data"
    everything = httpx.post(url, headers=headers, json={"filters": {}}).json()
    assert [r[0] for r in everything["rows"]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert sum(r[1] for r in everything["rows"]) == pytest.approx(sum(i * 1.5 for i in range(90)))
    assert everything["acceleration"] == {"accelerated": False, "reflections": []}
    march = httpx.post(
        url,
        headers=headers,
        json={"filters": {"period": {"from": "2026-03-01", "to": "2026-03-31"}}},
    ).json()
    assert [r[0] for r in march["rows"]] == ["2026-03-01"]
    again = httpx.post(url, headers=headers, json={"filters": {}}).json()
    assert again["cached"] is True and again["rows"] == everything["rows"]


def test_charts_saved_and_added_to_a_ui_dashboard(server: str) -> None:
    headers = login(server)
    chart = {
        "name": "by-city",
        "title": "By city",
        "type": "pie",
        "dataset": "gold.daily",
        "x": "city",
        "measures": [{"agg": "count", "label": "days"}],
    }
    preview = httpx.post(
        f"{server}/api/fleuve/v1/ui/charts/preview", headers=headers, json={"chart": chart}
    ).json()
    assert sorted(preview["rows"]) == [["Café", 45], ["北京", 45]]
    assert httpx.post(
        f"{server}/api/fleuve/v1/ui/charts", headers=headers, json={"chart": chart}
    ).is_success
    assert (
        httpx.get(f"{server}/api/fleuve/v1/ui/charts/by-city", headers=headers).json()["spec"]["x"]
        == "city"
    )
    made = httpx.post(
        f"{server}/api/fleuve/v1/ui/dashboards",
        headers=headers,
        json={"slug": "mine", "title": "Mine"},
    )
    assert made.is_success
    added = httpx.post(
        f"{server}/api/fleuve/v1/ui/dashboards/mine/charts", headers=headers, json={"chart": chart}
    ).json()
    assert [c["name"] for c in added["spec"]["charts"]] == ["by-city"]
    refused = httpx.post(
        f"{server}/api/fleuve/v1/ui/dashboards/sales/charts", headers=headers, json={"chart": chart}
    )
    assert refused.status_code == 400 and "sales.yml" in refused.json()["errorMessage"]
    bad = httpx.post(
        f"{server}/api/fleuve/v1/ui/charts/preview",
        headers=headers,
        json={"chart": {**chart, "type": "pie", "x": None}},
    )
    assert bad.status_code == 400 and "needs an 'x' column" in bad.json()["errorMessage"]


def test_sql_lab_downloads_csv_and_parquet(server: str, tmp_path: Path) -> None:
    headers = login(server)
    job = httpx.post(
        f"{server}/api/v3/sql", headers=headers, json={"sql": "SELECT * FROM gold.daily ORDER BY 1"}
    ).json()["id"]
    while (
        httpx.get(f"{server}/api/v3/job/{job}", headers=headers).json()["jobState"] != "COMPLETED"
    ):
        time.sleep(0.05)
    csv = httpx.get(f"{server}/api/fleuve/v1/ui/sql/{job}/download?format=csv", headers=headers)
    lines = csv.text.splitlines()
    assert lines[0] == '"order_date","amount","city"' and len(lines) == 91 and "北京" in csv.text
    parquet = httpx.get(
        f"{server}/api/fleuve/v1/ui/sql/{job}/download?format=parquet", headers=headers
    )
    (tmp_path / "r.parquet").write_bytes(parquet.content)
    assert pq.read_table(tmp_path / "r.parquet").num_rows == 90
    auth_user = "viewer"
    with httpx.Client() as client:
        admin = headers
        client.post(
            f"{server}/api/fleuve/v1/ui/admin/users",
            headers=admin,
            json={"userName": auth_user, "password": "viewer-pass-1", "roles": []},
        ).raise_for_status()
        other = login(server, auth_user, "viewer-pass-1")
        assert (
            client.get(f"{server}/api/fleuve/v1/ui/sql/{job}/download", headers=other).status_code
            == 404
        )
        assert (
            client.post(
                f"{server}/api/fleuve/v1/ui/admin/users",
                headers=other,
                json={"userName": "x", "password": "xxxxxxxxx"},
            ).status_code
            == 403
        )


def test_dashboard_data_streams_one_line_per_chart(server: str) -> None:
    headers = login(server)
    with httpx.stream(
        "POST",
        f"{server}/api/fleuve/v1/ui/dashboards/sales/data",
        headers=headers,
        json={"filters": {"period": "last_7_days"}},
    ) as res:
        assert res.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in res.iter_lines() if line]
    assert [line["chart"] for line in lines] == ["revenue"]
    assert "rows" in lines[0] and "acceleration" in lines[0]
    bad = httpx.post(
        f"{server}/api/fleuve/v1/ui/dashboards/sales/data",
        headers=headers,
        json={"filters": {"period": "last_fortnight"}},
    )
    assert (
        json.loads(bad.text.splitlines()[0])["errorMessage"]
        == "unknown date range 'last_fortnight'"
    )
    assert (
        httpx.post(f"{server}/api/fleuve/v1/ui/dashboards/sales/data", json={}).status_code == 401
    )


def test_a_revoked_grant_or_role_ends_cached_chart_answers_at_once(server: str) -> None:
    admin = login(server)
    created = httpx.post(
        f"{server}/api/fleuve/v1/ui/admin/users",
        headers=admin,
        json={
            "userName": "chart_viewer",
            "password": "viewer-pass-123",
            "roles": ["chart_viewers"],
        },
    )
    created.raise_for_status()

    def sql(statement: str) -> None:
        job = httpx.post(f"{server}/api/v3/sql", headers=admin, json={"sql": statement}).json()
        while httpx.get(f"{server}/api/v3/job/{job['id']}", headers=admin).json()[
            "jobState"
        ] not in ("COMPLETED", "FAILED", "CANCELED"):
            time.sleep(0.05)

    viewer = login(server, "chart_viewer", "viewer-pass-123")
    url = f"{server}/api/fleuve/v1/ui/dashboards/sales/charts/revenue/data"
    sql("GRANT SELECT ON gold.daily TO ROLE chart_viewers")
    first = httpx.post(url, headers=viewer, json={"filters": {}})
    assert first.status_code == 200 and first.json()["rowCount"] == 3
    assert httpx.post(url, headers=viewer, json={"filters": {}}).json()["cached"] is True
    sql("REVOKE SELECT ON gold.daily FROM ROLE chart_viewers")
    assert httpx.post(url, headers=viewer, json={"filters": {}}).status_code != 200
    sql("GRANT SELECT ON gold.daily TO ROLE chart_viewers")
    assert httpx.post(url, headers=viewer, json={"filters": {}}).status_code == 200
    httpx.patch(
        f"{server}/api/fleuve/v1/ui/admin/users/chart_viewer", headers=admin, json={"roles": []}
    ).raise_for_status()
    time.sleep(0.3)  # the engine re-reads a user's roles at most every 0.2 s
    assert httpx.post(url, headers=viewer, json={"filters": {}}).status_code != 200
