"""Normalized names: what a source calls a column or stream becomes a plain bronze identifier."""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def normalize(name: str) -> str:
    """Lower snake case, accents removed, other scripts kept: 'Prénom Client' → 'prenom_client'."""
    text = _CAMEL.sub("_", name.strip())
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    text = _NOT_WORD.sub("_", text.lower()).strip("_")
    if not text:
        return "column"
    return f"_{text}" if text[0].isdigit() else text


def normalize_all(names: list[str]) -> list[str]:
    """Normalize each name, suffixing `_2`, `_3`… where two names collide."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = normalize(name)
        candidate, n = base, 1
        while candidate in seen:
            n += 1
            candidate = f"{base}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out
