"""Reflection substitution: pure rewrites of sqlglot ASTs that never change an answer.

`rewrite_aggregate` turns a SELECT over a dataset into the same SELECT over an aggregation
reflection, when the reflection can answer it exactly:

- every column the query touches outside aggregates is a dimension (or a coarser time grain
  of one: `date_trunc('month', d)` from a `day` dimension, `CAST(d AS DATE)`, `year(d)`, and
  `d >= b` or `d < b` when `b` is a date or timestamp starting a period of the kept grain);
- every aggregate rolls up: SUM of SUMs, SUM of COUNTs, MIN of MINs, MAX of MAXs, AVG as
  SUM/COUNT, COUNT(DISTINCT d) and APPROX_COUNT_DISTINCT(d) of a dimension or of a column kept
  as APPROX_COUNT_DISTINCT (its distinct values, so both answers are exact).

When the query groups by exactly the reflection's dimensions, each reflection row is one
group already and the aggregates are read as they are, without grouping again.

`raw_covers` says whether a raw reflection keeps every column a SELECT reads of a table.

Either function raises `Miss` with a reason when the reflection cannot answer; the reason is
what `EXPLAIN` and the job record show.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from fleuve.engine.reflections.definition import GRAINS, Dimension, grain_of

VOLATILE = {"random", "rand", "uuid", "gen_random_uuid", "nextval", "setseed", "currval"}
_EXTRACT_PARTS = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week": "week",
    "day": "day",
    "dayofmonth": "day",
    "dayofweek": "day",
    "dow": "day",
    "isodow": "day",
    "dayofyear": "day",
    "doy": "day",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
}
_PART_NODES: dict[type[exp.Expr], str] = {
    exp.Year: "year",
    exp.Quarter: "quarter",
    exp.Month: "month",
    exp.Day: "day",
    exp.DayOfMonth: "day",
    exp.DayOfWeek: "day",
    exp.DayOfYear: "day",
}


class Miss(Exception):
    """The reflection cannot answer this query exactly; the message says why."""


class _NoExact(Exception):
    """Reading reflection rows as groups does not work here; roll up instead."""


@dataclass(frozen=True)
class AggregateLayout:
    """How an aggregation reflection's table is laid out."""

    dimensions: tuple[Dimension, ...]
    measures: dict[str, frozenset[str]]  # column (lowercase) -> measure types
    columns: dict[str, str] = field(default_factory=dict)  # logical name -> physical column

    def dim_column(self, d: Dimension) -> str:
        """The physical column of a dimension."""
        return self.columns[dim_key(d)]

    @property
    def rows_column(self) -> str:
        """The physical column counting each group's rows (every layout keeps it)."""
        return self.columns[measure_key("COUNT", "*")]

    def measure_column(self, kind: str, column: str) -> str | None:
        """The physical column of a measure, if kept."""
        return self.columns.get(measure_key(kind, column))


def dim_key(d: Dimension) -> str:
    """The logical name of a dimension."""
    return f"dim:{d.column.lower()}:{d.grain or ''}"


def measure_key(kind: str, column: str) -> str:
    """The logical name of a measure; column '*' is COUNT(*)."""
    return f"measure:{kind}:{column.lower()}"


def layout(
    dimensions: Sequence[Dimension], measures: dict[str, Sequence[str]]
) -> tuple[AggregateLayout, list[tuple[str, str]]]:
    """The reflection's layout and the (SQL expression, column) pairs that build its table."""
    columns: dict[str, str] = {}
    build: list[tuple[str, str]] = []
    used: set[str] = set()

    def name(base: str) -> str:
        out, n = base, 1
        while out.lower() in used:
            n += 1
            out = f"{base}_{n}"
        used.add(out.lower())
        return out

    for d in dimensions:
        col = name(d.column if d.grain is None else f"{d.column}__{d.grain}")
        columns[dim_key(d)] = col
        src = _q(d.column)
        build.append((src if d.grain is None else f"date_trunc('{d.grain}', {src})", col))
    columns[measure_key("COUNT", "*")] = c = name("count__star")
    build.append(("count(*)", c))
    kinds: dict[str, frozenset[str]] = {}
    for column, types in measures.items():
        if column == "*":
            continue
        kinds[column.lower()] = frozenset(types)
        src = _q(column)
        for kind in types:
            col = name(f"{kind.lower()}__{column}")
            columns[measure_key(kind, column)] = col
            if kind == "APPROX_COUNT_DISTINCT":
                # The distinct values themselves, so that both COUNT(DISTINCT) and the
                # approximate count give the same answer as over the source.
                sql = f"list(DISTINCT {src}) FILTER (WHERE {src} IS NOT NULL)"
            else:
                sql = f"{kind.lower()}({src})"
            build.append((sql, col))
    return AggregateLayout(tuple(dimensions), kinds, columns), build


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


# -- helpers over a SELECT ------------------------------------------------------------


def _scope_nodes(select: exp.Select) -> list[exp.Expr]:
    """Every node of `select` that is not inside a nested query."""
    out: list[exp.Expr] = []
    stack: list[exp.Expr] = [select]
    while stack:
        node = stack.pop()
        out.append(node)
        for child in node.iter_expressions():
            if isinstance(
                child, exp.Select | exp.Subquery | exp.Union | exp.Intersect | exp.Except
            ):
                continue
            stack.append(child)
    return out


def _is_aggregate(node: exp.Expr) -> bool:
    return isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window)


def _volatile(node: exp.Expr) -> bool:
    if isinstance(node, exp.Rand):
        return True
    if isinstance(node, exp.Anonymous | exp.Func):
        name = node.name.lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()
        return name in VOLATILE
    return False


_FLIPPED: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.GTE: exp.LTE,
    exp.LTE: exp.GTE,
    exp.GT: exp.LT,
    exp.LT: exp.GT,
}


def _time_constant(node: exp.Expr) -> datetime | None:
    """The value of a typed date or timestamp literal (`DATE '2024-03-01'`, a CAST of a string)."""
    if not (
        isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string
    ):
        return None
    if not node.to.is_type("date", "timestamp", "timestampntz"):
        return None
    try:
        value = datetime.fromisoformat(node.this.name)
    except ValueError:
        return None
    return value if value.tzinfo is None else None


def _starts_period(value: datetime, grain: str) -> bool:
    """True when `value` is the first instant of a period of `grain` (weeks excepted)."""
    parts = ["microsecond", "second", "minute", "hour", "day", "month", "year"]
    zero = {
        "microsecond": value.microsecond,
        "second": value.second,
        "minute": value.minute,
        "hour": value.hour,
        "day": value.day - 1,
        "month": value.month - 1,
    }
    if grain == "week":
        return False
    if grain == "quarter":
        return _starts_period(value, "month") and value.month in (1, 4, 7, 10)
    if grain == "millisecond":
        return value.microsecond % 1000 == 0
    if grain not in parts:
        return False
    # Everything finer than the grain must be at its start: midnight for a day, the 1st for a month.
    return all(zero[p] == 0 for p in parts[: parts.index(grain)])


def _grain_index(grain: str) -> int:
    return GRAINS.index(grain)


def derivable(target: str, stored: str | None) -> bool:
    """True when truncating to `target` can be computed from values truncated to `stored`."""
    if stored is None or target == stored:
        return True
    if stored == "week":
        return False
    if target == "week":
        return _grain_index(stored) <= _grain_index("day")
    return _grain_index(target) >= _grain_index(stored)


@dataclass
class _Translator:
    """Maps a query's expressions onto the reflection's columns, or raises Miss."""

    alias: str
    fields: frozenset[str]  # the dataset's columns, lowercase
    lay: AggregateLayout
    aliases: frozenset[str]  # output names of the SELECT, lowercase
    exact: bool
    aggregating: bool = True
    plain: dict[str, str] = field(default_factory=dict)  # column -> physical, no grain
    grains: dict[str, list[tuple[str, str]]] = field(
        default_factory=dict
    )  # column -> (grain, phys)

    def __post_init__(self) -> None:
        for d in self.lay.dimensions:
            if d.grain is None:
                self.plain[d.column.lower()] = self.lay.dim_column(d)
            else:
                self.grains.setdefault(d.column.lower(), []).append(
                    (d.grain, self.lay.dim_column(d))
                )

    # -- columns and dimension expressions ----------------------------------------------

    def column_name(self, col: exp.Column) -> str:
        """The dataset column a Column node names; Miss when it names something else."""
        if col.table and col.table.lower() != self.alias.lower():
            raise Miss(f"the query reads {col.sql('duckdb')} from another relation")
        name = col.name.lower()
        if name not in self.fields:
            raise Miss(f"{col.sql('duckdb')} is not a column of the dataset")
        return name

    def dimension(self, node: exp.Expr, *, allow_alias: bool = False) -> exp.Expr:
        """`node` (no aggregates) rewritten over dimension columns."""

        def visit(n: exp.Expr) -> exp.Expr:
            if isinstance(n, exp.Window):
                raise Miss("window functions are not answered from reflections")
            if _is_aggregate(n):
                raise Miss(f"aggregate {n.sql('duckdb')} where a dimension is expected")
            if isinstance(n, exp.Subquery | exp.Select):
                raise Miss("subqueries inside the query are not answered from reflections")
            if _volatile(n):
                raise Miss(f"{n.sql('duckdb')} is not deterministic")
            replaced = self._aligned_range(n)
            if replaced is None:
                replaced = self._time_dimension(n)
            if replaced is not None:
                return replaced
            if isinstance(n, exp.Column):
                if isinstance(n.this, exp.Star):
                    raise Miss("SELECT * cannot be answered by an aggregation reflection")
                if (
                    allow_alias
                    and not n.table
                    and n.name.lower() in self.aliases
                    and n.name.lower() not in self.fields
                ):
                    return n.copy()
                name = self.column_name(n)
                if name in self.plain:
                    return _col(self.plain[name])
                if name in self.grains:
                    raise Miss(
                        f"column {n.name} is kept only truncated ({self.grains[name][0][0]})"
                    )
                raise Miss(f"column {n.name} is not a dimension")
            return n

        return node.copy().transform(visit, copy=False)

    def _aligned_range(self, n: exp.Expr) -> exp.Expr | None:
        """`col >= b` or `col < b` over a grain dimension, when `b` starts a period of that grain.

        For such a bound, truncating `col` changes no answer: `col >= 2024-03-01` holds exactly
        when `date_trunc('month', col) >= 2024-03-01`. Not so for `>` or `<=`, or an unaligned
        bound, which stay misses.
        """
        if not isinstance(n, exp.GTE | exp.LT | exp.GT | exp.LTE):
            return None
        column, bound = n.this, n.expression
        kind: type[exp.Expr] = type(n)
        if isinstance(bound, exp.Column) and not isinstance(column, exp.Column):
            column, bound, kind = bound, column, _FLIPPED[kind]
        if kind not in (exp.GTE, exp.LT) or not isinstance(column, exp.Column):
            return None
        if isinstance(column.this, exp.Star) or column.name.lower() not in self.grains:
            return None
        name = self.column_name(column)
        start = _time_constant(bound)
        if start is None:
            return None
        for stored, phys in self.grains[name]:
            if _starts_period(start, stored):
                return kind(this=_col(phys), expression=bound.copy())
        return None

    def _null_proxy(self, col: exp.Expr) -> exp.Column | None:
        """A dimension column that is NULL exactly when `col` is (truncation keeps NULLs)."""
        if isinstance(col, exp.Column) and not isinstance(col.this, exp.Star):
            name = self.column_name(col)
            if name in self.plain:
                return _col(self.plain[name])
            if name in self.grains:
                return _col(self.grains[name][0][1])
        return None

    def _time_dimension(self, n: exp.Expr) -> exp.Expr | None:
        """A time expression over a grain dimension, rewritten; None when `n` is not one."""
        if isinstance(n, exp.Is) and isinstance(n.expression, exp.Null):
            proxy = self._null_proxy(n.this)
            if proxy is not None:
                return exp.Is(this=proxy, expression=exp.Null())
        trunc = grain_of(n)
        if trunc is not None:
            grain, column = trunc
            column = column.lower()
            self._own(n.this)
            for stored, phys in self.grains.get(column, []):
                if stored == grain:
                    return _col(phys)
            for stored, phys in sorted(
                self.grains.get(column, []), key=lambda g: -_grain_index(g[0])
            ):
                if derivable(grain, stored):
                    out = n.copy()
                    out.set("this", _col(phys))
                    return out
            return None
        if isinstance(n, exp.Cast) and isinstance(n.this, exp.Column) and n.to.is_type("date"):
            column = n.this.name.lower()
            self._own(n.this)
            for stored, phys in self.grains.get(column, []):
                if derivable("day", stored) and stored != "week":
                    return exp.Cast(this=_col(phys), to=n.to.copy())
            return None
        part = None
        if type(n) in _PART_NODES and isinstance(n.this, exp.Column):
            part = _PART_NODES[type(n)]
        elif isinstance(n, exp.Extract) and isinstance(n.expression, exp.Column):
            part = _EXTRACT_PARTS.get(n.this.name.lower())
        if part is None:
            return None
        column_node = n.expression if isinstance(n, exp.Extract) else n.this
        column = column_node.name.lower()
        self._own(column_node)
        for stored, phys in self.grains.get(column, []):
            if derivable(part, stored) and not (stored == "week" and part != "week"):
                out = n.copy()
                out.set("expression" if isinstance(n, exp.Extract) else "this", _col(phys))
                return out
        return None

    def _own(self, col: exp.Expr) -> None:
        if isinstance(col, exp.Column):
            self.column_name(col)

    # -- aggregates ---------------------------------------------------------------------

    def aggregate(self, node: exp.Expr) -> exp.Expr:
        """An aggregate (possibly with FILTER) rewritten over the reflection's measures."""
        condition = None
        if isinstance(node, exp.Filter):
            if self.exact:
                raise _NoExact
            condition = self.dimension(node.expression.this)
            node = node.this
        out = self._rollup(node) if not self.exact else self._read(node)
        if condition is None:
            return out

        # The FILTER goes on every aggregate of the rollup, on top of any FILTER it has.
        applied: list[exp.Expr] = []

        def add_filter(n: exp.Expr) -> exp.Expr:
            if isinstance(n, exp.Filter):
                applied.append(n)
                both = exp.and_(n.expression.this.copy(), condition.copy())
                return exp.Filter(this=n.this.copy(), expression=exp.Where(this=both))
            if isinstance(n, exp.AggFunc) and not isinstance(n.parent, exp.Filter):
                applied.append(n)
                return exp.Filter(this=n.copy(), expression=exp.Where(this=condition.copy()))
            return n

        out = out.transform(add_filter, copy=False)
        if not applied:
            raise Miss(f"cannot apply the FILTER of {node.sql('duckdb')} to the reflection")
        return out

    def _arg(self, node: exp.Expr) -> tuple[exp.Expr | None, bool]:
        arg = node.this
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1:
                raise Miss("DISTINCT over several columns is not answered from reflections")
            return arg.expressions[0], True
        return arg, False

    def _measured(self, arg: exp.Expr | None, kind: str) -> str | None:
        if isinstance(arg, exp.Column) and not isinstance(arg.this, exp.Star):
            name = self.column_name(arg)
            if kind in self.lay.measures.get(name, ()):
                return self.lay.measure_column(kind, name)
        return None

    def _rollup(self, node: exp.Expr) -> exp.Expr:
        arg, distinct = self._arg(node)
        if isinstance(node, exp.Count):
            if distinct:
                phys = self._measured(arg, "APPROX_COUNT_DISTINCT")
                if phys:
                    values = exp.func(
                        "list_distinct", exp.func("flatten", exp.ArrayAgg(this=_col(phys)))
                    )
                    return exp.Coalesce(
                        this=exp.func("len", values), expressions=[exp.Literal.number(0)]
                    )
                assert arg is not None  # a DISTINCT always has its argument (see `_arg`)
                try:
                    dim = self.dimension(arg)
                except Miss:
                    raise Miss(
                        f"{node.sql('duckdb')} needs its column as a dimension "
                        "or an APPROX_COUNT_DISTINCT measure"
                    ) from None
                return exp.Count(this=exp.Distinct(expressions=[dim]))
            if arg is None or isinstance(arg, exp.Star):
                return _zero(exp.Sum(this=_col(self.lay.rows_column)))
            phys = self._measured(arg, "COUNT")
            if phys:
                return _zero(exp.Sum(this=_col(phys)))
            dim = self._null_proxy(arg) or self._dim_arg(arg, "COUNT")
            star = exp.Sum(this=_col(self.lay.rows_column))
            return _zero(
                exp.Filter(
                    this=star,
                    expression=exp.Where(
                        this=exp.Not(this=exp.Is(this=dim, expression=exp.Null()))
                    ),
                )
            )
        if distinct:
            raise Miss(f"{node.sql('duckdb')} is not answered from reflections")
        if isinstance(node, exp.ApproxDistinct):
            phys = self._measured(arg, "APPROX_COUNT_DISTINCT")
            if phys:
                agg = exp.func(
                    "list_aggregate",
                    exp.func("flatten", exp.ArrayAgg(this=_col(phys))),
                    exp.Literal.string("approx_count_distinct"),
                )
                return _zero(agg)
            return exp.ApproxDistinct(this=self._dim_arg(arg, "APPROX_COUNT_DISTINCT"))
        if isinstance(node, exp.Sum):
            phys = self._measured(arg, "SUM")
            if phys:
                return exp.Sum(this=_col(phys))
            raise Miss(f"{node.sql('duckdb')} needs a SUM measure on its column")
        if isinstance(node, exp.Min | exp.Max):
            kind = "MIN" if isinstance(node, exp.Min) else "MAX"
            phys = self._measured(arg, kind)
            inner = _col(phys) if phys else self._dim_arg(arg, kind)
            return type(node)(this=inner)
        if isinstance(node, exp.Avg):
            total, count = self._measured(arg, "SUM"), self._measured(arg, "COUNT")
            if total and count:
                return exp.Div(
                    this=exp.Cast(this=exp.Sum(this=_col(total)), to=exp.DataType.build("DOUBLE")),
                    expression=exp.Cast(
                        this=exp.Sum(this=_col(count)), to=exp.DataType.build("DOUBLE")
                    ),
                )
            raise Miss(f"{node.sql('duckdb')} needs SUM and COUNT measures on its column")
        raise Miss(f"{node.sql('duckdb')} is not answered from reflections")

    def _read(self, node: exp.Expr) -> exp.Expr:
        """The aggregate read off one reflection row (the row is exactly one group)."""
        arg, distinct = self._arg(node)
        if distinct:
            raise _NoExact
        if isinstance(node, exp.Count):
            if arg is None or isinstance(arg, exp.Star):
                return _col(self.lay.rows_column)
            phys = self._measured(arg, "COUNT")
            if phys:
                return _col(phys)
            dim = self._null_proxy(arg) or self._dim_arg(arg, "COUNT")
            return exp.If(
                this=exp.Is(this=dim, expression=exp.Null()),
                true=exp.Literal.number(0),
                false=_col(self.lay.rows_column),
            )
        if isinstance(node, exp.ApproxDistinct):
            phys = self._measured(arg, "APPROX_COUNT_DISTINCT")
            if phys:
                return _zero(
                    exp.func(
                        "list_aggregate", _col(phys), exp.Literal.string("approx_count_distinct")
                    )
                )
            raise _NoExact
        if isinstance(node, exp.Sum):
            phys = self._measured(arg, "SUM")
            if phys:
                return _col(phys)
            raise Miss(f"{node.sql('duckdb')} needs a SUM measure on its column")
        if isinstance(node, exp.Min | exp.Max):
            phys = self._measured(arg, "MIN" if isinstance(node, exp.Min) else "MAX")
            return _col(phys) if phys else self._dim_arg(arg, node.sql_name())
        if isinstance(node, exp.Avg):
            total, count = self._measured(arg, "SUM"), self._measured(arg, "COUNT")
            if total and count:
                return exp.Div(
                    this=exp.Cast(this=_col(total), to=exp.DataType.build("DOUBLE")),
                    expression=exp.Cast(this=_col(count), to=exp.DataType.build("DOUBLE")),
                )
            raise Miss(f"{node.sql('duckdb')} needs SUM and COUNT measures on its column")
        raise Miss(f"{node.sql('duckdb')} is not answered from reflections")

    def _window(self, w: exp.Window) -> exp.Expr:
        """A window over the query's groups: its arguments, partitions and order rewritten."""
        if not self.aggregating:
            raise Miss("window functions over rows are not answered from reflections")
        out = w.copy()
        fn = out.this
        for key, value in list(fn.args.items()):
            if isinstance(value, exp.Expr):
                fn.set(key, self.expression(value))
            elif isinstance(value, list):
                fn.set(key, [self.expression(v) if isinstance(v, exp.Expr) else v for v in value])
        if out.args.get("partition_by"):
            out.set("partition_by", [self.expression(p) for p in out.args["partition_by"]])
        if out.args.get("order"):
            out.set(
                "order",
                exp.Order(expressions=[_ordered(o, self) for o in out.args["order"].expressions]),
            )
        return out

    def _dim_arg(self, arg: exp.Expr | None, what: str) -> exp.Expr:
        if arg is None or isinstance(arg, exp.Star):
            raise Miss(f"{what} needs a column")
        try:
            return self.dimension(arg)
        except Miss as miss:
            raise Miss(f"{what} of {arg.sql('duckdb')}: {miss}") from None

    def expression(self, node: exp.Expr, *, allow_alias: bool = False) -> exp.Expr:
        """Any expression of the SELECT: aggregates become measures, the rest dimensions."""

        def visit(n: exp.Expr) -> exp.Expr:
            if isinstance(n, exp.Window):
                return self._window(n)
            if isinstance(n, exp.Grouping):
                return exp.Grouping(expressions=[self.dimension(e) for e in n.expressions])
            if isinstance(n, exp.Filter) and _is_aggregate(n.this):
                return self.aggregate(n)
            if _is_aggregate(n):
                return self.aggregate(n)
            if isinstance(n, exp.Subquery | exp.Select):
                raise Miss("subqueries inside the query are not answered from reflections")
            if _volatile(n):
                raise Miss(f"{n.sql('duckdb')} is not deterministic")
            replaced = self._aligned_range(n)
            if replaced is None:
                replaced = self._time_dimension(n)
            if replaced is not None:
                return replaced
            if isinstance(n, exp.Column):
                return self.dimension(n, allow_alias=allow_alias)
            return n

        return node.copy().transform(visit, copy=False)


def _zero(node: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=node, expressions=[exp.Literal.number(0)])


def rewrite_aggregate(
    select: exp.Select,
    alias: str,
    fields: Sequence[str],
    lay: AggregateLayout,
    relation: exp.Expr,
    output: Sequence[tuple[str, str]],
    column_types: Mapping[str, str] | None = None,
) -> exp.Select:
    """`select` rewritten to read the aggregation reflection `relation`; Miss when it cannot.

    `alias` is the name the SELECT gives the dataset, `fields` the dataset's columns and
    `output` the (name, type) of each column the original SELECT returns: the rewrite keeps
    both exactly, casting where the reflection's column (`column_types`, when known) differs.
    """
    _check_shape(select)
    projections = select.expressions
    if any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
        for p in projections
    ):
        raise Miss("SELECT * cannot be answered by an aggregation reflection")
    if len(output) != len(projections):
        raise Miss("the query's output could not be described")
    has_agg = any(_is_aggregate(n) for n in _scope_nodes(select))
    group = select.args.get("group")
    if not has_agg and group is None and not select.args.get("distinct"):
        raise Miss("the query neither aggregates nor groups, so it needs every row")
    names = frozenset(n.lower() for n, _ in output)
    field_set = frozenset(f.lower() for f in fields)
    aggregating = has_agg or group is not None
    build = functools.partial(
        _build,
        select,
        alias,
        field_set,
        lay,
        relation,
        output,
        names,
        aggregating=aggregating,
        column_types=column_types,
    )
    if _covers_all_dimensions(select, alias, field_set, lay, names):
        try:
            return build(exact=True)
        except _NoExact:
            pass
    return build(exact=False)


def _check_shape(select: exp.Select) -> None:
    for arg in (
        "joins",
        "laterals",
        "pivots",
        "qualify",
        "windows",
        "sample",
        "into",
        "prewhere",
        "connect",
        "match",
    ):
        if select.args.get(arg):
            raise Miss(f"queries with {arg.upper()} are not answered from reflections")
    if isinstance(select.args.get("distinct"), exp.Distinct) and select.args["distinct"].args.get(
        "on"
    ):
        raise Miss("DISTINCT ON is not answered from reflections")
    if select.args.get("with_"):
        raise Miss("the SELECT's own WITH clause is matched separately")
    frm = select.args.get("from_")
    if frm is None or not isinstance(frm.this, exp.Table) or frm.this.args.get("sample"):
        raise Miss("the query does not read the dataset alone")


def _group_items(select: exp.Select) -> list[exp.Expr] | None:
    """The plain GROUP BY expressions (ordinals and ALL resolved), or None for grouping sets."""
    group = select.args.get("group")
    if group is None:
        return None
    if group.args.get("all"):
        return [
            p.unalias()
            for p in select.expressions
            if not any(_is_aggregate(n) for n in p.find_all(exp.AggFunc))
        ]
    if any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets", "totals")):
        return None
    out = []
    for item in group.expressions:
        if isinstance(item, exp.Rollup | exp.Cube | exp.GroupingSets):
            return None
        if isinstance(item, exp.Literal) and item.is_int:
            index = int(item.this) - 1
            if not 0 <= index < len(select.expressions):
                return None
            out.append(select.expressions[index].unalias())
        else:
            out.append(item)
    return out


def _covers_all_dimensions(
    select: exp.Select,
    alias: str,
    fields: frozenset[str],
    lay: AggregateLayout,
    names: frozenset[str],
) -> bool:
    items = _group_items(select)
    if not items:
        return False
    t = _Translator(alias, fields, lay, names, exact=True)
    got = set()
    for item in items:
        try:
            out = t.dimension(item)
        except Miss:
            return False
        if not isinstance(out, exp.Column):
            return False
        got.add(out.name.lower())
    return got == {lay.dim_column(d).lower() for d in lay.dimensions}


def _build(
    select: exp.Select,
    alias: str,
    fields: frozenset[str],
    lay: AggregateLayout,
    relation: exp.Expr,
    output: Sequence[tuple[str, str]],
    names: frozenset[str],
    *,
    exact: bool,
    aggregating: bool,
    column_types: Mapping[str, str] | None,
) -> exp.Select:
    t = _Translator(alias, fields, lay, names, exact=exact, aggregating=aggregating)
    out = exp.Select()
    for key in ("distinct", "limit", "offset"):
        if select.args.get(key) is not None:
            out.set(key, select.args[key].copy())
    out.set(
        "expressions",
        [
            exp.alias_(_typed(t.expression(p.unalias()), typ, column_types), name, quoted=True)
            for p, (name, typ) in zip(select.expressions, output, strict=True)
        ],
    )
    out.set("from_", exp.From(this=_aliased(relation, alias)))
    where = select.args.get("where")
    conditions = [t.dimension(where.this, allow_alias=True)] if where else []
    group = select.args.get("group")
    having = select.args.get("having")
    if exact:
        out.set("group", None)
        out.set("having", None)
        if having:
            conditions.append(t.expression(having.this, allow_alias=True))
    else:
        if group is not None:
            out.set("group", _translate_group(group, t))
        if having:
            out.set("having", exp.Having(this=t.expression(having.this, allow_alias=True)))
    out.set("where", exp.Where(this=exp.and_(*conditions)) if conditions else None)
    order = select.args.get("order")
    if order is not None:
        out.set(
            "order",
            exp.Order(
                expressions=[
                    o.copy() if isinstance(o.this, exp.Literal) else _ordered(o, t)
                    for o in order.expressions
                ]
            ),
        )
    return out


def _typed(node: exp.Expr, typ: str, column_types: Mapping[str, str] | None) -> exp.Expr:
    """`node` cast to `typ`, unless it is a reflection column of that type already.

    A cast left on a plain column would stop DuckDB from sorting and filtering on the column
    itself (a top-N over a million groups takes twice as long).
    """
    if (
        isinstance(node, exp.Column)
        and column_types is not None
        and column_types.get(node.name.lower(), "").replace(" ", "") == typ.replace(" ", "")
    ):
        return node
    return exp.Cast(this=node, to=_datatype(typ).copy())


@functools.lru_cache(maxsize=512)
def _datatype(text: str) -> exp.DataType:
    return exp.DataType.build(text, dialect="duckdb")


def _ordered(o: exp.Ordered, t: _Translator) -> exp.Ordered:
    new = o.copy()
    new.set("this", t.expression(o.this, allow_alias=True))
    return new


def _translate_group(group: exp.Group, t: _Translator) -> exp.Group:
    new = group.copy()
    if group.args.get("all"):
        return new

    def item(e: exp.Expr) -> exp.Expr:
        if isinstance(e, exp.Literal):
            return e.copy()
        if isinstance(e, exp.Rollup | exp.Cube):
            return type(e)(expressions=[item(x) for x in e.expressions])
        if isinstance(e, exp.GroupingSets):
            return exp.GroupingSets(expressions=[item(x) for x in e.expressions])
        if isinstance(e, exp.Tuple):
            return exp.Tuple(expressions=[item(x) for x in e.expressions])
        return t.dimension(e, allow_alias=True)

    new.set("expressions", [item(e) for e in group.expressions])
    for key in ("rollup", "cube", "grouping_sets"):
        if group.args.get(key):
            new.set(key, [item(e) for e in group.args[key]])
    return new


def _aliased(relation: exp.Expr, alias: str) -> exp.Expr:
    rel = relation.copy()
    rel.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
    return rel


# -- raw reflections -------------------------------------------------------------------


def raw_covers(
    select: exp.Select, table: exp.Table, alias: str, fields: Sequence[str], display: Sequence[str]
) -> None:
    """Return when the raw reflection keeps every column `select` may read of `table`; else Miss."""
    if table.args.get("sample") or select.args.get("sample"):
        raise Miss("sampled reads are not answered from reflections")
    field_set = {f.lower() for f in fields}
    keep = {d.lower() for d in display}
    needed: set[str] = set()
    all_columns = False
    low_alias = alias.lower()
    for node in select.walk():
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count | exp.Column):
            all_columns = True
        elif isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                if not node.table or node.table.lower() == low_alias:
                    all_columns = True
                continue
            qualifier = node.table.lower() if node.table else None
            name = node.name.lower()
            if qualifier is None and name == low_alias and name not in field_set:
                all_columns = True  # the table's row as a struct
            elif qualifier in (None, low_alias) and name in field_set:
                needed.add(name)
        elif isinstance(node, exp.Columns):
            all_columns = True
        elif isinstance(node, exp.Join):
            if node.method.upper() == "NATURAL":
                all_columns = True
            for ident in node.args.get("using") or []:
                name = ident.name.lower()
                if name in field_set:
                    needed.add(name)
    if all_columns:
        needed = field_set
    missing = sorted(needed - keep)
    if missing:
        raise Miss(f"the raw reflection does not keep {', '.join(missing)}")


def replace_table(table: exp.Table, relation: exp.Expr, alias: str) -> exp.Expr:
    """`relation`, aliased as the table was, to put where `table` stood."""
    rel = _aliased(relation, alias)
    table_alias = table.args.get("alias")
    columns = table_alias.args.get("columns") if table_alias else None
    if columns:
        rel.args["alias"].set("columns", [c.copy() for c in columns])
    return rel


Describe = Callable[[exp.Select], list[tuple[str, str]]]
