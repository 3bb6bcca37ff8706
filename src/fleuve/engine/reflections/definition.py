"""A reflection's definition: its display columns, dimensions with time grains, measures."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

MEASURE_TYPES = ("SUM", "COUNT", "MIN", "MAX", "APPROX_COUNT_DISTINCT")
GRAINS = (
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "quarter",
    "year",
)


@dataclass(frozen=True)
class Dimension:
    """A grouping column of an aggregation reflection, optionally truncated to a time grain."""

    column: str
    grain: str | None = None  # None: the column as is

    def as_json(self) -> dict:
        """The REST shape: granularity DATE for days (Dremio's word), else the grain's name."""
        if self.grain is None:
            return {"name": self.column, "granularity": "NORMAL"}
        return {
            "name": self.column,
            "granularity": "DATE" if self.grain == "day" else self.grain.upper(),
        }


@dataclass(frozen=True)
class Measure:
    """A measured column and the aggregates kept for it."""

    column: str
    types: tuple[str, ...]

    def as_json(self) -> dict:
        """The REST shape of a measure."""
        return {"name": self.column, "measureTypeList": list(self.types)}


@dataclass(frozen=True)
class ReflectionSpec:
    """What a reflection keeps, as written in DDL or the REST API."""

    kind: str  # RAW or AGGREGATION
    display: tuple[str, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    measures: tuple[Measure, ...] = ()
    partition: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()


def grain_of(node: exp.Expr) -> tuple[str, str] | None:
    """(grain, column) when `node` is date_trunc('<grain>', column), else None."""
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        unit = node.args.get("unit")
        col = node.this
        if isinstance(col, exp.Column) and not col.table and unit is not None:
            grain = unit.name.lower()
            if grain in GRAINS:
                return grain, col.name
    return None
