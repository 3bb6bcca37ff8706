"""The engine's errors: each names the problem and the fix, and leaks nothing."""

from __future__ import annotations

import re

from fleuve import errors
from fleuve.errors import FleuveError
from fleuve.lake import CATALOG
from fleuve.masking import mask


class EngineError(FleuveError):
    """A query or command the engine cannot run as written (the caller's mistake: a 4xx)."""


class ObjectNotFound(EngineError, errors.NotFound):
    """An object that does not exist, or that the caller may not see (the same answer for both)."""


class AccessDenied(EngineError, errors.Forbidden):
    """The caller sees the object but lacks the privilege the command needs."""


class QueryFailed(EngineError):
    """DuckDB refused or failed the query; the message is safe to show the caller."""


class QueryCanceled(EngineError):
    """The query was cancelled before it finished."""


_QUOTED = re.compile(r"'(?:[^']|'')*'")
_INTERNAL = re.compile(
    r"\b(?:src_[0-9a-f]{12}|memory\.fleuve_\w+|__reflections|r_[0-9a-f]{12}_\d+\w*|fleuve_sys_\w+)\b"
)


def safe_error(exc: BaseException, *, admin: bool) -> str:
    """DuckDB's message, first line; for non-administrators without values or internal names.

    A value in an error can come from a row a view filters out (the optimizer may evaluate an
    expression before the view's filter), so values never reach users without full access.
    """
    text = mask(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
    if admin:
        return text
    text = _QUOTED.sub("'…'", text)
    text = _INTERNAL.sub("…", text)
    return text.replace(f"{CATALOG}.", "")
