"""The record of dbt runs: dbt_run_history with the timing of every node."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fleuve.errors import FleuveError, NotFound
from fleuve.metadata import Database, DbtRunHistory, DbtRunNode
from fleuve.metadata.models import utcnow
from fleuve.transform.dbt import DbtRun, relation_name

_RAN = {"success", "error", "pass", "fail", "warn", "runtime error"}


@dataclass
class NodeTiming:
    """How long one node of a recorded run took, and how it ended."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    seconds: float
    started_at: datetime | None
    completed_at: datetime | None
    relation: str | None = None
    failures: int | None = None
    message: str | None = None


@dataclass
class RunRecord:
    """One recorded dbt run: dbt_run_history's columns and the run's nodes."""

    run_id: str
    project_name: str | None
    started_at: datetime
    completed_at: datetime | None
    status: str
    models_run: int
    tests_run: int
    metadata: dict[str, Any]
    nodes: list[NodeTiming] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times in ISO 8601)."""
        out = {k: v for k, v in self.__dict__.items() if k != "nodes"}
        out["nodes"] = [dict(n.__dict__) for n in self.nodes]
        for item in (out, *out["nodes"]):
            for key in ("started_at", "completed_at"):
                if item[key] is not None:
                    item[key] = item[key].isoformat()
        return out


def record_start(db: Database, run: DbtRun, metadata: dict[str, Any] | None = None) -> None:
    """Insert the run as 'running' so that a run in progress is visible."""
    with db.session() as s:
        s.add(
            DbtRunHistory(
                run_id=run.run_id,
                project_name=run.project_name,
                started_at=run.started_at,
                status="running",
                meta={"command": run.command, **(metadata or {})},
            )
        )


def record_end(db: Database, run: DbtRun) -> None:
    """Store how the run ended, its counts and the timing of every node."""
    with db.session() as s:
        row = s.get(DbtRunHistory, run.run_id)
        if row is None:
            raise FleuveError(f"no dbt run {run.run_id} to complete in dbt_run_history")
        row.project_name = run.project_name or row.project_name
        row.completed_at = run.completed_at or utcnow()
        row.status = "succeeded" if run.success else "failed"
        row.models_run = sum(
            1
            for n in run.nodes
            if n.resource_type in ("model", "seed", "snapshot") and n.status in _RAN
        )
        row.tests_run = sum(1 for n in run.nodes if n.resource_type == "test" and n.status in _RAN)
        row.meta = {
            **row.meta,
            "invocation_id": run.invocation_id,
            "seconds": round(run.seconds, 3),
            "attempts": run.attempts,
            "statuses": run.counts(),
            "failures": [n.describe() for n in run.failed],
            "error": run.error,
        }
        row.nodes = [
            DbtRunNode(
                unique_id=n.unique_id,
                name=n.name,
                resource_type=n.resource_type,
                status=n.status,
                started_at=n.started_at,
                completed_at=n.completed_at,
                seconds=n.seconds,
                relation=n.relation,
                failures=n.failures,
                message=(n.message or "")[:4000] or None,
            )
            for n in run.nodes
        ]


def record_plain_run(db: Database, project_dir: Path) -> str | None:
    """Record the last plain `dbt` command run in `project_dir` (its run_results.json), once.

    Returns the run's id when it was new. Only the latest plain run can be seen: dbt keeps one
    run_results.json, so Fleuve picks it up before its own runs and when history is listed.
    """
    path = project_dir / "target" / "run_results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        run_id = results["metadata"]["invocation_id"]
    except (OSError, ValueError, KeyError):
        return None
    with db.session() as s:
        if s.get(DbtRunHistory, run_id) is not None:
            return None
        args = results.get("args") or {}
        nodes = [_plain_node(r) for r in results.get("results") or []]
        completed = _time(results["metadata"].get("generated_at")) or utcnow()
        started = _time(results["metadata"].get("invocation_started_at")) or completed
        failed = [n for n in nodes if n.status in ("error", "fail", "runtime error")]
        s.add(
            DbtRunHistory(
                run_id=run_id,
                project_name=None,
                started_at=started,
                completed_at=completed,
                status="failed" if failed else "succeeded",
                models_run=sum(1 for n in nodes if n.resource_type != "test" and n.status in _RAN),
                tests_run=sum(1 for n in nodes if n.resource_type == "test" and n.status in _RAN),
                meta={
                    "command": (args.get("invocation_command") or "dbt").split()[1:],
                    "source": "plain dbt",
                    "invocation_id": run_id,
                    "seconds": round(float(results.get("elapsed_time") or 0), 3),
                    "failures": [f"{n.name}: {n.status}" for n in failed],
                },
                nodes=nodes,
            )
        )
    return run_id


def _plain_node(result: dict[str, Any]) -> DbtRunNode:
    timing = {t["name"]: t for t in result.get("timing") or []}
    begun = timing.get("compile") or timing.get("execute") or {}
    ended = timing.get("execute") or timing.get("compile") or {}
    resource_type, _, rest = result["unique_id"].partition(".")
    return DbtRunNode(
        unique_id=result["unique_id"],
        name=rest.split(".")[1] if "." in rest else rest,
        resource_type=resource_type,
        status=str(result.get("status")),
        started_at=_time(begun.get("started_at")),
        completed_at=_time(ended.get("completed_at")),
        seconds=float(result.get("execution_time") or 0),
        relation=relation_name(result.get("relation_name")),
        failures=result.get("failures"),
        message=(result.get("message") or "")[:4000] or None,
    )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def run_history(db: Database, limit: int = 20) -> list[RunRecord]:
    """The most recent dbt runs, newest first, with their nodes."""
    with db.session() as s:
        rows = s.scalars(
            select(DbtRunHistory).order_by(DbtRunHistory.started_at.desc()).limit(limit)
        ).all()
        return [_record(r) for r in rows]


def get_run(db: Database, run_id: str) -> RunRecord:
    """One recorded dbt run by id (a unique prefix of it is enough)."""
    with db.session() as s:
        rows = s.scalars(
            select(DbtRunHistory).where(DbtRunHistory.run_id.startswith(run_id)).limit(2)
        ).all()
        if len(rows) != 1:
            raise NotFound(
                f"{'no' if not rows else 'more than one'} dbt run matches '{run_id}'",
                "list runs with `fleuve transform history` and give more of the id",
            )
        return _record(rows[0])


def node_timings(db: Database, name: str, limit: int = 20) -> list[NodeTiming]:
    """The latest timings of one model or test by name, newest first: its trend over runs."""
    with db.session() as s:
        rows = s.scalars(
            select(DbtRunNode)
            .where(DbtRunNode.name == name)
            .order_by(DbtRunNode.started_at.desc(), DbtRunNode.id.desc())
            .limit(limit)
        ).all()
        return [_timing(n) for n in rows]


def _record(row: DbtRunHistory) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        project_name=row.project_name,
        started_at=row.started_at,
        completed_at=row.completed_at,
        status=row.status,
        models_run=row.models_run,
        tests_run=row.tests_run,
        metadata=dict(row.meta or {}),
        nodes=[_timing(n) for n in row.nodes],
    )


def _timing(n: DbtRunNode) -> NodeTiming:
    return NodeTiming(
        unique_id=n.unique_id,
        name=n.name,
        resource_type=n.resource_type,
        status=n.status,
        seconds=n.seconds,
        started_at=n.started_at,
        completed_at=n.completed_at,
        relation=n.relation,
        failures=n.failures,
        message=n.message,
    )
