"""From a parsed query to the DuckDB query that answers it: bind, check, accelerate, expand.

1. **Bind**: every table a query names is looked up in the catalog (relative to the session's
   context, then absolute); CTE names stay as they are; system tables (`INFORMATION_SCHEMA`,
   `sys`) are set aside for the engine to fill. Anything else is refused, so no name reaches
   DuckDB unresolved.
2. **Check**: the caller needs SELECT on every dataset the query names. Datasets read through a
   virtual dataset are not checked again (Dremio's rule).
3. **Accelerate**: each SELECT over a dataset with reflections is offered to each of them; the
   cheapest that answers exactly replaces it (see `reflections.match`).
4. **Expand**: physical datasets become their DuckDB relations, virtual ones their SQL, bound,
   accelerated and expanded in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.scope import Scope, traverse_scope

from fleuve.engine import paths
from fleuve.engine.catalog import Dataset
from fleuve.engine.dialect import parse, settle, to_duckdb, translate
from fleuve.engine.errors import EngineError, ObjectNotFound
from fleuve.engine.grants import Principal, not_found
from fleuve.engine.reflections.match import Miss, raw_covers, replace_table, rewrite_aggregate

SYSTEM = ("information_schema", "sys")
# Table functions anyone may call: they read no data.
SAFE_TABLE_FUNCTIONS = (exp.GenerateSeries, exp.Unnest, exp.ExplodingGenerateSeries)
SAFE_TABLE_FUNCTION_NAMES = {"range", "generate_series", "unnest"}
# Scalar functions that read the server's state rather than the query's data.
UNSAFE_FUNCTIONS = {
    "current_setting",
    "getenv",
    "getvariable",
    "read_text",
    "read_blob",
    "sql_auto_complete",
    "which_secret",
    "current_database",
    "current_catalog",
    "current_schemas",
    "query",
    "query_table",
}
MAX_DEPTH = 32
# The statements that are queries: planned here, the rest answered by the engine's statements.
QUERY_TYPES = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.Values)


def parse_query(sql: str, dialect: str) -> exp.Expr:
    """Parse one statement in `dialect` (duckdb or dremio), its functions given DuckDB meaning."""
    try:
        statements = [s for s in parse(sql, dialect) if s is not None]
    except ParseError as exc:
        errors = exc.errors[0] if exc.errors else {}
        where = f" at line {errors.get('line')}, column {errors.get('col')}" if errors else ""
        raise EngineError(
            f"cannot parse the query{where}: {errors.get('description', str(exc).splitlines()[0])}",
            f"check the SQL; it is read as {dialect} SQL",
        ) from None
    except TokenError as exc:
        raise EngineError(
            f"cannot read the query: {str(exc).splitlines()[0]}",
            f"check the quotes and escapes; it is read as {dialect} SQL",
        ) from None
    if len(statements) != 1:
        raise EngineError(
            f"expected one statement, got {len(statements)}", "send statements one at a time"
        )
    return translate(statements[0], dialect)


@dataclass
class Ref:
    """One dataset a query names, where it names it."""

    node: exp.Table
    dataset: Dataset
    alias: str
    time_travel: bool = False
    replaced: bool = False


@dataclass
class SystemRef:
    """A system table a query names (INFORMATION_SCHEMA or sys)."""

    node: exp.Table
    name: str  # e.g. information_schema.tables
    alias: str


@dataclass
class Bound:
    """A query with every table it names looked up."""

    ast: exp.Expr
    refs: list[Ref] = field(default_factory=list)
    system: list[SystemRef] = field(default_factory=list)


def cte_references(ast: exp.Expr) -> set[int]:
    """ids of the Table nodes that name a CTE rather than a dataset."""
    out: set[int] = set()
    try:
        scopes = traverse_scope(ast)
    except (OptimizeError, RecursionError, KeyError, AttributeError, ValueError):
        names = {cte.alias_or_name.lower() for cte in ast.find_all(exp.CTE)}
        return {
            id(t)
            for t in ast.find_all(exp.Table)
            if not t.args.get("db") and t.name.lower() in names
        }
    for scope in scopes:
        for table in scope.tables:
            if isinstance(scope.sources.get(table.alias_or_name), Scope) and not table.args.get(
                "db"
            ):
                out.add(id(table))
    return out


def bind(
    ast: exp.Expr,
    resolve: Callable[[Sequence[str], Sequence[str]], Dataset | None],
    context: Sequence[str] = (),
    *,
    trusted: bool = False,
) -> Bound:
    """Look up every table `ast` names; raise ObjectNotFound for unknown names.

    `trusted` allows table functions (reading files directly), as for administrators and the
    bodies of virtual datasets they validated.
    """
    bound = Bound(ast)
    ctes = cte_references(ast)
    for table in list(ast.find_all(exp.Table)):
        if id(table) in ctes:
            continue
        if not isinstance(table.this, exp.Identifier):
            _check_table_function(table, trusted)
            continue
        parts = [p.name for p in table.parts]
        alias = table.alias or parts[-1]
        if parts[0].lower() in SYSTEM and len(parts) == 2:
            bound.system.append(SystemRef(table, ".".join(p.lower() for p in parts), alias))
            continue
        dataset = resolve(parts, context)
        if dataset is None:
            raise not_found(parts)
        travel = table.args.get("when") is not None or table.args.get("version") is not None
        if travel and dataset.lake_table is None:
            raise EngineError(
                f"time travel works on lake tables only, not on {paths.render(dataset.path)}",
                "remove AT (VERSION => ...) or query a lake table",
            )
        bound.refs.append(Ref(table, dataset, alias, travel))
    if not trusted:
        for fn in ast.find_all(exp.Anonymous, exp.Func):
            name = fn.name.lower() if isinstance(fn, exp.Anonymous) else fn.sql_name().lower()
            if name in UNSAFE_FUNCTIONS:
                raise EngineError(
                    f"function {name}() is not available in queries",
                    "ask an administrator if you need it",
                )
    _unqualify_columns(ast, bound.refs)
    settle(ast, [(r.alias, f.name, f.type) for r in bound.refs for f in r.dataset.fields])
    return bound


def _check_table_function(table: exp.Table, trusted: bool) -> None:
    fn = table.this
    name = fn.name.lower() if isinstance(fn, exp.Anonymous) else type(fn).__name__.lower()
    if trusted or isinstance(fn, SAFE_TABLE_FUNCTIONS) or name in SAFE_TABLE_FUNCTION_NAMES:
        return
    raise EngineError(
        f"table function {fn.sql('duckdb').split('(')[0]}() is not available in queries",
        "query datasets by name; to read files, promote their folder to a dataset",
    )


def _unqualify_columns(ast: exp.Expr, refs: list[Ref]) -> None:
    """`gold.orders.amount` becomes `orders.amount`, the alias the expansion gives the table."""
    by_tail: dict[tuple[str, ...], str] = {}
    for ref in refs:
        if ref.node.alias:
            continue
        path = [p.lower() for p in ref.dataset.path]
        for n in range(2, len(path) + 1):
            by_tail[tuple(path[-n:])] = ref.alias
    if not by_tail:
        return
    for col in ast.find_all(exp.Column):
        if not col.args.get("db"):
            continue
        parts = tuple(p.name.lower() for p in col.parts[:-1])
        alias = by_tail.get(parts)
        if alias:
            col.set("catalog", None)
            col.set("db", None)
            col.set("table", exp.to_identifier(alias, quoted=True))


@dataclass
class _Site:
    """Where a reflection could stand in: a dataset reference and the SELECT reading it."""

    ref: Ref
    select: exp.Select | None
    output: list[tuple[str, str]] | None = None


@dataclass
class Outcome:
    """What became of one reflection while planning a query."""

    reflection_id: str
    name: str
    dataset_id: str
    relationship: str = "CONSIDERED"
    reason: str | None = None

    def note(self, reason: str) -> None:
        """Why the reflection did not answer (kept only if it answered nowhere in the query)."""
        if self.relationship == "CONSIDERED" and self.reason is None:
            self.reason = reason

    def promote(self, relationship: str) -> None:
        """Raise to MATCHED or CHOSEN; a reflection used anywhere in the query stays so."""
        order = ("CONSIDERED", "MATCHED", "CHOSEN")
        if order.index(relationship) > order.index(self.relationship):
            self.relationship, self.reason = relationship, None

    def as_json(self) -> dict[str, Any]:
        """The job record's shape (REST `reflectionRelationships`, plus the reason)."""
        out = {
            "datasetId": self.dataset_id,
            "reflectionId": self.reflection_id,
            "reflectionName": self.name,
            "relationship": self.relationship,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class Plan:
    """The DuckDB query that answers a user's query, and how it was found."""

    ast: exp.Expr
    datasets: list[Dataset] = field(default_factory=list)  # named directly by the query
    read: list[Dataset] = field(default_factory=list)  # every dataset read, through views too
    reflections: dict[str, Outcome] = field(default_factory=dict)
    system: list[SystemRef] = field(default_factory=list)
    lake_state: Any = None
    explain: bool = False  # also find which costlier reflections would answer

    @property
    def sql(self) -> str:
        """The DuckDB SQL to run; an EngineError names what cannot be carried to it."""
        return to_duckdb(self.ast)

    @property
    def chosen(self) -> list[Outcome]:
        """The reflections the query reads."""
        return [o for o in self.reflections.values() if o.relationship == "CHOSEN"]

    def outcome(self, r: Any, dataset: Dataset) -> Outcome:
        """The record of reflection `r`, created as CONSIDERED."""
        if r.id not in self.reflections:
            self.reflections[r.id] = Outcome(r.id, r.name, dataset.id)
        return self.reflections[r.id]


@dataclass
class Prepared:
    """A statement ready to run: DuckDB SQL with its system tables, or an answer already."""

    sql: str | None = None
    table: pa.Table | None = None
    plan: Plan | None = None
    system: dict[str, pa.Table] = field(default_factory=dict)
    lake_default: bool = False  # run with the lake as default catalog (admin statements)
    writes: bool = False  # changes the lake: run to completion, never streamed
    cached: bool = False  # planned earlier for the same query, catalog and lake snapshot
    in_memory: bool = False  # reads in-memory tables only: its read transaction ends unaided
    # Reads only reflection copies (immutable, named by reflection and snapshot) with
    # deterministic functions: the same SQL always has the same answer, which can be kept.
    keep_answer: bool = False

    @property
    def sql_to_run(self) -> str:
        """The DuckDB SQL to run; only a statement answered already (`table`) has none."""
        assert self.sql is not None, "a statement answered already has no SQL to run"
        return self.sql


class Accelerator(Protocol):
    """What the planner needs from the reflections."""

    def candidates(self, dataset: Dataset) -> list[Any]:
        """Enabled reflections on `dataset`."""

    def lake_state(self) -> Any:
        """The lake's state, read once per plan and passed to `usable`."""

    def usable(self, reflection: Any, dataset: Dataset, state: Any) -> str | None:
        """None when the reflection may answer now, else why not."""

    def relation(self, reflection: Any) -> exp.Expr:
        """The table to read for the reflection."""


class Planner:
    """Binds, checks, accelerates and expands queries."""

    def __init__(
        self,
        resolve: Callable[[Sequence[str], Sequence[str]], Dataset | None],
        allows: Callable[[Principal, str, Sequence[str]], bool],
        accelerator: Accelerator | None,
        describe: Callable[[exp.Select, Ref], list[tuple[str, str]]],
    ) -> None:
        self.resolve = resolve
        self.allows = allows
        self.accelerator = accelerator
        self.describe = describe
        self._views: dict[tuple[str, int], exp.Expr] = {}
        self._relations: dict[str, exp.Expr] = {}

    def plan(
        self,
        ast: exp.Expr,
        who: Principal,
        context: Sequence[str] = (),
        *,
        accelerate: bool = True,
        explain: bool = False,
    ) -> Plan:
        """The plan for `ast` run by `who`; ObjectNotFound for datasets they may not read."""
        bound = bind(ast, self.resolve, context, trusted=who.admin)
        for ref in bound.refs:
            if not self.allows(who, "SELECT", ref.dataset.path):
                raise not_found(ref.dataset.path)
        plan = Plan(
            bound.ast,
            datasets=_unique(r.dataset for r in bound.refs),
            system=bound.system,
            explain=explain,
        )
        plan.ast = self._process(bound, plan, accelerate, ())
        return plan

    def _process(
        self, bound: Bound, plan: Plan, accelerate: bool, stack: tuple[str, ...]
    ) -> exp.Expr:
        for ref in bound.refs:
            if ref.dataset not in plan.read:
                plan.read.append(ref.dataset)
        if accelerate and self.accelerator is not None:
            for ref in bound.refs:
                if not ref.time_travel and not ref.replaced:
                    self._accelerate(ref, bound, plan)
        for ref in bound.refs:
            if ref.replaced:
                continue
            ds = ref.dataset
            if ds.virtual:
                node: exp.Expr = exp.Subquery(
                    this=self._expand_view(ds, plan, accelerate, stack),
                    alias=exp.TableAlias(this=exp.to_identifier(ref.alias, quoted=True)),
                )
                alias = ref.node.args.get("alias")
                columns = alias.args.get("columns") if alias else None
                if columns:
                    node.args["alias"].set("columns", [c.copy() for c in columns])
            else:
                node = replace_table(ref.node, self._relation(ds), ref.alias)
                for key in ("when", "version", "sample"):
                    if ref.node.args.get(key) is not None:
                        node.set(key, ref.node.args[key].copy())
            if ref.node is bound.ast:
                bound.ast = node
            else:
                ref.node.replace(node)
        return bound.ast

    def _expand_view(
        self, ds: Dataset, plan: Plan, accelerate: bool, stack: tuple[str, ...]
    ) -> exp.Expr:
        if ds.key in stack or len(stack) >= MAX_DEPTH:
            raise EngineError(
                f"virtual dataset {paths.render(ds.path)} refers to itself",
                "redefine one of the views on the cycle",
            )
        cache_key = (ds.key, ds.version)
        if cache_key not in self._views:
            self._views[cache_key] = parse_query(ds.sql or "", ds.dialect)
        try:
            inner = bind(self._views[cache_key].copy(), self.resolve, ds.context, trusted=True)
        except ObjectNotFound:
            raise EngineError(
                f"virtual dataset {paths.render(ds.path)} reads a dataset that no longer exists",
                "ask its owner to redefine it (see its dependencies in the catalog)",
            ) from None
        return self._process(inner, plan, accelerate, (*stack, ds.key))

    def _relation(self, ds: Dataset) -> exp.Expr:
        rel = self._relations.get(ds.relation or "")
        if rel is None:
            rel = (
                sqlglot.parse_one(f"SELECT * FROM {ds.relation}", read="duckdb").args["from_"].this
            )
            self._relations[ds.relation or ""] = rel
        return rel.copy()

    def _accelerate(self, ref: Ref, bound: Bound, plan: Plan) -> None:
        acc = self.accelerator
        assert acc is not None
        candidates = sorted(acc.candidates(ref.dataset), key=lambda r: r.cost)
        if not candidates:
            return
        if plan.lake_state is None:
            plan.lake_state = acc.lake_state()
        select = ref.node.parent.parent if ref.node.parent is not None else None
        site = _Site(ref, select if isinstance(select, exp.Select) else None)
        chosen: tuple[Any, exp.Expr] | None = None
        # Cheapest first: the first reflection that answers is the one to read. EXPLAIN
        # goes on to say which costlier ones would also answer.
        for r in candidates:
            outcome = plan.outcome(r, ref.dataset)
            if chosen is not None and not plan.explain:
                outcome.note(f"{chosen[0].name} answers at a lower cost")
                continue
            try:
                new = self._attempt(r, site, plan)
            except Miss as miss:
                outcome.note(str(miss))
                continue
            if chosen is None:
                chosen = (r, new)
                outcome.promote("CHOSEN")
            else:
                outcome.promote("MATCHED")
        if chosen is None:
            return
        r, new = chosen
        target = site.select if r.kind == "AGGREGATION" else ref.node
        # An aggregation is only chosen over a SELECT (see `_attempt`).
        assert target is not None
        if target is bound.ast:
            bound.ast = new
        else:
            target.replace(new)
        ref.replaced = True

    def _attempt(self, r: Any, site: _Site, plan: Plan) -> exp.Expr:
        """What replaces the site when reflection `r` answers; Miss when it cannot."""
        acc = self.accelerator
        assert acc is not None
        ref, select = site.ref, site.select
        reason = acc.usable(r, ref.dataset, plan.lake_state)
        if reason:
            raise Miss(reason)
        if select is None:
            raise Miss("the dataset is not read by a SELECT")
        fields = [f.name for f in ref.dataset.fields]
        if r.kind == "AGGREGATION":
            frm = select.args.get("from_")
            if frm is None or frm.this is not ref.node or select.args.get("joins"):
                raise Miss("the dataset is joined or read inside a larger FROM")
            if site.output is None:
                site.output = self._output(select, ref)
            return rewrite_aggregate(
                select, ref.alias, fields, r.layout, acc.relation(r), site.output, r.column_types
            )
        raw_covers(select, ref.node, ref.alias, fields, r.spec.display)
        return replace_table(ref.node, acc.relation(r), ref.alias)

    def _output(self, select: exp.Select, ref: Ref) -> list[tuple[str, str]]:
        try:
            return self.describe(select, ref)
        except EngineError as exc:
            raise Miss(f"the query does not bind on the dataset alone ({exc.message})") from None


def _unique(items: Any) -> list[Dataset]:
    out: list[Dataset] = []
    for d in items:
        if d not in out:
            out.append(d)
    return out
