"""Alerts: rules of fleuve.yml evaluated on the platform's own records, their states (ok, pending,
firing), their history, and the notifications sent when one fires or resolves.

Each rule finds the subjects it watches (a connection, a reflection, the lake, the API) and
whether its condition holds for each. A condition holding for the rule's `for` duration fires
the alert; the condition ending resolves it. The state lives in the metadata database and every
change of state is a compare-and-set there, so that when several processes evaluate the same
rules, exactly one of them records the transition and notifies (one notification per
transition). The scheduler's loop evaluates the rules every `alerts.evaluate_every`, on its
clock; `fleuve alerts evaluate` does it once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from fleuve.config import AlertRule
from fleuve.metadata import DbtRunHistory, Job
from fleuve.metadata.database import rows_changed
from fleuve.metadata.engine import EngineJob, EngineReflection
from fleuve.metadata.observe import AlertEvent, AlertState
from fleuve.observe import notify
from fleuve.observe.requests import error_ratio
from fleuve.project import Project

log = logging.getLogger("fleuve.observe")
PLATFORM = ""  # the subject of rules about the platform as a whole
# As the metrics count them: a sync stopped half-way failed too; a query's final states.
SYNC_FAILED = ("failed", "incomplete")
QUERY_FINAL = ("COMPLETED", "FAILED", "CANCELED")


@dataclass
class Finding:
    """Whether a rule's condition holds for one subject, with the value it looked at."""

    subject: str
    active: bool
    value: float | None
    summary: str


@dataclass
class Transition:
    """An alert that fired or resolved in one evaluation, and how its notifications went."""

    rule: str
    subject: str
    state: str  # firing or resolved
    at: datetime
    summary: str
    event_id: int
    deliveries: dict[str, Any] = field(default_factory=dict)


# -- the rules --------------------------------------------------------------------------------


def _sync_failures(project: Project, rule: AlertRule, now: datetime) -> list[Finding]:
    """Failed sync jobs of each connection within the window."""
    since = now - timedelta(seconds=rule.window_seconds)
    watched = rule.connections or [c.name for c in project.settings.connections]
    with project.db.session() as s:
        query = (
            select(Job.config_id, func.count())
            .where(Job.config_type == "sync", Job.status.in_(SYNC_FAILED), Job.updated_at > since)
            .group_by(Job.config_id)
        )
        if rule.connections:
            query = query.where(Job.config_id.in_(rule.connections))
        counts = dict(s.execute(query).all())
    return [
        Finding(
            name,
            counts.get(name, 0) >= rule.failures,
            counts.get(name, 0),
            f"connection '{name}': {counts.get(name, 0)} failed syncs in the last {rule.window}",
        )
        for name in dict.fromkeys([*watched, *counts])
    ]


def _disk_usage(project: Project, rule: AlertRule, now: datetime) -> list[Finding]:
    """Bytes of lake data, and the share of its file system in use (a local data path)."""
    settings = project.settings
    percent = None
    if settings.lake.on_s3:
        if rule.max_percent is not None:
            raise ValueError(
                "max_percent needs a local lake.data_path; an S3 bucket has no file system share"
            )
        used = sum(project.lake.layer_sizes().values())
    else:
        root = Path(settings.lake_data_path)
        used = _folder_bytes(root)
        disk = shutil.disk_usage(root)
        percent = 100.0 * (disk.total - disk.free) / disk.total if disk.total else 0.0
    over_bytes = rule.max_bytes is not None and used > rule.max_bytes
    over_percent = (
        rule.max_percent is not None and percent is not None and percent > rule.max_percent
    )
    share = f" ({percent:.1f}% of its file system in use)" if percent is not None else ""
    return [
        Finding(
            "lake",
            over_bytes or over_percent,
            float(used) if rule.max_bytes is not None else percent,
            f"the lake holds {_size(used)}{share}",
        )
    ]


def _slow_queries(project: Project, rule: AlertRule, now: datetime) -> list[Finding]:
    """The 95th percentile of the time of queries that ended within the window."""
    since = now - timedelta(seconds=rule.window_seconds)
    with project.db.session() as s:
        rows = s.execute(
            select(
                EngineJob.planning_ms,
                EngineJob.execution_ms,
                EngineJob.started_at,
                EngineJob.ended_at,
            ).where(EngineJob.ended_at > since, EngineJob.state.in_(QUERY_FINAL))
        ).all()
    # Planning and running, as dremio_query_duration_seconds counts it; the span of the job
    # when neither was measured (a query refused before it planned).
    seconds = sorted(
        ((planning or 0) + (running or 0)) / 1000
        if planning is not None or running is not None
        else (ended - (started or ended)).total_seconds()
        for planning, running, started, ended in rows
        if ended is not None
    )
    if len(seconds) < rule.min_queries:
        return [Finding(PLATFORM, False, None, f"{len(seconds)} queries in the last {rule.window}")]
    p95 = seconds[math.ceil(0.95 * len(seconds)) - 1]
    return [
        Finding(
            PLATFORM,
            p95 > rule.p95_seconds,
            p95,
            f"queries' p95 is {p95:.3f} s over the last {rule.window} ({len(seconds)} queries; "
            f"threshold {rule.p95_seconds} s)",
        )
    ]


def _api_errors(project: Project, rule: AlertRule, now: datetime) -> list[Finding]:
    """The share of HTTP answers that were server errors within the window."""
    total, errors = error_ratio(project.db, now - timedelta(seconds=rule.window_seconds))
    ratio = errors / total if total else 0.0
    return [
        Finding(
            PLATFORM,
            total >= rule.min_requests and ratio > rule.max_error_ratio,
            ratio,
            f"{errors} of {total} HTTP answers were server errors ({ratio:.1%}) in the last "
            f"{rule.window}",
        )
    ]


def _dbt_test_failures(project: Project, rule: AlertRule, now: datetime) -> list[Finding]:
    """The failed tests of the latest finished dbt run that ran tests."""
    with project.db.session() as s:
        run = s.scalars(
            select(DbtRunHistory)
            .where(DbtRunHistory.tests_run > 0, DbtRunHistory.completed_at.is_not(None))
            .order_by(DbtRunHistory.completed_at.desc())
            .limit(1)
        ).one_or_none()
        failed = (
            [
                n.name
                for n in run.nodes
                if n.resource_type == "test" and n.status in ("fail", "error", "runtime error")
            ]
            if run
            else []
        )
    if run is None:
        return [Finding(PLATFORM, False, None, "no dbt run has run tests")]
    listed = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
    return [
        Finding(
            PLATFORM,
            bool(failed),
            len(failed),
            f"{len(failed)} of {run.tests_run} dbt tests failed in run {run.run_id}"
            + (f": {listed}" if failed else ""),
        )
    ]


def _stale(project: Project, rule: AlertRule, now: datetime) -> list[Finding]:
    """Sources whose last successful sync, and reflections whose last refresh, are too old."""
    max_age = timedelta(seconds=rule.max_age_seconds)
    found: list[Finding] = []
    with project.db.session() as s:
        if "sources" in rule.what:
            watched = rule.connections or [c.name for c in project.settings.connections]
            last = dict(
                s.execute(
                    select(Job.config_id, func.max(Job.updated_at))
                    .where(
                        Job.config_type == "sync",
                        Job.status == "succeeded",
                        Job.config_id.in_(watched),
                    )
                    .group_by(Job.config_id)
                ).all()
            )
            for name in watched:
                # A connection never synced has no age yet: it is not watched until it is.
                if (at := last.get(name)) is not None:
                    found.append(
                        _age(f"source:{name}", f"connection '{name}'", "synced", at, now, max_age)
                    )
        if "reflections" in rule.what:
            for name, at in s.execute(
                select(EngineReflection.name, EngineReflection.refreshed_at).where(
                    EngineReflection.enabled.is_(True), EngineReflection.refreshed_at.is_not(None)
                )
            ).all():
                if at is None:  # excluded by the query; says so to the type checker
                    continue
                found.append(
                    _age(
                        f"reflection:{name}", f"reflection '{name}'", "refreshed", at, now, max_age
                    )
                )
    return found


def _age(
    subject: str, what: str, done: str, at: datetime, now: datetime, max_age: timedelta
) -> Finding:
    age = now - at
    return Finding(
        subject,
        age > max_age,
        age.total_seconds(),
        f"{what} last {done} {_duration(age.total_seconds())} ago ({at.isoformat(timespec='seconds')})",
    )


CHECKS: dict[str, Callable[[Project, AlertRule, datetime], list[Finding]]] = {
    "sync_failures": _sync_failures,
    "disk_usage": _disk_usage,
    "slow_queries": _slow_queries,
    "api_errors": _api_errors,
    "dbt_test_failures": _dbt_test_failures,
    "stale": _stale,
}


# -- evaluation -------------------------------------------------------------------------------


def evaluate(project: Project, now: datetime) -> list[Transition]:
    """Evaluate every rule at `now`, record the alerts that fired or resolved, and notify."""
    transitions: list[Transition] = []
    for rule in project.settings.alerts.rules:
        try:
            findings = CHECKS[rule.kind](project, rule, now)
        except Exception as exc:
            # One rule that cannot be evaluated (its data unreachable) leaves the others be.
            log.warning(
                "alert rule could not be evaluated",
                extra={"rule": rule.name, "error": str(exc).splitlines()[0] if str(exc) else ""},
            )
            continue
        transitions += _advance(project, rule, findings, now)
    for transition in transitions:
        _notify(project, transition)
    return transitions


def _advance(
    project: Project, rule: AlertRule, findings: list[Finding], now: datetime
) -> list[Transition]:
    """Move each subject's state by its finding; a subject no longer found is no longer active."""
    with project.db.session() as s:
        states = {
            st.subject: st
            for st in s.scalars(select(AlertState).where(AlertState.rule == rule.name))
        }
    by_subject = {f.subject: f for f in findings}
    for subject, st in states.items():
        if subject not in by_subject and st.state != "ok":
            by_subject[subject] = Finding(subject, False, None, st.summary or "")
    out: list[Transition] = []
    for finding in by_subject.values():
        state = states.get(finding.subject)
        if state is None:
            _create(project, rule.name, finding.subject, now)
            current, since = "ok", None
        else:
            current, since = state.state, state.active_since
        target = current
        if finding.active:
            if current == "ok":
                since = now
                target = "firing" if rule.for_seconds <= 0 else "pending"
            elif (
                current == "pending"
                and since is not None
                and ((now - since).total_seconds() >= rule.for_seconds)
            ):
                target = "firing"
        else:
            target = "ok"
        moved = _move(project, rule, finding, current, target, since, now)
        if moved is not None:
            out.append(moved)
    return out


def _create(project: Project, rule: str, subject: str, now: datetime) -> None:
    """Insert the subject's state as ok, unless another process just did."""
    try:
        with project.db.session() as s:
            s.execute(
                insert(AlertState).values(rule=rule, subject=subject, state="ok", updated_at=now)
            )
    except IntegrityError:
        pass


def _move(
    project: Project,
    rule: AlertRule,
    finding: Finding,
    current: str,
    target: str,
    since: datetime | None,
    now: datetime,
) -> Transition | None:
    """Change the state from `current` to `target` if no other process changed it first; the
    history row of a firing or resolving alert is written in the same transaction."""
    key = (AlertState.rule == rule.name) & (AlertState.subject == finding.subject)
    values: dict[str, Any] = {
        "state": target,
        "value": finding.value,
        "summary": finding.summary,
        "updated_at": now,
        "active_since": since if target != "ok" else None,
    }
    if target == "firing" and current != "firing":
        values["fired_at"] = now
    event = None
    if target == "firing" and current != "firing":
        event = "firing"
    elif target == "ok" and current == "firing":
        event = "resolved"
    with project.db.session() as s:
        changed = rows_changed(
            s, update(AlertState).where(key, AlertState.state == current).values(**values)
        )
        if not changed or event is None:
            return None
        row = AlertEvent(
            rule=rule.name,
            subject=finding.subject,
            state=event,
            at=now,
            severity=rule.severity,
            value=finding.value,
            summary=finding.summary,
            deliveries={},
        )
        s.add(row)
        s.flush()
        event_id = row.id
    log.info(
        f"alert {event}",
        extra={"rule": rule.name, "subject": finding.subject, "summary": finding.summary},
    )
    return Transition(rule.name, finding.subject, event, now, finding.summary, event_id)


def _notify(project: Project, transition: Transition) -> None:
    """Send the transition to the rule's channels and record how each delivery went."""
    alerts = project.settings.alerts
    rule = next(r for r in alerts.rules if r.name == transition.rule)
    channels = [c for c in alerts.channels if rule.notify is None or c.name in rule.notify]
    message = notify.Message(
        project=project.settings.name,
        rule=rule.name,
        kind=rule.kind,
        subject=transition.subject,
        state=transition.state,
        severity=rule.severity,
        summary=transition.summary,
        description=rule.description,
        at=transition.at,
    )
    for channel in channels:
        transition.deliveries[channel.name] = notify.deliver(channel, message)
    with project.db.session() as s:
        s.execute(
            update(AlertEvent)
            .where(AlertEvent.id == transition.event_id)
            .values(deliveries=transition.deliveries)
        )


class AlertLoop:
    """Evaluates the rules every `alerts.evaluate_every` of the scheduler's clock, beside its
    loop: a slow webhook or mail server never delays a tick."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._last: datetime | None = None
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime) -> None:
        """Start an evaluation at `now` if one is due and none is still going."""
        settings = self.project.settings.alerts
        if not settings.rules:
            return
        if (
            self._last is not None
            and (now - self._last).total_seconds() < settings.evaluate_seconds
        ):
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._last = now
        self._thread = threading.Thread(
            target=self._evaluate, args=(now,), name="fleuve-alerts", daemon=True
        )
        self._thread.start()

    def stop(self, wait: float = 10.0) -> None:
        """Wait for an evaluation still going."""
        if self._thread is not None:
            self._thread.join(timeout=wait)

    def _evaluate(self, now: datetime) -> None:
        try:
            evaluate(self.project, now)
        except Exception:
            log.exception("alert evaluation failed")


# -- reading ----------------------------------------------------------------------------------


def states(project: Project) -> list[dict[str, Any]]:
    """Each configured rule with the state of every subject it watched."""
    with project.db.session() as s:
        rows = list(s.scalars(select(AlertState).order_by(AlertState.rule, AlertState.subject)))
    out = []
    for rule in project.settings.alerts.rules:
        subjects = [
            {
                "subject": r.subject,
                "state": r.state,
                "since": _iso(r.active_since),
                "fired_at": _iso(r.fired_at) if r.state == "firing" else None,
                "value": r.value,
                "summary": r.summary,
            }
            for r in rows
            if r.rule == rule.name
        ]
        worst = next(
            (w for w in ("firing", "pending") if any(x["state"] == w for x in subjects)), "ok"
        )
        out.append(
            {
                "rule": rule.name,
                "kind": rule.kind,
                "severity": rule.severity,
                "for": rule.for_,
                "state": worst,
                "subjects": subjects,
            }
        )
    return out


def history(project: Project, rule: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest alerts that fired or resolved, newest first."""
    query = select(AlertEvent).order_by(AlertEvent.at.desc(), AlertEvent.id.desc()).limit(limit)
    if rule:
        query = query.where(AlertEvent.rule == rule)
    with project.db.session() as s:
        return [
            {
                "id": e.id,
                "rule": e.rule,
                "subject": e.subject,
                "state": e.state,
                "at": _iso(e.at),
                "severity": e.severity,
                "value": e.value,
                "summary": e.summary,
                "deliveries": e.deliveries,
            }
            for e in s.scalars(query)
        ]


# -- helpers ----------------------------------------------------------------------------------


def _folder_bytes(root: Path) -> int:
    """Bytes of the files under `root` (the lake's Parquet files, every snapshot's)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            # A file removed by maintenance meanwhile counts for nothing.
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(folder, name)).st_size
    return total


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
