"""Prepared-statement parameters bound into SQL as literals, through the sqlglot AST."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp

from fleuve.errors import FleuveError


def placeholders(sql: str) -> int:
    """How many `?` or `$n` parameters `sql` takes."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return 0
    return len(list(tree.find_all(exp.Placeholder)))


def literal(value: Any) -> exp.Expression:
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
    tree = sqlglot.parse_one(sql, read="duckdb")
    found = list(tree.find_all(exp.Placeholder, bfs=False))
    if len(found) != len(values):
        raise FleuveError(
            f"the statement takes {len(found)} parameters but {len(values)} were bound",
            "bind exactly one value per '?' placeholder",
        )
    for position, node in enumerate(found):
        index = int(node.this) - 1 if node.this else position
        if not 0 <= index < len(values):
            raise FleuveError(
                f"parameter ${node.this} has no bound value", "bind one value per parameter"
            )
        node.replace(literal(values[index]))
    return tree.sql(dialect="duckdb")
