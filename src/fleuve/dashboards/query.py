"""A chart's SQL: its dataset or query, aggregated and filtered, built as a sqlglot AST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlglot import exp

from fleuve.dashboards.spec import DATE_PRESETS, ChartSpec, Condition, DashboardSpec, Measure
from fleuve.engine.dialect import to_duckdb
from fleuve.engine.errors import EngineError
from fleuve.engine.plan import parse_query
from fleuve.errors import FleuveError

DIALECT = "duckdb"
_AGGREGATES = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}
_COMPARISONS = {
    "=": exp.EQ,
    "!=": exp.NEQ,
    ">": exp.GT,
    ">=": exp.GTE,
    "<": exp.LT,
    "<=": exp.LTE,
}


class ChartError(FleuveError):
    """A chart or a filter value cannot be turned into a query."""


@dataclass(frozen=True)
class DateRange:
    """A date range chosen in a dashboard: inclusive bounds, either may be open."""

    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, value: Any, today: date | None = None) -> DateRange:
        """A range from a preset name ('last_30_days', 'all') or {'from': ..., 'to': ...}."""
        today = today or date.today()
        if value in (None, "", "all"):
            return cls()
        if isinstance(value, str):
            if value not in DATE_PRESETS:
                raise ChartError(
                    f"unknown date range '{value}'",
                    f"use all, {', '.join(DATE_PRESETS)} or {{'from': 'YYYY-MM-DD', 'to': ...}}",
                )
            return cls(today - timedelta(days=DATE_PRESETS[value] - 1), None)
        if isinstance(value, dict):
            try:
                start = date.fromisoformat(value["from"]) if value.get("from") else None
                end = date.fromisoformat(value["to"]) if value.get("to") else None
            except (TypeError, ValueError):
                raise ChartError(
                    f"invalid date range {value!r}", "write dates as YYYY-MM-DD"
                ) from None
            return cls(start, end)
        raise ChartError(f"invalid date range {value!r}", "use a preset name or from/to dates")


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str) -> exp.Column:
    return exp.Column(this=_ident(name))


def _literal(value: Any) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def dataset_table(path: str) -> exp.Table:
    """The table expression of a dotted dataset path such as 'gold.fct_orders'."""
    parts = [p.strip('"') for p in path.split(".")]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ChartError(f"invalid dataset path '{path}'", "write it as schema.table")
    *schema, table = parts
    db = schema[-1] if schema else None
    catalog = schema[0] if len(schema) == 2 else None
    return exp.Table(
        this=_ident(table),
        db=_ident(db) if db else None,
        catalog=_ident(catalog) if catalog else None,
    )


def _source(chart: ChartSpec) -> exp.Expr:
    if chart.dataset:
        return dataset_table(chart.dataset)
    # Read as the engine reads queries: sqlglot's own reading would change some of them
    # (INTERVAL '3 days 04:05:06.789' becomes 3 days) before the engine sees them.
    try:
        parsed = parse_query(chart.sql or "", DIALECT)
    except EngineError as exc:
        raise ChartError(f"chart '{chart.name}': {exc.message}", exc.fix) from None
    if not isinstance(parsed, exp.Query):
        raise ChartError(f"chart '{chart.name}': its SQL must be a SELECT query")
    return parsed.subquery("q")


def _measure(measure: Measure) -> exp.Expr:
    if measure.agg == "count":
        agg: exp.Expr = exp.Count(this=_col(measure.column) if measure.column else exp.Star())
    elif measure.agg == "count_distinct":
        agg = exp.Count(this=exp.Distinct(expressions=[_col(measure.column or "")]))
    else:
        agg = _AGGREGATES[measure.agg](this=_col(measure.column or ""))
    return exp.alias_(agg, measure.name, quoted=True)


def _dimension(chart: ChartSpec) -> exp.Expr:
    column = _col(chart.x or "")
    if chart.time_grain is None:
        return exp.alias_(column, chart.x or "", quoted=True)
    truncated = exp.func("date_trunc", exp.Literal.string(chart.time_grain), column)
    return exp.alias_(exp.cast(truncated, "DATE"), chart.x or "", quoted=True)


def _condition(cond: Condition) -> exp.Expr:
    column = _col(cond.column)
    if cond.op == "is null":
        return exp.Is(this=column, expression=exp.Null())
    if cond.op == "is not null":
        return exp.not_(exp.Is(this=column, expression=exp.Null()))
    if cond.op in ("in", "not in"):
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        if not values:
            return exp.false() if cond.op == "in" else exp.true()
        test = column.isin(*[_literal(v) for v in values])
        return test if cond.op == "in" else exp.not_(test)
    return _COMPARISONS[cond.op](this=column, expression=_literal(cond.value))


def _date_conditions(column: str, chosen: DateRange) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    if chosen.start:
        out.append(
            exp.GTE(
                this=_col(column), expression=exp.cast(_literal(chosen.start.isoformat()), "DATE")
            )
        )
    if chosen.end:
        # Inclusive end day: below the next midnight, so timestamps of that day count.
        after = (chosen.end + timedelta(days=1)).isoformat()
        out.append(exp.LT(this=_col(column), expression=exp.cast(_literal(after), "DATE")))
    return out


def filter_conditions(
    dashboard: DashboardSpec,
    chart: ChartSpec,
    values: dict[str, Any],
    today: date | None = None,
) -> list[exp.Expr]:
    """The WHERE terms the dashboard's shared filters add to `chart`, given the chosen values."""
    out: list[exp.Expr] = []
    for flt in dashboard.filters:
        if flt.name in chart.ignore_filters:
            continue
        column = chart.filter_columns.get(flt.name, flt.column)
        chosen = values.get(flt.name, flt.default)
        if flt.type == "date_range":
            out.extend(_date_conditions(column, DateRange.parse(chosen, today)))
        elif chosen:
            items = chosen if isinstance(chosen, list) else [chosen]
            out.append(_condition(Condition(column=column, op="in", value=items)))
    return out


def chart_query(chart: ChartSpec, extra: list[exp.Expr] | None = None) -> str:
    """The SQL that reads `chart`'s rows, with `extra` WHERE terms from shared filters."""
    dims: list[exp.Expr] = []
    if chart.x:
        dims.append(_dimension(chart))
    if chart.series:
        dims.append(exp.alias_(_col(chart.series), chart.series, quoted=True))
    if chart.measures:
        select = [*dims, *(_measure(m) for m in chart.measures)]
        if chart.type == "table":
            select = [*(exp.alias_(_col(c), c, quoted=True) for c in chart.columns), *select]
            dims = [*(_col(c) for c in chart.columns), *dims]
    else:
        select = [exp.alias_(_col(c), c, quoted=True) for c in chart.columns]
    query = exp.select(*select).from_(_source(chart))
    terms = [_condition(c) for c in chart.where] + list(extra or [])
    if terms:
        query = query.where(exp.and_(*terms))
    if chart.measures and dims:
        query = query.group_by(*(exp.Literal.number(i + 1) for i in range(len(dims))))
    for key in chart.order_by or _default_order(chart):
        desc = key.startswith("-")
        query = query.order_by(exp.Ordered(this=_col(key.lstrip("-")), desc=desc), append=True)
    return to_duckdb(query.limit(chart.limit))


def _default_order(chart: ChartSpec) -> list[str]:
    if chart.type in ("line", "area") or chart.time_grain:
        return [chart.x or ""] + ([chart.series] if chart.series else [])
    if chart.type in ("bar", "pie") and chart.measures:
        return ["-" + chart.measures[0].name]
    return []


def options_query(dataset: str, column: str, limit: int = 200) -> str:
    """The distinct values of `column` in `dataset`, for a values filter's choices."""
    query = (
        exp.select(exp.alias_(_col(column), "value", quoted=True))
        .distinct()
        .from_(dataset_table(dataset))
        .where(exp.not_(exp.Is(this=_col(column), expression=exp.Null())))
        .order_by(exp.Ordered(this=_col("value")))
        .limit(limit)
    )
    return query.sql(DIALECT)
