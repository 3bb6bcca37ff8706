"""The end-to-end demo, as a user runs it: generate, pipeline, re-run, serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fleuve.lake import quote_ident
from fleuve.project import ADMIN_PASSWORD_FILE, Project
from tests.conftest import free_port

FLEUVE = [sys.executable, "-m", "fleuve"]


def fingerprint(project: Project) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent checksum of every silver and gold table."""
    out = {}
    con = project.lake.connect()
    for schema in ("silver", "gold"):
        for _, table in project.lake.tables(schema):
            name = f"{schema}.{quote_ident(table)}"
            cols = [
                r[0]
                for r in con.execute(f"DESCRIBE {name}").fetchall()
                if not r[0].startswith("_fleuve")
            ]
            packed = ", ".join(quote_ident(c) for c in cols)
            out[f"{schema}.{table}"] = tuple(
                con.execute(
                    f"SELECT count(*), coalesce(sum(hash({packed})), 0) FROM {name}"
                ).fetchall()[0]
            )
    return out


@pytest.mark.slow
def test_demo_runs_reruns_identically_and_serves(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    api_port = free_port()
    done = subprocess.run(
        [
            *FLEUVE,
            "demo",
            str(folder),
            "--scale",
            "5000",
            "--no-serve",
            "--api-port",
            str(api_port),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Pipeline run 1 succeeded" in done.stdout
    for step in (
        "Extract sources into bronze",
        "dbt run: marts",
        "dbt test: marts",
        "Warm dashboard caches",
    ):
        assert step in done.stdout

    project = Project.open(folder)
    try:
        first = fingerprint(project)
        customers = project.lake.query("SELECT DISTINCT country_code FROM silver.stg_customers")[
            "country_code"
        ].to_pylist()
        names = project.lake.query("SELECT customer_name FROM silver.stg_customers")[
            "customer_name"
        ].to_pylist()
    finally:
        project.close()
    assert {"FR", "MA", "CN", "JP"} <= set(customers)
    scripts = {
        "Arabic": (0x0600, 0x06FF),
        "Han": (0x4E00, 0x9FFF),
        "Kana": (0x3040, 0x30FF),
        "accented Latin": (0x00C0, 0x017F),
    }
    for script, (low, high) in scripts.items():
        assert any(low <= ord(ch) <= high for n in names for ch in n), f"no {script} names"
    assert (
        first["gold.fct_customer_lifetime_value"][0] > 0 and first["gold.fct_daily_revenue"][0] > 0
    )

    rerun = subprocess.run(
        [*FLEUVE, "--project", str(folder), "run"], capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "Pipeline run 2 succeeded" in rerun.stdout
    project = Project.open(folder)
    try:
        assert fingerprint(project) == first  # running twice gives the same lake
    finally:
        project.close()

    port = free_port()
    server = subprocess.Popen(
        [*FLEUVE, "--project", str(folder), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.get(f"{base}/api/fleuve/v1/lake/snapshots").status_code == 401
        password = (folder / ".fleuve" / ADMIN_PASSWORD_FILE).read_text().strip()
        token = httpx.post(
            f"{base}/apiv2/login", json={"userName": "admin", "password": password}
        ).json()["token"]
        snaps = httpx.get(
            f"{base}/api/fleuve/v1/lake/snapshots", headers={"Authorization": f"_dremio{token}"}
        )
        assert snaps.status_code == 200 and len(snaps.json()["data"]) > 5
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
