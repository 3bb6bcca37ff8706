"""Secret values masked out of text before it is logged, stored or shown: one function for all.

Covers the spellings a credential takes in SQL and connection settings: a URL's password
(`postgresql://u:pw@h/db`), `key=value` pairs in DSNs and JSON (`password=pw`, `"token": "t"`),
SQL option clauses (`SECRET 'abc'`, `KEY_ID 'x'`, `PASSWORD 'x'`, `IDENTIFIED BY 'x'`) and
HTTP credentials (`Authorization: Bearer t`).
"""

from __future__ import annotations

import re

MASK = "***"

# Names whose value is a credential; a name that merely contains one (secret_access_key,
# client_secret, bearer_token) counts too.
_NAMES = (
    r"[a-z_]*(?:password|passwd|pwd|secret|token|key_id|access_key|api_key|account_key"
    r"|private_key|credentials?|connection_string)[a-z_]*|authorization"
)
# A value: quoted (SQL doubles its quotes; a DSN inside a SQL literal doubles them again),
# or a bare run up to a separator.
_VALUE = r"''(?:[^']|'(?!'))*''|'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|[^\s'\",;)}&]+"
_URL = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]*):[^@\s'\"]*@", re.IGNORECASE)
_ASSIGNED = re.compile(
    rf"(\b(?:{_NAMES})[\"']?\s*[:=]\s*(?:(?:bearer|basic)\s+)?)({_VALUE})", re.IGNORECASE
)
# SQL clauses: `SECRET 'abc'`, `PASSWORD 'x'`, `WITH PASSWORD 'x'`, `IDENTIFIED BY 'x'`.
_CLAUSE = re.compile(
    rf"(\b(?:(?:{_NAMES})|identified\s+by)\s+)('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")",
    re.IGNORECASE,
)
# A cheap first look: most text (every plain query) holds none of these and is returned as is.
_HINTS = (
    "://",
    "passw",
    "pwd",
    "secret",
    "token",
    "key_id",
    "_key",
    "credential",
    "connection_string",
    "authorization",
    "identified",
)


def mask(text: str) -> str:
    """`text` with every credential value replaced by ***."""
    if not text:
        return text
    low = text.lower()
    if not any(hint in low for hint in _HINTS):
        return text
    text = _URL.sub(rf"\1:{MASK}@", text)
    text = _ASSIGNED.sub(lambda m: m.group(1) + _quoted_mask(m.group(2)), text)
    return _CLAUSE.sub(lambda m: m.group(1) + _quoted_mask(m.group(2)), text)


def mask_value(value: object) -> object:
    """`value` with every string in it masked (dicts and lists walked)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def _quoted_mask(value: str) -> str:
    """*** keeping the value's quotes, so that masked SQL still reads as SQL."""
    for quote in ("''", "'", '"'):
        if len(value) >= 2 * len(quote) and value.startswith(quote) and value.endswith(quote):
            return f"{quote}{MASK}{quote}"
    return MASK
