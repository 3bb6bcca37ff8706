"""The audit trail: logins, queries and changes to users, grants and connections, kept 90 days.

Events are recorded where the change happens (the engine's statements and API, the security
layer), never by the interface that asked for it; the interface (cli, rest, ui, flight,
flight-sql) and the caller's address travel down as the `Origin` of the current context.
Every text stored is masked of credentials first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select

from fleuve.masking import mask, mask_value
from fleuve.metadata import AuditEvent, Database
from fleuve.metadata.database import rows_changed
from fleuve.metadata.models import utcnow

log = logging.getLogger("fleuve.security")

KINDS = ("login", "query", "user", "token", "grant", "connection", "reflection")


@dataclass(frozen=True)
class Origin:
    """Where a request came from: the interface (cli, rest, ui, flight...) and the address."""

    client: str | None = None
    address: str | None = None


@dataclass
class Statement:
    """A SQL statement the engine runs: the changes it makes are recorded with its text."""

    sql: str
    job_id: str
    recorded: int = 0


_NOWHERE = Origin()
_origin: ContextVar[Origin | None] = ContextVar("fleuve_audit_origin", default=None)
_statement: ContextVar[Statement | None] = ContextVar("fleuve_audit_statement", default=None)


def origin() -> Origin:
    """The origin of the work running in this context."""
    return _origin.get() or _NOWHERE


@contextmanager
def acting_from(client: str, address: str | None = None) -> Iterator[Origin]:
    """Record what runs inside as coming from `client` (an interface) at `address`."""
    where = Origin(client, address)
    token = _origin.set(where)
    try:
        yield where
    finally:
        _origin.reset(token)


@contextmanager
def statement(where: Origin, sql: str, job_id: str) -> Iterator[Statement]:
    """Run a statement from `where`: changes recorded inside carry its SQL and job id."""
    current = Statement(sql, job_id)
    token_origin, token_statement = _origin.set(where), _statement.set(current)
    try:
        yield current
    finally:
        _statement.reset(token_statement)
        _origin.reset(token_origin)


def _row(
    kind: str,
    action: str,
    *,
    username: str | None = None,
    outcome: str = "ok",
    client: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> dict[str, Any]:
    """One event's columns, every text masked of credentials; the other keywords are its
    detail."""
    return {
        "kind": kind,
        "action": action,
        "outcome": outcome,
        "username": username,
        "client": client,
        "target": mask(target)[:255] if target else None,
        "detail": mask_value(detail),
    }


def record(db: Database, kind: str, action: str, **fields: Any) -> None:
    """Write one audit event now (`fields` as `_row` takes them: username, outcome, client,
    target and the detail); the context's origin and statement complete it."""
    where = origin()
    if fields.get("client") is None:
        fields["client"] = where.client
        if where.address is not None:
            fields.setdefault("address", where.address)
    current = _statement.get()
    if current is not None and kind != "login":
        current.recorded += 1
        fields.setdefault("sql", current.sql)
        fields.setdefault("job_id", current.job_id)
    with db.session() as s:
        s.add(AuditEvent(**_row(kind, action, **fields)))


def recent_failures(db: Database, username: str, window: timedelta) -> int:
    """How many failed logins `username` had within `window`."""
    with db.session() as s:
        failures = s.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.kind == "login",
                AuditEvent.username == username,
                AuditEvent.outcome == "failed",
                AuditEvent.at >= utcnow() - window,
            )
        )
    return failures or 0


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
        return rows_changed(
            s, delete(AuditEvent).where(AuditEvent.at < utcnow() - timedelta(days=retention_days))
        )


class AuditWriter:
    """Writes query events from a background thread, so that no query waits on the audit.

    A queue and one thread: `submit` costs a query a dict and a put; a busy server's events
    share one transaction.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        # (when, kind, action, the other fields of `_row`) per event; None asks it to stop.
        self._queue: queue.Queue[tuple[datetime, str, str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="fleuve-audit", daemon=True)
        self._thread.start()

    def submit(self, kind: str, action: str, **fields: Any) -> None:
        """Queue one event (the arguments of `record`, the origin given explicitly); it is
        masked and written by the writer's thread, off the query's path."""
        self._queue.put((utcnow(), kind, action, fields))

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
            events = [r for r in rows if r is not None]
            if not events:
                continue
            try:
                values = [
                    {**_row(kind, action, **fields), "at": at}
                    for at, kind, action, fields in events
                ]
                with self.db.session() as s:
                    s.execute(insert(AuditEvent), values)
            except Exception:
                log.exception("could not write %d audit events", len(rows))
