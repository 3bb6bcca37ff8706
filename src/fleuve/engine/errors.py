"""The engine's errors: each names the problem and the fix, and leaks nothing."""

from __future__ import annotations

from fleuve.errors import FleuveError


class EngineError(FleuveError):
    """A query or command the engine cannot run as written (the caller's mistake: a 4xx)."""


class NotFound(EngineError):
    """An object that does not exist, or that the caller may not see (the same answer for both)."""


class AccessDenied(EngineError):
    """The caller sees the object but lacks the privilege the command needs."""


class QueryFailed(EngineError):
    """DuckDB refused or failed the query; the message is safe to show the caller."""


class QueryCanceled(EngineError):
    """The query was cancelled before it finished."""
