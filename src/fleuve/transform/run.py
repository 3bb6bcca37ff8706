"""Fleuve-driven dbt commands: retried past lake conflicts, failing rows kept, every run recorded."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml

from fleuve.config import Settings
from fleuve.lake import lost_race
from fleuve.metadata import Database
from fleuve.transform.dbt import DbtRun, NodeEvent, run_dbt
from fleuve.transform.history import record_end, record_plain_run, record_start

log = logging.getLogger("fleuve.transform")


def run_transform(
    settings: Settings,
    args: list[str],
    *,
    db: Database | None = None,
    on_event: Callable[[NodeEvent], None] | None = None,
    metadata: dict[str, Any] | None = None,
    retries: int | None = None,
) -> DbtRun:
    """Run a dbt command the way Fleuve does.

    Nodes that lost a commit race with another lake writer are resumed with `dbt retry` after a
    bounded backoff, up to `retries` times (lake.commit_retries by default). Tests that found
    failing rows are run again with `--store-failures`, so the rows wait in
    `test_failures.<test>`. With `db`, the run and each node's timing go to dbt_run_history.
    """
    pending = DbtRun(command=list(args), success=False, seconds=0.0)
    pending.project_name = dbt_project_name(settings)
    context = {
        "fleuve_project": settings.name,
        "catalog": "sqlite" if settings.lake_catalog.startswith("sqlite:") else "postgresql",
        **(metadata or {}),
    }
    if db is not None:
        # A plain `dbt` run since Fleuve's last one joins the history before it is overwritten.
        record_plain_run(db, settings.path(settings.transform.project_dir))
        record_start(db, pending, context)
    retries = settings.lake.commit_retries if retries is None else retries
    try:
        run = run_dbt(settings, args, on_event=on_event)
        attempt = 0
        while not run.success and attempt < retries and _lost_races(run):
            # A SQLite catalog refuses a commit at once while another process writes (the busy
            # timeout does not apply to a read turning into a write), so the run waits it out.
            delay = min(4.0, 0.25 * 2**attempt) * (0.5 + random.random())
            log.warning(
                "dbt lost a commit race with another lake writer, resuming",
                extra={
                    "attempt": attempt + 1,
                    "delay_s": round(delay, 2),
                    "summary": run.summary(),
                },
            )
            time.sleep(delay)
            # `dbt retry` re-runs the failed nodes and those skipped because of them.
            run.merge(run_dbt(settings, ["retry"] if run.nodes else args, on_event=on_event))
            attempt += 1
        if run.failed_tests and "--store-failures" not in args:
            _store_failures(settings, run)
    except BaseException as exc:
        if db is not None:
            pending.error = f"{type(exc).__name__}: {exc}"
            pending.completed_at = datetime.now(UTC)
            record_end(db, pending)
        raise
    run.run_id, run.started_at = pending.run_id, pending.started_at
    run.project_name = run.project_name or pending.project_name
    if db is not None:
        record_end(db, run)
    return run


def dbt_project_name(settings: Settings) -> str | None:
    """The `name:` of the project's dbt_project.yml."""
    path = settings.path(settings.transform.project_dir) / "dbt_project.yml"
    try:
        return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("name")
    except (OSError, yaml.YAMLError):
        return None


def _lost_races(run: DbtRun) -> bool:
    """True when every failure of the run is a commit conflict or a locked catalog."""
    if run.failed:
        return all(n.status == "error" and lost_race(n.message) for n in run.failed)
    return lost_race(run.error)


def _store_failures(settings: Settings, run: DbtRun) -> None:
    """Run the failed tests again with --store-failures and note where their rows went."""
    failed = {n.name: n for n in run.failed_tests}
    stored = run_dbt(settings, ["test", "--select", *failed, "--store-failures"])
    for node in stored.nodes:
        if node.name in failed and node.relation:
            failed[node.name].relation = node.relation
    if any(n.status == "error" for n in stored.nodes) or stored.error:
        log.warning(
            "could not store every test's failing rows", extra={"summary": stored.summary()}
        )
