"""Alerts: each rule fires and resolves on a controllable clock, notifying a webhook receiver
and an SMTP server started here; one notification per transition, history kept."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from fleuve.cli import cli
from fleuve.config import load_settings
from fleuve.engine.query_jobs import JobStore, QueryJob
from fleuve.errors import ConfigError
from fleuve.ingest.sync import sync_connection
from fleuve.metadata.models import utcnow
from fleuve.metadata.observe import AlertEvent, AlertState
from fleuve.observe import alerts
from fleuve.observe.requests import CountRequests, RequestCounter
from fleuve.project import Project, init_project
from fleuve.schedule.clock import ManualClock
from fleuve.schedule.scheduler import Scheduler
from fleuve.transform.dbt import DbtRun, NodeResult
from fleuve.transform.history import record_end, record_start
from tests.conftest import free_port
from tests.schedule.conftest import sqlite_connection, wait_for


class Webhook:
    """A webhook receiver on loopback: every POST's path and JSON body."""

    def __init__(self) -> None:
        received = self.received = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.received if p == path]


class Mailbox:
    """What an SMTP server on loopback received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def make(
    folder: Path,
    webhook: Webhook,
    smtp_port: int,
    rules: list[dict[str, Any]],
    channels: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> Project:
    """A project with a good and a broken SQLite connection, notifying the receivers."""
    init_project(folder, "alerting")
    good = sqlite_connection(folder / "sources", "good")
    broken = {**sqlite_connection(folder / "sources", "broken"), "retry_on_failure": False}
    broken["source"] = {"type": "sqlite", "path": str(folder / "sources" / "gone.sqlite")}
    config = folder / "fleuve.yml"
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["connections"] = [good, broken]
    raw["alerts"] = {
        "channels": [
            {"name": "slack", "type": "webhook", "url": f"{webhook.url}/slack", "format": "slack"},
            {"name": "teams", "type": "webhook", "url": f"{webhook.url}/teams", "format": "teams"},
            {"name": "hook", "type": "webhook", "url": f"{webhook.url}/json"},
            {
                "name": "mail",
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp_port,
                "from": "fleuve@example.com",
                "to": ["ops@example.com"],
            },
            *channels,
        ],
        "rules": rules,
    }
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return Project.open(folder)


@pytest.fixture
def receivers(webhook: Webhook, mailbox: tuple[Mailbox, int]) -> tuple[Webhook, Mailbox, int]:
    return webhook, mailbox[0], mailbox[1]


def sync(project: Project, name: str) -> None:
    try:
        sync_connection(project.settings, project.lake, project.db, name)
    except Exception:
        assert name == "broken"


def notified(webhook: Webhook, mailbox: Mailbox) -> list[tuple[str, str]]:
    """(channel, state) of each notification received, from the JSON hook and the mailbox."""
    out = [("hook", b["status"]) for b in webhook.bodies("/json")]
    out += [("mail", m["Subject"].split("]")[0].strip("[").lower()) for m in mailbox.messages]
    return out


def history(project: Project) -> list[tuple[str, str, str]]:
    with project.db.session() as s:
        return [
            (e.rule, e.subject, e.state)
            for e in s.scalars(select(AlertEvent).order_by(AlertEvent.id))
        ]


def test_sync_failures_fire_after_for_dedup_and_resolve(tmp_path: Path, receivers: Any) -> None:
    webhook, mailbox, port = receivers
    project = make(
        tmp_path / "p",
        webhook,
        port,
        [
            {
                "name": "syncs",
                "kind": "sync_failures",
                "failures": 2,
                "window": "1h",
                "for": "5m",
                "severity": "critical",
                "description": "Check the source database.",
            }
        ],
    )
    clock = ManualClock(utcnow())
    sync(project, "broken")
    sync(project, "good")
    assert alerts.evaluate(project, clock.now()) == []  # one failure: below the threshold
    sync(project, "broken")
    assert alerts.evaluate(project, clock.now()) == []  # pending: the 5 minutes of `for`
    with project.db.session() as s:
        assert s.get(AlertState, ("syncs", "broken")).state == "pending"
        assert s.get(AlertState, ("syncs", "good")).state == "ok"
    clock.advance(minutes=5)
    fired = alerts.evaluate(project, clock.now())
    assert [(t.rule, t.subject, t.state) for t in fired] == [("syncs", "broken", "firing")]
    assert all(d["status"] == "sent" for d in fired[0].deliveries.values())
    assert notified(webhook, mailbox) == [("hook", "firing"), ("mail", "firing")]
    (doc,) = webhook.bodies("/json")
    assert doc["rule"] == "syncs" and doc["subject"] == "broken" and doc["severity"] == "critical"
    assert "2 failed syncs" in doc["summary"]
    (slack,) = webhook.bodies("/slack")
    assert list(slack) == ["text"] and "[FIRING] syncs broken" in slack["text"]
    (teams,) = webhook.bodies("/teams")
    assert teams["@type"] == "MessageCard" and teams["themeColor"] == "D93F0B"
    assert "Check the source database." in mailbox.messages[0].get_payload()
    assert mailbox.messages[0]["To"] == "ops@example.com"

    for _ in range(3):  # still firing: nobody is told twice
        clock.advance(minutes=10)
        assert alerts.evaluate(project, clock.now()) == []
    assert len(webhook.received) == 3 and len(mailbox.messages) == 1

    clock.advance(hours=1)  # the failures leave the window
    resolved = alerts.evaluate(project, clock.now())
    assert [(t.subject, t.state) for t in resolved] == [("broken", "resolved")]
    assert notified(webhook, mailbox) == [
        ("hook", "firing"),
        ("hook", "resolved"),
        ("mail", "firing"),
        ("mail", "resolved"),
    ]
    assert webhook.bodies("/teams")[1]["themeColor"] == "2EB886"
    assert history(project) == [("syncs", "broken", "firing"), ("syncs", "broken", "resolved")]
    with project.db.session() as s:
        events = list(s.scalars(select(AlertEvent)))
    assert all(e.deliveries["mail"] == {"status": "sent", "attempts": 1} for e in events)
    assert set(events[0].deliveries) == {"slack", "teams", "hook", "mail"}
    project.close()


def test_disk_usage_and_stale_sources(tmp_path: Path, receivers: Any) -> None:
    webhook, mailbox, port = receivers
    project = make(
        tmp_path / "p",
        webhook,
        port,
        [
            {"name": "disk", "kind": "disk_usage", "max_bytes": 1000, "notify": ["hook"]},
            {
                "name": "stale",
                "kind": "stale",
                "max_age": "6h",
                "what": ["sources"],
                "notify": ["hook", "mail"],
            },
        ],
    )
    start = utcnow()
    clock = ManualClock(start)
    assert alerts.evaluate(project, clock.now()) == []  # an empty lake, nothing synced yet
    sync(project, "good")  # Parquet files in the lake: over 1000 bytes
    fired = alerts.evaluate(project, clock.now())
    assert [(t.rule, t.subject, t.state) for t in fired] == [("disk", "lake", "firing")]
    assert "the lake holds" in fired[0].summary and "file system" in fired[0].summary

    clock.advance(hours=7)  # good was synced 7 hours ago by this clock
    fired = alerts.evaluate(project, clock.now())
    assert [(t.rule, t.subject, t.state) for t in fired] == [("stale", "source:good", "firing")]
    assert "connection 'good' last synced 7.0 h ago" in fired[0].summary

    # The operator raises the threshold; a new sync makes the source fresh again (the clock is
    # brought back to the time it ran).
    project.settings = load_settings(
        project.settings.project_dir,
        {
            "alerts.rules": [
                {"name": "disk", "kind": "disk_usage", "max_bytes": 10**12, "notify": ["hook"]},
                {
                    "name": "stale",
                    "kind": "stale",
                    "max_age": "6h",
                    "what": ["sources"],
                    "notify": ["hook", "mail"],
                },
            ]
        },
    )
    sync(project, "good")
    clock.set(utcnow())
    resolved = alerts.evaluate(project, clock.now())
    assert sorted((t.rule, t.state) for t in resolved) == [
        ("disk", "resolved"),
        ("stale", "resolved"),
    ]
    assert [b["status"] for b in webhook.bodies("/json")] == [
        "firing",
        "firing",
        "resolved",
        "resolved",
    ]
    assert [m["Subject"][:10] for m in mailbox.messages] == ["[FIRING] s", "[RESOLVED]"]
    assert webhook.bodies("/slack") == []  # rules name their channels
    project.close()


def test_slow_queries_api_errors_and_dbt_tests(tmp_path: Path, receivers: Any) -> None:
    webhook, mailbox, port = receivers
    project = make(
        tmp_path / "p",
        webhook,
        port,
        [
            {
                "name": "slow",
                "kind": "slow_queries",
                "p95_seconds": 2,
                "window": "15m",
                "min_queries": 5,
                "notify": ["hook"],
            },
            {
                "name": "errors",
                "kind": "api_errors",
                "max_error_ratio": 0.1,
                "window": "5m",
                "min_requests": 10,
                "notify": ["hook"],
            },
            {"name": "tests", "kind": "dbt_test_failures", "notify": ["hook"]},
        ],
    )
    clock = ManualClock(utcnow())
    # Query jobs recorded as the engine records them: 19 fast, then 5 of 3 s.
    store = JobStore(project.db, tmp_path / "results")
    for i in range(24):
        now = utcnow()
        store.add(
            QueryJob(
                id=str(uuid.uuid4()),
                user="admin",
                sql=f"SELECT {i}",
                state="COMPLETED",
                started_at=now,
                ended_at=now,
                planning_ms=1.0,
                execution_ms=3000.0 if i >= 19 else 5.0,
            )
        )
        if i == 18:
            store.flush()
            assert alerts.evaluate(project, clock.now()) == []
    store.flush()
    store.close()
    # HTTP answers counted by the middleware every served app has: 8 of 20 are 5xx.
    counter = RequestCounter(project.db)

    def boom(request: Any) -> PlainTextResponse:
        raise RuntimeError("boom")

    app = Starlette(
        routes=[Route("/ok", lambda request: PlainTextResponse("ok")), Route("/boom", boom)]
    )
    client = TestClient(CountRequests(app, counter), raise_server_exceptions=False)
    for i in range(20):
        assert client.get("/boom" if i % 5 < 2 else "/ok").status_code in (200, 500)
    counter.flush()
    # A dbt run whose test failed, recorded as Fleuve records its runs.
    failing = DbtRun(
        ["build"],
        success=False,
        seconds=1.0,
        completed_at=utcnow(),
        nodes=[
            NodeResult("model.shop.orders", "orders", "model", "success", 0.5),
            NodeResult("test.shop.not_null_orders_id", "not_null_orders_id", "test", "fail", 0.1),
            NodeResult("test.shop.unique_orders_id", "unique_orders_id", "test", "pass", 0.1),
        ],
    )
    record_start(project.db, failing)
    record_end(project.db, failing)

    fired = alerts.evaluate(project, clock.now())
    assert sorted((t.rule, t.state) for t in fired) == [
        ("errors", "firing"),
        ("slow", "firing"),
        ("tests", "firing"),
    ]
    summaries = {t.rule: t.summary for t in fired}
    assert "p95 is 3.001 s" in summaries["slow"] and "24 queries" in summaries["slow"]
    assert "8 of 20 HTTP answers were server errors" in summaries["errors"]
    assert "1 of 2 dbt tests failed" in summaries["tests"]
    assert "not_null_orders_id" in summaries["tests"]

    passing = DbtRun(
        ["test"],
        success=True,
        seconds=1.0,
        completed_at=utcnow(),
        nodes=[
            NodeResult("test.shop.not_null_orders_id", "not_null_orders_id", "test", "pass", 0.1),
        ],
    )
    record_start(project.db, passing)
    record_end(project.db, passing)
    clock.advance(minutes=20)  # the queries and the answers leave their windows
    resolved = alerts.evaluate(project, clock.now())
    assert sorted((t.rule, t.state) for t in resolved) == [
        ("errors", "resolved"),
        ("slow", "resolved"),
        ("tests", "resolved"),
    ]
    assert len(webhook.bodies("/json")) == 6 and mailbox.messages == []
    project.close()


def test_processes_evaluating_together_notify_once(tmp_path: Path, receivers: Any) -> None:
    webhook, _mailbox, port = receivers
    first = make(
        tmp_path / "p",
        webhook,
        port,
        [{"name": "syncs", "kind": "sync_failures", "failures": 1, "notify": ["hook"]}],
    )
    sync(first, "broken")
    others = [Project.open(tmp_path / "p") for _ in range(3)]
    now = utcnow()
    barrier = threading.Barrier(4)
    results: list[list[alerts.Transition]] = []

    def run(project: Project) -> None:
        barrier.wait()
        results.append(alerts.evaluate(project, now))

    threads = [threading.Thread(target=run, args=(p,)) for p in [first, *others]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert [b["status"] for b in webhook.bodies("/json")] == ["firing"]
    assert history(first) == [("syncs", "broken", "firing")]
    for p in [first, *others]:
        p.close()


def test_failed_delivery_is_retried_recorded_and_keeps_its_secret(
    tmp_path: Path, receivers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    webhook, _mailbox, port = receivers
    webhook.status = 503
    closed = free_port()
    project = make(
        tmp_path / "p",
        webhook,
        port,
        [{"name": "syncs", "kind": "sync_failures", "failures": 1, "notify": ["flaky", "down"]}],
        [
            {"name": "flaky", "type": "webhook", "url": f"{webhook.url}/json", "retries": 1},
            {
                "name": "down",
                "type": "webhook",
                "url": f"http://127.0.0.1:{closed}/s3cr3t-token",
                "retries": 0,
            },
        ],
    )
    sync(project, "broken")
    with caplog.at_level(logging.WARNING, logger="fleuve.observe"):
        (fired,) = alerts.evaluate(project, utcnow())
    assert fired.deliveries["flaky"] == {
        "status": "failed",
        "attempts": 2,
        "error": "RuntimeError: the webhook answered HTTP 503",
    }
    assert fired.deliveries["down"]["status"] == "failed"
    assert len(webhook.bodies("/json")) == 2  # tried twice
    logged = caplog.text + json.dumps(alerts.history(project))
    assert "s3cr3t-token" not in logged
    assert alerts.history(project)[0]["deliveries"]["flaky"]["status"] == "failed"
    project.close()


def test_the_scheduler_evaluates_on_its_clock(tmp_path: Path, receivers: Any) -> None:
    webhook, _mailbox, port = receivers
    project = make(
        tmp_path / "p",
        webhook,
        port,
        [
            {
                "name": "syncs",
                "kind": "sync_failures",
                "failures": 1,
                "for": "2m",
                "notify": ["hook"],
            }
        ],
    )
    sync(project, "broken")
    clock = ManualClock(utcnow())
    scheduler = Scheduler(project, clock=clock)
    try:
        scheduler.tick()
        wait_for(lambda: alerts.states(project)[0]["state"] == "pending", what="pending")
        clock.advance(seconds=10)
        scheduler.tick()  # before alerts.evaluate_every (30 s): not evaluated again
        clock.advance(minutes=2)
        scheduler.tick()
        wait_for(lambda: len(webhook.bodies("/json")) == 1, what="the firing notification")
    finally:
        scheduler.stop()
    assert alerts.states(project)[0]["state"] == "firing"
    project.close()


def test_cli_lists_alerts_and_writes_prometheus_rules(tmp_path: Path, receivers: Any) -> None:
    webhook, _mailbox, port = receivers
    rules = [
        {
            "name": "syncs",
            "kind": "sync_failures",
            "failures": 1,
            "for": "5m",
            "connections": ["broken"],
        },
        {"name": "disk", "kind": "disk_usage", "max_bytes": 10**12, "max_percent": 95},
        {"name": "slow", "kind": "slow_queries", "p95_seconds": 2.5, "window": "15m"},
        {"name": "errors", "kind": "api_errors", "window": "5m"},
        {"name": "tests", "kind": "dbt_test_failures", "severity": "critical"},
        {"name": "stale", "kind": "stale", "max_age": "6h", "connections": ["good"]},
    ]
    project = make(tmp_path / "p", webhook, port, rules)
    sync(project, "broken")
    alerts.evaluate(project, utcnow())
    alerts.evaluate(project, utcnow() + timedelta(minutes=6))
    project.close()
    runner = CliRunner()
    base = ["--project", str(tmp_path / "p")]
    listed = runner.invoke(cli, [*base, "alerts"])
    assert listed.exit_code == 0, listed.output
    assert "firing" in listed.output and "broken" in listed.output
    as_json = json.loads(runner.invoke(cli, [*base, "alerts", "list", "--json"]).output)
    assert [r["state"] for r in as_json["data"]] == ["firing", "ok", "ok", "ok", "ok", "ok"]
    past = runner.invoke(cli, [*base, "alerts", "history"])
    assert "syncs" in past.output and "firing" in past.output and "mail sent" in past.output

    out = tmp_path / "fleuve-rules.yml"
    written = runner.invoke(cli, [*base, "observe", "prometheus-rules", "-o", str(out)])
    assert written.exit_code == 0, written.output
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    by_name = {r["alert"]: r for r in doc["groups"][0]["rules"]}
    assert by_name["Syncs"]["expr"] == (
        'sum by (connection) (increase(airbyte_sync_failures_total{connection=~"broken"}[1h])) >= 1'
    )
    assert by_name["Syncs"]["for"] == "5m"
    assert "dremio_query_duration_seconds_bucket[15m]" in by_name["Slow"]["expr"]
    assert "minio_disk_usage_bytes" in by_name["Disk"]["expr"]
    assert by_name["Tests"]["labels"]["severity"] == "critical"
    assert set(by_name) == {
        "Syncs",
        "Disk",
        "DiskFilesystem",
        "Slow",
        "Errors",
        "Tests",
        "StaleSources",
        "StaleReflections",
    }
    check = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    dashboard = json.loads(runner.invoke(cli, ["observe", "grafana-dashboard"]).output)
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in (
        "airbyte_sync_failures_total",
        "minio_disk_usage_bytes",
        "dremio_query_duration_seconds_bucket",
        "superset_dashboard_load_time_bucket",
    ):
        assert metric in exprs
    titles = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert titles == ["Sync status", "Storage capacity", "Query performance", "Dashboards"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "d", "kind": "disk_usage", "max_percent": 90, "window": "1h"},
            "unknown key 'alerts.rules.0.window'",
        ),
        (
            {"name": "d", "kind": "disk_usage"},
            r"rule 'd' \(disk_usage\) needs max_bytes or max_percent",
        ),
        ({"name": "s", "kind": "sync_failures", "for": "5 minutes"}, "is not a duration"),
        (
            {"name": "s", "kind": "sync_failures", "notify": ["pager"]},
            "notifies 'pager', which is no channel",
        ),
    ],
)
def test_rules_are_checked(tmp_path: Path, rule: dict[str, Any], message: str) -> None:
    (tmp_path / "fleuve.yml").write_text(
        yaml.safe_dump({"alerts": {"rules": [rule]}}), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path)


def test_a_channel_refused_keeps_its_secrets(tmp_path: Path) -> None:
    channel = {"name": "m", "type": "email", "host": "smtp.example.com", "password": "hunter2"}
    (tmp_path / "fleuve.yml").write_text(
        yaml.safe_dump({"alerts": {"channels": [channel]}}), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="channel 'm' sends email without") as refused:
        load_settings(tmp_path)
    assert "hunter2" not in f"{refused.value.message} {refused.value.fix}"
