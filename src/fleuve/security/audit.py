"""The audit trail: logins, queries and changes to users, grants and connections, kept 90 days."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select

from fleuve.metadata import AuditEvent, Database
from fleuve.metadata.models import utcnow

log = logging.getLogger("fleuve.security")

KINDS = ("login", "query", "user", "token", "grant", "connection", "reflection")


def record(
    db: Database,
    kind: str,
    action: str,
    *,
    username: str | None = None,
    outcome: str = "ok",
    client: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> None:
    """Write one audit event now."""
    with db.session() as s:
        s.add(
            AuditEvent(
                kind=kind,
                action=action,
                outcome=outcome,
                username=username,
                client=client,
                target=target[:255] if target else None,
                detail=detail,
            )
        )


def recent_failures(db: Database, username: str, window: timedelta) -> int:
    """How many failed logins `username` had within `window`."""
    with db.session() as s:
        return s.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.kind == "login",
                AuditEvent.username == username,
                AuditEvent.outcome == "failed",
                AuditEvent.at >= utcnow() - window,
            )
        )


@dataclass
class Filters:
    """What `fleuve audit` and the audit endpoint select."""

    kind: str | None = None
    username: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    contains: str | None = None
    limit: int = 100


def events(db: Database, filters: Filters) -> list[AuditEvent]:
    """Matching events, newest first."""
    q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(filters.limit)
    if filters.kind:
        q = q.where(AuditEvent.kind == filters.kind)
    if filters.username:
        q = q.where(AuditEvent.username == filters.username)
    if filters.outcome:
        q = q.where(AuditEvent.outcome == filters.outcome)
    if filters.since:
        q = q.where(AuditEvent.at >= filters.since)
    if filters.until:
        q = q.where(AuditEvent.at < filters.until)
    if filters.contains:
        q = q.where(AuditEvent.target.contains(filters.contains, autoescape=True))
    with db.session() as s:
        return list(s.scalars(q))


def purge(db: Database, retention_days: int) -> int:
    """Delete events older than the retention period; returns how many went."""
    with db.session() as s:
        result = s.execute(
            delete(AuditEvent).where(AuditEvent.at < utcnow() - timedelta(days=retention_days))
        )
        return result.rowcount or 0


class AuditWriter:
    """Writes query events from a background thread, so that no query waits on the audit."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="fleuve-audit", daemon=True)
        self._thread.start()

    def submit(self, kind: str, action: str, **fields: Any) -> None:
        """Queue one event (same arguments as `record`)."""
        row = {c: fields.pop(c, None) for c in ("username", "client", "target")}
        row["outcome"] = fields.pop("outcome", "ok")
        if row["target"]:
            row["target"] = row["target"][:255]
        self._queue.put({"kind": kind, "action": action, "at": utcnow(), **row, "detail": fields})

    def close(self) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        stop = False
        while not stop:
            rows = [self._queue.get()]
            if rows[0] is not None:
                time.sleep(0.05)  # a busy server's events then share one transaction
            while not self._queue.empty() and len(rows) < 500:
                rows.append(self._queue.get_nowait())
            stop = None in rows
            rows = [r for r in rows if r is not None]
            if not rows:
                continue
            try:
                with self.db.session() as s:
                    s.execute(insert(AuditEvent), rows)
            except Exception:
                log.exception("could not write %d audit events", len(rows))
