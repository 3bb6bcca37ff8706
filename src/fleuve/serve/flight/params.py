"""Prepared-statement parameters bound into SQL as literals.

Each `?` or `$n` is replaced where it stands; the rest of the statement stays as the client
wrote it, for the engine to read in its dialect (regenerating it here would change it).
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

from fleuve.errors import FleuveError


def _slots(sql: str) -> list[tuple[int, int, int | None]]:
    """(first, last character, number or None for `?`) of each parameter of `sql`."""
    tokens = Dialect.get_or_raise("duckdb").tokenize(sql)
    out: list[tuple[int, int, int | None]] = []
    for token, after in zip(tokens, [*tokens[1:], None], strict=True):
        if token.token_type == TokenType.PLACEHOLDER:
            out.append((token.start, token.end, None))
        elif (
            token.token_type == TokenType.PARAMETER
            and after is not None
            and after.token_type == TokenType.NUMBER
            and after.start == token.end + 1
        ):
            out.append((token.start, after.end, int(after.text)))
    return out


def placeholders(sql: str) -> int:
    """How many `?` or `$n` parameters `sql` takes."""
    try:
        return len(_slots(sql))
    except TokenError:
        return 0


def literal(value: Any) -> exp.Expr:
    """A SQL literal for a Python value (what Arrow parameters convert to)."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return exp.Literal.number(repr(value))
        return exp.cast(exp.Literal.string(str(value)), "DOUBLE")
    if isinstance(value, Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), kind)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, dt.time):
        return exp.cast(exp.Literal.string(value.isoformat()), "TIME")
    if isinstance(value, bytes):
        return exp.cast(exp.Literal.string("".join(f"\\x{b:02x}" for b in value)), "BLOB")
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[literal(v) for v in value])
    raise FleuveError(
        f"cannot bind a parameter of type {type(value).__name__}",
        "pass numbers, strings, booleans, dates, timestamps, bytes or lists",
    )


def bind(sql: str, values: list[Any]) -> str:
    """`sql` with its parameters (`?` in order, or `$n` by number) replaced by `values`."""
    try:
        found = _slots(sql)
    except TokenError as exc:
        raise FleuveError(
            f"cannot read the statement: {str(exc).splitlines()[0]}", "check its quotes"
        ) from None
    if len(found) != len(values):
        raise FleuveError(
            f"the statement takes {len(found)} parameters but {len(values)} were bound",
            "bind exactly one value per '?' placeholder",
        )
    pieces, done = [], 0
    for position, (first, last, number) in enumerate(found):
        index = number - 1 if number is not None else position
        if not 0 <= index < len(values):
            raise FleuveError(
                f"parameter ${number} has no bound value", "bind one value per parameter"
            )
        text = literal(values[index]).sql(dialect="duckdb")
        if text.startswith("-"):
            text = f"({text})"  # so that `a -?` never becomes a comment (`a --1`)
        pieces += [sql[done:first], text]
        done = last + 1
    return "".join([*pieces, sql[done:]])
