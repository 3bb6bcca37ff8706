"""The scheduler's time source: the system clock, or a simulated one that tests move by hand.

Every decision of the scheduler (what is due, when a lease expires) reads `clock.now()`; every
wait goes through `clock.sleep()`. A test drives a `ManualClock` in process, and several worker
processes share a `FileClock` (FLEUVE_CLOCK_FILE) so that no test waits for wall time.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleuve.errors import ConfigError

CLOCK_FILE_ENV = "FLEUVE_CLOCK_FILE"
# How often a simulated clock's file is read while waiting (real seconds).
_FILE_POLL = 0.05


class Clock:
    """Wall-clock time in UTC, and waits that a stop event ends early."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        """Wait `seconds` of this clock's time; True when `stop` was set meanwhile."""
        return stop.wait(max(0.0, seconds))


class ManualClock(Clock):
    """A clock that moves only when `advance` or `set` is called (tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._moved = threading.Condition()

    def now(self) -> datetime:
        with self._moved:
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment`, waking every sleeper."""
        with self._moved:
            self._now = moment.astimezone(UTC)
            self._moved.notify_all()

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta's keywords (seconds=, minutes=, ...); returns the new time."""
        self.set(self.now() + timedelta(**delta))
        return self.now()

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        until = self.now() + timedelta(seconds=max(0.0, seconds))
        with self._moved:
            while self._now < until and not stop.is_set():
                # A short real wait, so that a stop (an Event, not this condition) is seen soon.
                self._moved.wait(0.05)
        return stop.is_set()


class FileClock(Clock):
    """A simulated clock shared by processes: the file holds the current time (ISO 8601)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: datetime | None = None

    def now(self) -> datetime:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"{CLOCK_FILE_ENV} names {self.path}, which cannot be read: {exc.strerror}",
                f"write an ISO time such as 2026-01-01T00:00:00+00:00 there, or unset {CLOCK_FILE_ENV}",
            ) from None
        if not text and self._last is not None:
            return self._last  # caught between a writer's truncate and its write
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"{CLOCK_FILE_ENV} file {self.path} holds {text[:40]!r}, not an ISO time",
                "write a time such as 2026-01-01T00:00:00+00:00",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        self._last = moment.astimezone(UTC)
        return self._last

    def set(self, moment: datetime) -> None:
        """Move the shared time (atomically, by renaming a written file)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(moment.astimezone(UTC).isoformat(), encoding="utf-8")
        tmp.replace(self.path)

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        until = self.now() + timedelta(seconds=max(0.0, seconds))
        while self.now() < until:
            if stop.wait(_FILE_POLL):
                return True
        return stop.is_set()


def clock_from_env(environ: dict[str, str] | None = None) -> Clock:
    """The system clock, or the simulated clock FLEUVE_CLOCK_FILE names (for tests)."""
    env = os.environ if environ is None else environ
    if path := env.get(CLOCK_FILE_ENV):
        return FileClock(Path(path))
    return Clock()
