"""Apache Superset as a client: it registers Fleuve over Arrow Flight and runs a chart's query.

Superset lives in its own virtual environment, cached outside the repository and keyed by
version, so only the first run installs it (a few minutes). See docs/superset.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.ui.conftest import Served

SUPERSET_VERSION = "6.1.0"
# Superset 6.1 from PyPI starts only with these added; sqlalchemy-dremio is the Flight dialect.
SUPERSET_PACKAGES = [
    f"apache-superset=={SUPERSET_VERSION}",
    "sqlalchemy-dremio",
    "rich",
    "cachetools",
    "flask-caching<2.4",
]
VENV = Path.home() / ".cache" / "fleuve-test" / f"superset-venv-{SUPERSET_VERSION}"
ADMIN = ("admin", "superset-admin-1")
NAMES = ["--firstname", "Fleuve", "--lastname", "Test", "--email", "test@example.org"]


def superset_venv() -> Path:
    """The cached virtual environment with Superset, installed on first use."""
    ready = VENV / ".fleuve-ready"
    if not ready.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", *SUPERSET_PACKAGES],
            check=True,
            timeout=1800,
        )
        ready.write_text(" ".join(SUPERSET_PACKAGES) + "\n")
    return VENV


@pytest.fixture(scope="module")
def superset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Superset web server with an admin user, on a free loopback port."""
    venv = superset_venv()
    home = tmp_path_factory.mktemp("superset")
    config = home / "superset_config.py"
    config.write_text(
        f"SECRET_KEY = {os.urandom(24).hex()!r}\n"
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{home / 'superset.db'}'\n"
        "WTF_CSRF_ENABLED = False\n"
    )
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(config), "FLASK_APP": "superset"}
    superset_bin = str(venv / "bin" / "superset")
    for args in (
        ["db", "upgrade"],
        ["fab", "create-admin", "--username", ADMIN[0], "--password", ADMIN[1], *NAMES],
        ["init"],
    ):
        done = subprocess.run(
            [superset_bin, *args], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    port = free_port()
    proc = subprocess.Popen(
        [superset_bin, "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "Superset did not start"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@dataclass
class Registered:
    """A logged-in Superset API client and the id of Fleuve's database in Superset."""

    api: httpx.Client
    database: int


@pytest.fixture(scope="module")
def registered(superset: str, served: Served) -> Iterator[Registered]:
    """Fleuve registered in Superset over Arrow Flight, as docs/superset.md does it."""
    api = httpx.Client(base_url=superset, timeout=300)
    login = api.post(
        "/api/v1/security/login",
        json={"username": ADMIN[0], "password": ADMIN[1], "provider": "db", "refresh": True},
    )
    login.raise_for_status()
    api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    uri = (
        f"dremio+flight://admin:{served.admin_password}@127.0.0.1:{served.flight_port}"
        "/dremio?UseEncryption=false"
    )
    tested = api.post(
        "/api/v1/database/test_connection/", json={"database_name": "fleuve", "sqlalchemy_uri": uri}
    )
    assert tested.status_code == 200, tested.text
    created = api.post(
        "/api/v1/database/",
        json={"database_name": "fleuve", "sqlalchemy_uri": uri, "expose_in_sqllab": True},
    )
    assert created.status_code == 201, created.text
    assert "password" not in created.text and served.admin_password not in created.text
    yield Registered(api, created.json()["id"])
    api.close()


def sql_lab(registered: Registered, sql: str) -> dict[str, Any]:
    """A SQL Lab query's answer (columns and rows), run synchronously with the UI's row limit."""
    lab = registered.api.post(
        "/api/v1/sqllab/execute/",
        json={
            "database_id": registered.database,
            "sql": sql,
            "runAsync": False,
            "queryLimit": 1000,
        },
    )
    assert lab.status_code == 200, lab.text
    return lab.json()


def fleuve_rows(served: Served, sql: str) -> list[dict[str, Any]]:
    """The rows Fleuve's own REST API gives for `sql`."""
    headers = {"Authorization": f"Bearer {served.token()}"}
    job = httpx.post(f"{served.url}/api/v3/sql", headers=headers, json={"sql": sql}).json()["id"]
    deadline = time.monotonic() + 120
    while httpx.get(f"{served.url}/api/v3/job/{job}", headers=headers).json()["jobState"] not in (
        "COMPLETED",
        "FAILED",
    ):
        assert time.monotonic() < deadline, f"job {job} did not finish"
        time.sleep(0.1)
    answer = httpx.get(f"{served.url}/api/v3/job/{job}/results?limit=500", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


@pytest.mark.slow
def test_superset_charts_fleuve_through_flight(registered: Registered, served: Served) -> None:
    api, database = registered.api, registered.database
    schemas = api.get(f"/api/v1/database/{database}/schemas/").json()["result"]
    assert {"bronze", "silver", "gold"} <= set(schemas)

    # The daily revenue chart: a dataset on the gold mart and a chart's query on it.
    dataset = api.post(
        "/api/v1/dataset/",
        json={"database": database, "schema": "gold", "table_name": "fct_daily_revenue"},
    )
    assert dataset.status_code == 201, dataset.text
    columns = {c["column_name"] for c in dataset.json()["data"]["columns"]}
    assert {"order_date", "amount", "orders"} <= columns
    chart = api.post(
        "/api/v1/chart/data",
        json={
            "datasource": {"id": dataset.json()["id"], "type": "table"},
            "queries": [
                {
                    "columns": ["order_date"],
                    "metrics": [
                        {
                            "expressionType": "SIMPLE",
                            "column": {"column_name": "amount"},
                            "aggregate": "SUM",
                            "label": "revenue",
                        }
                    ],
                    "orderby": [["order_date", True]],
                    "row_limit": 1000,
                    "time_range": "No filter",
                }
            ],
            "result_format": "json",
            "result_type": "full",
        },
    )
    assert chart.status_code == 200, chart.text
    result = chart.json()["result"][0]
    assert result["status"] == "success" and result["rowcount"] > 0

    # The same numbers as Fleuve's own REST API gives for the same question.
    row = fleuve_rows(
        served, "SELECT count(*) AS days, sum(amount) AS revenue FROM gold.fct_daily_revenue"
    )[0]
    assert result["rowcount"] == row["days"]
    assert sum(r["revenue"] for r in result["data"]) == pytest.approx(row["revenue"], rel=1e-9)

    # SQL Lab: Superset appends its row limit and reads the rows through Flight.
    lab = sql_lab(
        registered, "SELECT status, count(*) AS orders FROM gold.fct_orders GROUP BY status"
    )
    assert sum(r["orders"] for r in lab["data"]) == 1000


# One column per type Fleuve returns, as a SQL Lab user would select them.
EVERY_TYPE = """
SELECT
    CAST(-7 AS TINYINT) AS tiny, CAST(-300 AS SMALLINT) AS small, CAST(70000 AS INTEGER) AS int,
    CAST(9007199254740993 AS BIGINT) AS big, CAST(4000000000 AS UINTEGER) AS uint,
    CAST(18446744073709551615 AS UBIGINT) AS ubig,
    CAST('-12345678901234567890123456789012345678' AS HUGEINT) AS huge,
    CAST(0.5 AS FLOAT) AS flt, CAST(0.1 AS DOUBLE) AS dbl,
    CAST(12345.6789 AS DECIMAL(18, 4)) AS dec, TRUE AS flag,
    'Café مرحبا 北京 東京' AS txt, CAST('6f1c2c9e-4c52-4f7e-9a38-3f4b2a1d0e55' AS UUID) AS id,
    CAST('{"a": [1, 2]}' AS JSON) AS doc, CAST('b' AS ENUM('a', 'b')) AS choice,
    CAST('\\xAA\\x00\\xFF' AS BLOB) AS raw,
    DATE '2024-02-29' AS day, TIME '13:14:15.678901' AS clock,
    TIMESTAMP '2024-01-02 03:04:05.678901' AS ts,
    CAST('2024-01-02 05:04:05.678+02' AS TIMESTAMPTZ) AS tstz,
    CAST('1 month 2 days 3 hours' AS INTERVAL) AS span,
    [1, 2, 3] AS items, {'a': 1, 'b': 'x'} AS pair, MAP {'k1': 1} AS dict,
    NULL AS nothing, CAST(NULL AS TIMESTAMP) AS no_ts
"""


# What SQL Lab shows for each: Superset sends integers beyond 2**53 as text (JavaScript would
# round them), bytes as "[bytes]", and nested values and intervals as their Python text.
EVERY_TYPE_ROW = {
    "tiny": -7,
    "small": -300,
    "int": 70000,
    "big": "9007199254740993",
    "uint": 4000000000,
    "ubig": 18446744073709551615,
    "huge": -12345678901234567890123456789012345678,
    "flt": 0.5,
    "dbl": 0.1,
    "dec": 12345.6789,
    "flag": True,
    "txt": "Café مرحبا 北京 東京",
    "id": "6f1c2c9e-4c52-4f7e-9a38-3f4b2a1d0e55",
    "doc": '{"a": [1, 2]}',
    "choice": "b",
    "raw": "[bytes]",
    "day": "2024-02-29",
    "clock": "13:14:15.678000",
    "ts": "2024-01-02T03:04:05.678000",
    "tstz": "2024-01-02T03:04:05.678000",
    "items": "[1, 2, 3]",
    "pair": "{'a': 1, 'b': 'x'}",
    "dict": "{'k1': 1}",
    "nothing": None,
    "no_ts": None,
}


@pytest.mark.slow
def test_sql_lab_reads_every_type(registered: Registered) -> None:
    answer = sql_lab(registered, EVERY_TYPE)
    assert answer["status"] == "success", answer
    row = answer["data"][0]
    # An interval reaches pandas as a DateOffset, whose text lists its parts in any order.
    span = row.pop("span")
    assert span.startswith("DateOffset(") and {
        "months=1",
        "days=2",
        "microseconds=10800000000",
    } <= {part.strip() for part in span[len("DateOffset(") : -1].split(",")}
    assert answer["data"] == [EVERY_TYPE_ROW]
    temporal = {c["name"] for c in answer["columns"] if c["is_dttm"]}
    assert {"day", "ts", "tstz"} <= temporal


@pytest.mark.slow
def test_sql_lab_timestamps_match_fleuve(registered: Registered, served: Served) -> None:
    """The reported case: a SQL Lab query returning a timestamp column."""
    # Bounded by a filter: SQL Lab replaces a query's own LIMIT with its row limit.
    sql = "SELECT order_id, order_date FROM gold.fct_orders WHERE order_id <= 20 ORDER BY order_id"
    answer = sql_lab(registered, sql)
    assert answer["status"] == "success", answer
    expected = fleuve_rows(served, sql)
    assert len(answer["data"]) == len(expected) == 20
    assert [
        (r["order_id"], dt.datetime.fromisoformat(r["order_date"])) for r in answer["data"]
    ] == [(r["order_id"], dt.datetime.fromisoformat(r["order_date"])) for r in expected]


def _month(value: Any) -> dt.datetime:
    """A month start as Superset's chart data (epoch milliseconds) or Fleuve's REST API gives it."""
    if isinstance(value, (int, float)):
        return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=value)
    return dt.datetime.fromisoformat(value)


@pytest.mark.slow
def test_chart_and_dashboard_on_a_timestamp_column(registered: Registered, served: Served) -> None:
    """Orders per month on gold.fct_orders.order_date (a TIMESTAMP), in a chart on a dashboard."""
    api = registered.api
    dataset = api.post(
        "/api/v1/dataset/",
        json={"database": registered.database, "schema": "gold", "table_name": "fct_orders"},
    )
    assert dataset.status_code == 201, dataset.text
    dataset_id = dataset.json()["id"]
    columns = {c["column_name"]: c for c in dataset.json()["data"]["columns"]}
    assert columns["order_date"]["is_dttm"]

    metric = {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "orders"}
    # A time range, as dashboards set one: Superset writes it with TO_TIMESTAMP(...).
    period = {"col": "order_date", "op": "TEMPORAL_RANGE", "val": "2000-01-01 : 2100-01-01"}
    query = {
        "columns": [
            {
                "timeGrain": "P1M",
                "columnType": "BASE_AXIS",
                "sqlExpression": "order_date",
                "label": "order_date",
                "expressionType": "SQL",
            }
        ],
        "metrics": [metric],
        "filters": [period],
        "orderby": [[metric, True]],
        "row_limit": 10000,
    }
    context = {
        "datasource": {"id": dataset_id, "type": "table"},
        "queries": [query],
        "form_data": {"viz_type": "echarts_timeseries_bar"},
        "result_format": "json",
        "result_type": "full",
    }
    direct = api.post("/api/v1/chart/data", json=context)
    assert direct.status_code == 200, direct.text
    result = direct.json()["result"][0]
    assert result["status"] == "success", result

    expected = fleuve_rows(
        served,
        "SELECT date_trunc('month', order_date) AS m, count(*) AS n "
        "FROM gold.fct_orders GROUP BY 1 ORDER BY 1",
    )
    per_month = {_month(r["order_date"]): r["orders"] for r in result["data"]}
    assert per_month == {_month(r["m"]): r["n"] for r in expected}
    assert sum(per_month.values()) == 1000

    # The same chart saved on a dashboard, and its data as the dashboard loads it.
    dashboard = api.post(
        "/api/v1/dashboard/", json={"dashboard_title": "Fleuve orders", "published": True}
    )
    assert dashboard.status_code == 201, dashboard.text
    dashboard_id = dashboard.json()["id"]
    form_data = {
        "viz_type": "echarts_timeseries_bar",
        "datasource": f"{dataset_id}__table",
        "x_axis": "order_date",
        "time_grain_sqla": "P1M",
        "metrics": [metric],
        "adhoc_filters": [
            {
                "expressionType": "SIMPLE",
                "subject": "order_date",
                "operator": "TEMPORAL_RANGE",
                "comparator": "2000-01-01 : 2100-01-01",
                "clause": "WHERE",
            }
        ],
        "row_limit": 10000,
    }
    chart = api.post(
        "/api/v1/chart/",
        json={
            "slice_name": "Orders per month",
            "viz_type": "echarts_timeseries_bar",
            "datasource_id": dataset_id,
            "datasource_type": "table",
            "params": json.dumps(form_data),
            "query_context": json.dumps(context),
            "dashboards": [dashboard_id],
        },
    )
    assert chart.status_code == 201, chart.text
    chart_id = chart.json()["id"]
    on_dashboard = api.get(f"/api/v1/dashboard/{dashboard_id}/charts")
    assert on_dashboard.status_code == 200, on_dashboard.text
    assert [c["id"] for c in on_dashboard.json()["result"]] == [chart_id]
    loaded = api.get(f"/api/v1/chart/{chart_id}/data/", params={"format": "json", "type": "full"})
    assert loaded.status_code == 200, loaded.text
    saved = loaded.json()["result"][0]
    assert {_month(r["order_date"]): r["orders"] for r in saved["data"]} == per_month
