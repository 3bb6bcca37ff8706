"""Errors of the ingestion layer, each saying which stream failed, why, and what to do."""

from __future__ import annotations

from fleuve.errors import FleuveError
from fleuve.lake import lost_race


class IngestError(FleuveError):
    """A sync cannot proceed; retrying without a change will not help."""


class SourceUnavailable(IngestError):
    """The source did not answer or refused the request for a reason that may pass (retried)."""


class SourceDataError(IngestError):
    """The source answered, with something that cannot be read as its records (not JSON, say)."""


class SchemaDriftError(IngestError):
    """A source column changed in a way the bronze table cannot absorb."""


class RejectedThresholdError(IngestError):
    """More rows were rejected than the configured threshold allows."""


class SyncTimeout(IngestError):
    """The sync ran past its connection's timeout_minutes and was stopped."""


class SyncCancelled(IngestError):
    """The sync was stopped before it finished."""


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: unreachable sources, dropped connections, lake conflicts."""
    if isinstance(exc, SourceUnavailable):
        return True
    if isinstance(exc, FleuveError):
        return False
    if lost_race(exc):
        return True
    text = str(exc).lower()
    return any(
        marker in text
        for marker in (
            "connection refused",
            "could not connect",
            "connection reset",
            "server closed the connection",
            "timed out",
            "timeout",
            "lost connection",
            "temporarily unavailable",
            "broken pipe",
        )
    )
