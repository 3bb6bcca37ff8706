"""HTTP answers counted per minute and per process in the metadata database, for the API error
rate alert: each process adds to its own rows, so that several servers never write the same one."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from fleuve.metadata import Database
from fleuve.metadata.models import utcnow
from fleuve.metadata.observe import ApiRequestCount
from fleuve.observe.metrics import INSTRUMENTS

log = logging.getLogger("fleuve.observe")
FLUSH_SECONDS = 10.0
RETENTION = timedelta(days=2)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class RequestCounter:
    """Counts answers in memory and adds them to the metadata database every few seconds."""

    def __init__(self, db: Database, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.db = db
        self.process = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.flush_seconds = flush_seconds
        self._counts: Counter[tuple[datetime, bool]] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._purged = utcnow()

    def record(self, status: int, at: datetime | None = None) -> None:
        """Count one answer with HTTP status `status`."""
        key = (_minute(at or utcnow()), status >= 500)
        with self._lock:
            self._counts[key] += 1

    def flush(self) -> None:
        """Add the counts kept in memory to this process's rows."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if not counts:
            return
        minutes: dict[datetime, list[int]] = {}
        for (minute, failed), n in counts.items():
            totals = minutes.setdefault(minute, [0, 0])
            totals[0] += n
            totals[1] += n if failed else 0
        try:
            with self.db.session() as s:
                for minute, (total, errors) in minutes.items():
                    key = (ApiRequestCount.minute == minute) & (
                        ApiRequestCount.process == self.process
                    )
                    row = s.scalars(select(ApiRequestCount).where(key)).one_or_none()
                    if row is None:
                        s.add(
                            ApiRequestCount(
                                minute=minute, process=self.process, requests=total, errors=errors
                            )
                        )
                    else:
                        s.execute(
                            update(ApiRequestCount)
                            .where(key)
                            .values(
                                requests=ApiRequestCount.requests + total,
                                errors=ApiRequestCount.errors + errors,
                            )
                        )
                if utcnow() - self._purged > timedelta(hours=1):
                    self._purged = utcnow()
                    s.execute(
                        delete(ApiRequestCount).where(ApiRequestCount.minute < utcnow() - RETENTION)
                    )
        except Exception:
            # Counts are kept for the next flush rather than lost while the database is away.
            with self._lock:
                self._counts.update(counts)
            log.warning("could not record HTTP request counts", exc_info=True)

    def start(self) -> None:
        """Flush every `flush_seconds` in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="fleuve-request-counts", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and flush what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()


class CountRequests:
    """ASGI middleware counting every HTTP answer, failed authentication included: for /metrics by
    route template, status and duration, and for the error rate alert by minute and status."""

    def __init__(self, app: Any, counter: RequestCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the answer started is a server error
        started = time.perf_counter()

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.counter.record(status)
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            INSTRUMENTS.request(scope["method"], route, status, time.perf_counter() - started)


def error_ratio(db: Database, since: datetime) -> tuple[int, int]:
    """(requests, 5xx answers) counted by every process since `since`."""
    with db.session() as s:
        total, errors = s.execute(
            select(
                func.coalesce(func.sum(ApiRequestCount.requests), 0),
                func.coalesce(func.sum(ApiRequestCount.errors), 0),
            ).where(ApiRequestCount.minute >= _minute(since))
        ).one()
    return int(total), int(errors)
