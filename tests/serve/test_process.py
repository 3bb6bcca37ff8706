"""`fleuve serve` as a user runs it: one process, both protocols, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.flight as flight
import pytest

from fleuve.project import Project
from tests.conftest import free_port
from tests.serve.conftest import ADMIN_PASSWORD, make_project

pytestmark = pytest.mark.slow


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path / "proj", monkeypatch).close()
    http, grpc = free_port(), free_port()
    compat = ["--compat-ports"] if _port_free(8001) and _port_free(9200) else []
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleuve",
            "--project",
            str(tmp_path / "proj"),
            "serve",
            "--port",
            str(http),
            "--flight-port",
            str(grpc),
            *compat,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{http}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("the server did not start")

        if compat:  # the seed's ingestion port serves the same API, behind the same login
            assert (
                httpx.post("http://127.0.0.1:8001/api/v1/jobs/get", json={"id": 1}).status_code
                == 401
            )
            # The log search API at the root of Elasticsearch's port, behind the same login.
            assert httpx.get("http://127.0.0.1:9200/").status_code == 401
            token = httpx.post(
                f"http://127.0.0.1:{http}/apiv2/login",
                json={"userName": "admin", "password": ADMIN_PASSWORD},
            ).json()["token"]
            root = httpx.get("http://127.0.0.1:9200/", headers={"Authorization": f"Bearer {token}"})
            assert root.headers["X-Elastic-Product"] == "Elasticsearch"
            assert root.json()["version"]["number"].startswith("8.")

        client = flight.FlightClient(f"grpc://127.0.0.1:{grpc}")
        options = flight.FlightCallOptions(
            headers=[client.authenticate_basic_token("admin", ADMIN_PASSWORD)]
        )
        sql = b"SELECT i FROM range(5000000000) t(i) -- in flight at shutdown"
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        reader.read_chunk()

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(flight.FlightError):  # the stream ends: the query was cancelled
            while True:
                reader.read_chunk()
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert f"http://127.0.0.1:{http}/api/v3" in output and f"grpc://127.0.0.1:{grpc}" in output
    assert "Traceback" not in output
    assert _port_free(http) and _port_free(grpc)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleuve",
            "--project",
            str(tmp_path / "proj"),
            "audit",
            "--kind",
            "query",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"outcome": "cancelled"' in result.stdout and "in flight at shutdown" in result.stdout

    # The server's log records were written into the lake before it exited.
    project = Project.open(tmp_path / "proj")
    try:
        rows = project.lake.query(
            "SELECT count(*) AS n FROM logs.records WHERE pid = ?", [proc.pid]
        ).to_pylist()
    finally:
        project.close()
    assert rows[0]["n"] > 0
