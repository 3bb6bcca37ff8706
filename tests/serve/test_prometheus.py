"""A real Prometheus server scrapes two `fleuve serve` processes of one project: PromQL finds
the seed's metric names with the values of the syncs and queries that were run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleuve.security import auth
from tests.conftest import free_port
from tests.serve.conftest import ADMIN_PASSWORD, VISITS, make_project
from tests.serve.test_metrics import SEED_NAMES

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="needs Debian's prometheus package (apt-get install prometheus; .ci/run installs "
        "it when missing)",
    ),
]


@contextmanager
def running(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """A child process for the test's length, stopped (then killed) at the end."""
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(check: Any, what: str, timeout: float = 60) -> Any:
    """The first truthy answer of `check()`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = check()
        except httpx.TransportError:
            answer = None
        if answer:
            return answer
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def serve(project: Path, http: int, log: Path) -> Any:
    """`fleuve serve` on `http` (and a free Flight port), as a user starts it."""
    args = [sys.executable, "-m", "fleuve", "--project", str(project), "serve"]
    args += ["--port", str(http), "--flight-port", str(free_port())]
    return running(args, log, env={**os.environ, "COLUMNS": "200"})


def promql(prometheus: str, query: str) -> list[dict[str, Any]]:
    """The result vector of an instant PromQL query."""
    body = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def values(prometheus: str, query: str) -> dict[str, float]:
    """{instance: value} of a query's result."""
    return {
        r["metric"].get("instance", ""): float(r["value"][1]) for r in promql(prometheus, query)
    }


def test_prometheus_scrapes_the_seed_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "proj"
    project = make_project(folder, monkeypatch)
    # Prometheus scrapes with the personal access token of an operator (MONITOR included).
    auth.create_user(project.db, "prometheus", "scraper-pass-1234", ["engineer"])
    token, _ = auth.create_personal_token(project.db, "prometheus", "prometheus scrape")
    project.close()
    first, second, web = free_port(), free_port(), free_port()
    (tmp_path / "token").write_text(token, encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(
        f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fleuve
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {tmp_path / "token"}
    static_configs:
      - targets: ["127.0.0.1:{first}", "127.0.0.1:{second}"]
""",
        encoding="utf-8",
    )
    prometheus = f"http://127.0.0.1:{web}"
    prometheus_args = [
        "prometheus",
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{web}",
    ]
    with (
        serve(folder, first, tmp_path / "first.log"),
        serve(folder, second, tmp_path / "second.log"),
        running(prometheus_args, tmp_path / "prometheus.log"),
    ):
        a, b = f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"
        for url in (a, b):
            wait_until(lambda u=url: httpx.get(f"{u}/health").status_code == 200, "fleuve serve")
        wait_until(lambda: httpx.get(f"{prometheus}/-/ready").status_code == 200, "prometheus")
        wait_until(
            lambda: (
                values(prometheus, 'up{job="fleuve"}')
                == {f"127.0.0.1:{first}": 1.0, f"127.0.0.1:{second}": 1.0}
            ),
            "both targets up (authenticated scrapes)",
        )

        # A sync through the first process, SQL through both.
        token_a, token_b = (login(url) for url in (a, b))
        api_a = httpx.Client(base_url=a, headers={"Authorization": f"Bearer {token_a}"}, timeout=60)
        api_b = httpx.Client(base_url=b, headers={"Authorization": f"Bearer {token_b}"}, timeout=60)
        job = api_a.post("/api/v1/connections/sync", json={"connectionId": "site_drops"}).json()
        wait_until(
            lambda: (
                api_a.post("/api/v1/jobs/get", json={"id": job["job"]["id"]}).json()["job"][
                    "status"
                ]
                == "succeeded"
            ),
            "the sync",
        )
        ran = [
            run(api_a, "SELECT count(*) FROM gold.fct_daily_revenue"),
            run(api_b, "SELECT store_id, sum(amount) FROM gold.fct_daily_revenue GROUP BY 1"),
            run(api_b, "SELECT 1"),
        ]
        assert ran == ["COMPLETED"] * 3

        # Project-wide families: every process answers the whole project's values.
        wait_until(
            lambda: (
                set(
                    values(
                        prometheus, 'airbyte_records_synced_total{connection="site_drops"}'
                    ).values()
                )
                == {float(VISITS)}
                and len(values(prometheus, "airbyte_records_synced_total")) == 2
            ),
            f"{VISITS} records synced, seen by both processes",
        )
        wait_until(
            lambda: (
                values(
                    prometheus,
                    'max(dremio_query_duration_seconds_count{state="COMPLETED",query_type="REST"})',
                )
                == {"": 3.0}
            ),
            "three queries run",
        )
        buckets = values(
            prometheus,
            'max by (le) (dremio_query_duration_seconds_bucket{state="COMPLETED",le="+Inf"})',
        )
        assert buckets == {"": 3.0}
        assert values(prometheus, "max(airbyte_sync_failures_total)") == {"": 0.0}
        assert values(prometheus, 'max(minio_disk_usage_bytes{layer="bronze"})')[""] > 0
        # Per-process families: Prometheus adds the processes up.
        wait_until(
            lambda: (
                values(
                    prometheus, 'sum(fleuve_http_requests_total{route="/api/v3/sql",status="200"})'
                )
                == {"": 3.0}
            ),
            "the three SQL requests, counted by the processes that served them",
        )
        # Every one of the seed's names is known to Prometheus, with its type.
        metadata = httpx.get(f"{prometheus}/api/v1/metadata").json()["data"]
        for name in SEED_NAMES:
            assert name in metadata, name
        assert metadata["dremio_query_duration_seconds"][0]["type"] == "histogram"
        assert metadata["airbyte_records_synced_total"][0]["type"] == "counter"


def login(url: str) -> str:
    """A REST session token of the admin."""
    resp = httpx.post(f"{url}/apiv2/login", json={"userName": "admin", "password": ADMIN_PASSWORD})
    resp.raise_for_status()
    return resp.json()["token"]


def run(api: httpx.Client, sql: str) -> str:
    """Run SQL through the REST API v3 and wait for its final state."""
    job_id = api.post("/api/v3/sql", json={"sql": sql}).json()["id"]
    return wait_until(
        lambda: (
            (state := api.get(f"/api/v3/job/{job_id}").json()["jobState"])
            in ("COMPLETED", "FAILED", "CANCELED")
            and state
        ),
        f"job {job_id}",
    )
