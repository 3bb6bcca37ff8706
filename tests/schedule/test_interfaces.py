"""`fleuve schedules`, `fleuve worker`'s refusal, the REST endpoints and the scheduler in serve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from fleuve.cli import cli
from fleuve.metadata import AuditEvent
from fleuve.project import Project
from fleuve.schedule import scheduler as sched
from fleuve.security import auth
from fleuve.serve.server import FleuveServer
from tests.schedule.conftest import make_project, sqlite_connection, wait_for

PASSWORD = "sched-pass-1234"
USERS = {"admin": ["admin"], "eng": ["engineer"], "viewer": ["viewer"]}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    folder = tmp_path_factory.mktemp("sched")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLEUVE_ADMIN_PASSWORD", PASSWORD)
        p = make_project(
            folder / "p",
            [sqlite_connection(folder / "src", "shop", "every_15_minutes")],
            schedules=[
                {"name": "tidy", "what": "lake_maintain", "after": ["shop"]},
                {
                    "name": "nightly",
                    "what": "pipeline",
                    "schedule": "0 1 * * *",
                    "timezone": "Europe/Paris",
                    "select": ["staging", "marts"],
                },
            ],
        )
    for name, roles in USERS.items():
        if name != "admin":
            auth.create_user(p.db, name, PASSWORD, roles)
    yield p
    p.close()


def audited(project: Project, target: str) -> list[tuple[str, str]]:
    """(action, user) of the schedule changes recorded in the audit trail for `target`."""
    with project.db.session() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.kind == "schedule", AuditEvent.target == target)
        )
        return [(e.action, e.username) for e in events]


def fleuve(project: Project, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["--project", str(project.settings.project_dir), *args], catch_exceptions=False
    )
    return result.exit_code, result.output


def test_cli_lists_pauses_resumes_and_runs_now(project: Project) -> None:
    code, out = fleuve(project, "schedules", "list", "--json")
    entries = {e["name"]: e for e in json.loads(out)["data"]}
    assert code == 0 and set(entries) == {"shop", "reflections", "tidy", "nightly"}
    assert (
        entries["nightly"]["kind"] == "pipeline"
        and entries["nightly"]["timezone"] == "Europe/Paris"
    )
    assert entries["tidy"]["state"] == "manual" and entries["tidy"]["after"] == ["shop"]
    code, out = fleuve(project, "schedules", "list")
    assert code == 0 and "every_15_minutes" in out and "never" in out

    code, out = fleuve(project, "schedules", "pause", "shop", "--user", "eng")
    assert code == 0 and "shop: paused" in out
    assert sched.describe_one(project, "shop")["pausedBy"] == "eng"
    code, out = fleuve(project, "schedules", "resume", "shop")
    assert code == 0 and "shop: scheduled" in out
    assert ("pause", "eng") in audited(project, "shop")
    assert ("resume", "cli:") in [(a, u[:4]) for a, u in audited(project, "shop")]

    code, out = fleuve(project, "schedules", "run-now", "shop")
    assert code == 0 and "shop: run" in out and "succeeded, job" in out
    code, out = fleuve(project, "schedules", "runs", "shop")
    assert code == 0 and "run_now by cli:" in out
    # What runs after `shop` was asked for, for the workers to start.
    assert sched.describe_one(project, "tidy")["state"] == "requested"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedules", "pause", "nope"], "no schedule named 'nope'"),
        (["schedules", "run-now", "nope"], "no schedule named 'nope'"),
        (["schedules", "runs", "nope"], "no schedule named 'nope'"),
        (["schedules", "pause", "shop", "--user", "viewer"], "MANAGE SCHEDULES"),
        (["schedules", "resume", "shop", "--user", "viewer"], "MANAGE SCHEDULES"),
        (["schedules", "run-now", "shop", "--user", "viewer"], "MANAGE SCHEDULES"),
        (["schedules", "list", "--user", "viewer"], "MONITOR"),
        (["schedules", "list", "--user", "ghost"], "unknown or disabled user 'ghost'"),
    ],
)
def test_cli_refusals_name_the_problem_and_the_fix(
    project: Project, args: list[str], message: str
) -> None:
    code, out = fleuve(project, *args)
    assert code == 1 and message in out and "Fix:" in out


@pytest.fixture(scope="module")
def served(project: Project) -> Iterator[str]:
    server = FleuveServer(project, host="127.0.0.1", http_port=0, flight_port=0)
    server.start()
    try:
        yield server.addresses.http
    finally:
        server.stop()


def login(http: str, user: str) -> dict[str, str]:
    resp = httpx.post(f"{http}/apiv2/login", json={"userName": user, "password": PASSWORD})
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['token']}"}


API = "/api/fleuve/v1/schedules"


def test_rest_lists_changes_and_runs_schedules(served: str, project: Project) -> None:
    eng = login(served, "eng")
    listed = httpx.get(f"{served}{API}", headers=eng).json()["data"]
    assert {e["name"] for e in listed} == {"shop", "reflections", "tidy", "nightly"}
    one = httpx.get(f"{served}{API}/nightly", headers=eng).json()
    assert one["schedule"] == "0 1 * * *" and one["nextRun"].endswith("+00:00")

    paused = httpx.post(f"{served}{API}/nightly/pause", headers=eng)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    resumed = httpx.post(f"{served}{API}/nightly/resume", headers=eng)
    assert resumed.json()["state"] == "scheduled"

    asked = httpx.post(f"{served}{API}/shop/run", headers=eng)
    assert asked.status_code == 202 and asked.json()["state"] in ("requested", "running")
    assert ("pause", "eng") in audited(project, "nightly") and ("run", "eng") in audited(
        project, "shop"
    )

    # The server's own scheduler starts it, then what runs after it.
    def ran(name: str) -> bool:
        runs = httpx.get(f"{served}{API}/{name}/runs", headers=eng).json()["data"]
        return any(
            r["trigger"].startswith(("run_now by eng", "after shop")) and r["status"] == "succeeded"
            for r in runs
        )

    wait_for(lambda: ran("shop"), 60, "the requested sync")
    wait_for(lambda: ran("tidy"), 60, "the work after it")


@pytest.mark.parametrize(
    ("method", "path", "user", "status", "message"),
    [
        ("get", f"{API}/nope", "eng", 404, "no schedule named 'nope'"),
        ("get", f"{API}/nope/runs", "eng", 404, "no schedule named 'nope'"),
        ("post", f"{API}/nope/pause", "eng", 404, "no schedule named 'nope'"),
        ("post", f"{API}/nope/resume", "eng", 404, "no schedule named 'nope'"),
        ("post", f"{API}/nope/run", "eng", 404, "no schedule named 'nope'"),
        ("get", API, "viewer", 403, "MONITOR"),
        ("get", f"{API}/shop", "viewer", 403, "MONITOR"),
        ("get", f"{API}/shop/runs", "viewer", 403, "MONITOR"),
        ("post", f"{API}/shop/pause", "viewer", 403, "MANAGE SCHEDULES"),
        ("post", f"{API}/shop/resume", "viewer", 403, "MANAGE SCHEDULES"),
        ("post", f"{API}/shop/run", "viewer", 403, "MANAGE SCHEDULES"),
        ("get", API, None, 401, "authentication required"),
        ("post", f"{API}/shop/run", None, 401, "authentication required"),
    ],
)
def test_rest_errors(
    served: str, method: str, path: str, user: str | None, status: int, message: str
) -> None:
    headers = login(served, user) if user else {}
    resp = getattr(httpx, method)(f"{served}{path}", headers=headers)
    assert resp.status_code == status and message in resp.json()["errorMessage"]
    assert resp.json()["moreInfo"]


def test_openapi_documents_every_schedule_endpoint_and_its_errors(served: str) -> None:
    spec = httpx.get(f"{served}/openapi.json", headers=login(served, "admin")).json()
    paths = {p: ops for p, ops in spec["paths"].items() if p.startswith(API)}
    assert set(paths) == {
        API,
        f"{API}/{{name}}",
        f"{API}/{{name}}/runs",
        f"{API}/{{name}}/pause",
        f"{API}/{{name}}/resume",
        f"{API}/{{name}}/run",
    }
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)
            if "{name}" in path:
                assert "404" in op["responses"], (method, path)


def test_a_worker_refuses_an_invalid_selection(tmp_path: Path) -> None:
    p = make_project(
        tmp_path / "p",
        schedules=[{"name": "odd", "what": "pipeline", "select": ["silver_layer"]}],
    )
    try:
        code, out = fleuve(p, "worker")
    finally:
        p.close()
    assert code == 1 and "selects 'silver_layer'" in out and "staging" in out


def test_connection_objects_carry_their_schedule_as_airbyte_does(served: str) -> None:
    headers = login(served, "eng")
    expected = {
        "scheduleType": "basic",
        "scheduleData": {"basicSchedule": {"timeUnit": "minutes", "units": 15}},
    }
    [listed] = httpx.get(f"{served}/api/fleuve/v1/connections", headers=headers).json()["data"]
    one = httpx.get(f"{served}/api/fleuve/v1/connections/shop", headers=headers).json()
    for obj in (listed, one):
        assert {k: obj[k] for k in expected} == expected and obj["schedule"] == "every_15_minutes"
