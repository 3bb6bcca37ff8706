"""Dremio-style dataset paths: `gold.orders`, `"My Space"."folder"."view"`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from fleuve.lake import quote_ident

Path = tuple[str, ...]

# Ids of objects without a row of their own (lake tables, source tables) derive from their path.
_NAMESPACE = uuid.UUID("6f1d3c2e-5a7b-4c8d-9e0f-1a2b3c4d5e6f")


def key(path: Sequence[str]) -> str:
    """The case-insensitive lookup key of a path."""
    return json.dumps([p.lower() for p in path], ensure_ascii=False)


def path_id(kind: str, path: Sequence[str]) -> str:
    """A stable id for an object known only by its path."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{key(path)}"))


def render(path: Sequence[str]) -> str:
    """The path as SQL: each part double-quoted when it needs to be."""
    return ".".join(p if _plain(p) else quote_ident(p) for p in path)


def parse(text: str) -> Path:
    """Split a dotted path; double-quoted parts may contain dots."""
    parts: list[str] = []
    buf, quoted, i = "", False, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == '"' and i + 1 < len(text) and text[i + 1] == '"':
                buf += '"'
                i += 1
            elif c == '"':
                quoted = False
            else:
                buf += c
        elif c == '"':
            quoted = True
        elif c == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += c
        i += 1
    parts.append(buf.strip())
    return tuple(p for p in parts if p)


def _plain(part: str) -> bool:
    return part.isidentifier() and part.isascii() and part.lower() == part
