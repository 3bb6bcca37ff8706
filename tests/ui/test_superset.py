"""Apache Superset as a client: it registers Fleuve over Arrow Flight and runs a chart's query.

Superset lives in its own virtual environment, cached outside the repository and keyed by
version, so only the first run installs it (a few minutes). See docs/superset.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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


@pytest.mark.slow
def test_superset_charts_fleuve_through_flight(superset: str, served: Served) -> None:
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
    database = created.json()["id"]
    assert "password" not in created.text and served.admin_password not in created.text
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
    token = served.token()
    headers = {"Authorization": f"Bearer {token}"}
    job = httpx.post(
        f"{served.url}/api/v3/sql",
        headers=headers,
        json={"sql": "SELECT count(*) AS days, sum(amount) AS revenue FROM gold.fct_daily_revenue"},
    ).json()["id"]
    while httpx.get(f"{served.url}/api/v3/job/{job}", headers=headers).json()["jobState"] not in (
        "COMPLETED",
        "FAILED",
    ):
        time.sleep(0.1)
    expected = httpx.get(f"{served.url}/api/v3/job/{job}/results", headers=headers).json()
    row = expected["rows"][0]
    assert result["rowcount"] == row["days"]
    assert sum(r["revenue"] for r in result["data"]) == pytest.approx(row["revenue"], rel=1e-9)

    # SQL Lab: Superset appends its row limit and reads the rows through Flight.
    lab = api.post(
        "/api/v1/sqllab/execute/",
        json={
            "database_id": database,
            "sql": "SELECT status, count(*) AS orders FROM gold.fct_orders GROUP BY status",
            "runAsync": False,
        },
    )
    assert lab.status_code == 200, lab.text
    assert sum(r["orders"] for r in lab.json()["data"]) == 1000
