"""Lineage: how data flows from bronze through the dbt layers to the marts and what reads them.

The graph comes from providers, called in order. Fleuve's own two read dbt: the manifest gives
the tables and their edges (sources → staging → intermediate → marts → exposures such as
dashboards), and the compiled SQL of each model, read with sqlglot against the lake's schemas,
gives column-level edges. Other layers register their own providers to attach reflections and
dashboards downstream of the tables they read.
"""

from __future__ import annotations

import difflib
import importlib
import json
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleuve.config import Settings
from fleuve.errors import FleuveError
from fleuve.lake import CATALOG, Lake
from fleuve.transform.dbt import project_files, relation_name, run_dbt, target_dir

log = logging.getLogger("fleuve.transform")

# Display order of the layers; others (reflections, dashboards, ...) follow in insertion order.
LAYER_ORDER = ("bronze", "staging", "intermediate", "marts")


@dataclass
class LineageNode:
    """A table, view, dashboard or reflection in the lineage graph."""

    id: str
    """'schema.table' for lake relations (e.g. 'silver.stg_orders'), '<kind>:<name>' otherwise."""
    kind: str
    """'source', 'model', or what another layer attaches: 'dashboard', 'reflection', ..."""
    name: str
    layer: str
    """'bronze', 'staging', 'intermediate', 'marts', or the attaching layer's own."""
    relation: str | None = None
    materialized: str | None = None
    description: str = ""
    columns: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    dbt_unique_id: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True, order=True)
class ColumnRef:
    """One column of one node."""

    node: str
    column: str

    def __str__(self) -> str:
        return f"{self.node}.{self.column}"


@dataclass
class LineageContext:
    """What providers may use: the project's settings and, if open, its lake."""

    settings: Settings
    lake: Lake | None = None
    columns: bool = True


LineageProvider = Callable[["Lineage", LineageContext], None]
_PROVIDERS: list[LineageProvider] = []
# Fleuve's providers in the layers above: loaded by `lineage`, whoever asks for the graph (the
# command line, the API, the UI), so that every caller sees the same graph.
BUILTIN_PROVIDERS = ("fleuve.dashboards.graph",)


def register_lineage_provider(provider: LineageProvider) -> LineageProvider:
    """Add a provider called, after Fleuve's own, each time the graph is built (a decorator)."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def unregister_lineage_provider(provider: LineageProvider) -> None:
    """Remove a provider added with register_lineage_provider."""
    if provider in _PROVIDERS:
        _PROVIDERS.remove(provider)


class Lineage:
    """A directed graph of nodes (tables, dashboards, ...) with column-level edges where known."""

    def __init__(self) -> None:
        self.nodes: dict[str, LineageNode] = {}
        self._parents: dict[str, set[str]] = defaultdict(set)
        self._children: dict[str, set[str]] = defaultdict(set)
        self._column_parents: dict[ColumnRef, set[ColumnRef]] = defaultdict(set)
        self._column_children: dict[ColumnRef, set[ColumnRef]] = defaultdict(set)

    # -- building ---------------------------------------------------------------------

    def add(self, node: LineageNode, upstream: Iterable[str] = ()) -> LineageNode:
        """Add (or replace) a node and link it below each of `upstream` (ids, names, relations)."""
        self.nodes[node.id] = node
        for ref in upstream:
            self.link(self.node(ref).id, node.id)
        return node

    def link(self, parent: str, child: str) -> None:
        """Record that `child` reads `parent`."""
        self._parents[child].add(parent)
        self._children[parent].add(child)

    def link_columns(self, parent: ColumnRef, child: ColumnRef) -> None:
        """Record that column `child` is computed from column `parent`."""
        self._column_parents[child].add(parent)
        self._column_children[parent].add(child)

    # -- reading ----------------------------------------------------------------------

    def node(self, ref: str) -> LineageNode:
        """The node named by id ('silver.stg_orders'), name ('stg_orders') or dbt unique id."""
        if ref in self.nodes:
            return self.nodes[ref]
        matches = [n for n in self.nodes.values() if ref in (n.name, n.dbt_unique_id, n.relation)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise FleuveError(
                f"'{ref}' names several lineage nodes: {', '.join(sorted(n.id for n in matches))}",
                "give the full id, e.g. schema.table",
            )
        close = difflib.get_close_matches(
            ref, [*self.nodes, *(n.name for n in self.nodes.values())]
        )
        hint = f"did you mean {' or '.join(repr(c) for c in close[:3])}?" if close else ""
        raise FleuveError(
            f"no lineage node '{ref}'",
            hint or "list the nodes with `fleuve transform lineage`",
        )

    @property
    def edges(self) -> list[tuple[str, str]]:
        """(upstream id, downstream id) pairs, sorted."""
        return sorted((p, c) for c, ps in self._parents.items() for p in ps)

    def parents(self, ref: str) -> list[LineageNode]:
        """The nodes `ref` reads directly."""
        return [self.nodes[i] for i in sorted(self._parents.get(self.node(ref).id, ()))]

    def children(self, ref: str) -> list[LineageNode]:
        """The nodes that read `ref` directly."""
        return [self.nodes[i] for i in sorted(self._children.get(self.node(ref).id, ()))]

    def upstream(self, ref: str) -> list[LineageNode]:
        """Every node `ref` depends on, nearest first."""
        return [self.nodes[i] for i in _walk(self.node(ref).id, self._parents)]

    def downstream(self, ref: str) -> list[LineageNode]:
        """Every node that depends on `ref`, nearest first: what a change to it affects."""
        return [self.nodes[i] for i in _walk(self.node(ref).id, self._children)]

    def column_sources(self, ref: str, column: str, *, recursive: bool = True) -> list[ColumnRef]:
        """The columns `ref.column` is computed from; with `recursive`, back to the sources."""
        start = ColumnRef(self.node(ref).id, column)
        if not recursive:
            return sorted(self._column_parents.get(start, ()))
        return sorted(
            c for c in _walk(start, self._column_parents) if not self._column_parents.get(c)
        )

    def column_dependents(self, ref: str, column: str) -> list[ColumnRef]:
        """Every column computed, directly or not, from `ref.column`."""
        return sorted(_walk(ColumnRef(self.node(ref).id, column), self._column_children))

    def layers(self) -> dict[str, list[LineageNode]]:
        """Nodes grouped by layer, bronze → staging → intermediate → marts → the rest."""
        out: dict[str, list[LineageNode]] = {layer: [] for layer in LAYER_ORDER}
        for node in sorted(self.nodes.values(), key=lambda n: n.id):
            out.setdefault(node.layer, []).append(node)
        return {k: v for k, v in out.items() if v}

    def to_dict(self) -> dict[str, Any]:
        """The graph as JSON-ready data: nodes, edges and column edges."""
        return {
            "nodes": [n.to_dict() for layer in self.layers().values() for n in layer],
            "edges": [{"from": p, "to": c} for p, c in self.edges],
            "columns": [
                {
                    "from": {"node": p.node, "column": p.column},
                    "to": {"node": c.node, "column": c.column},
                }
                for c, ps in sorted(self._column_parents.items())
                for p in sorted(ps)
            ],
        }


def lineage(settings: Settings, *, lake: Lake | None = None, columns: bool = True) -> Lineage:
    """The project's lineage graph, built by every registered provider.

    `lake` lends the column-level provider the lake's table schemas (one is opened briefly when
    not given); `columns=False` skips column-level lineage.
    """
    for module in BUILTIN_PROVIDERS:
        importlib.import_module(module)  # registers its provider, once
    graph = Lineage()
    context = LineageContext(settings, lake, columns)
    for provider in list(_PROVIDERS):
        provider(graph, context)
    return graph


# -- Fleuve's providers ---------------------------------------------------------------------

_MANIFEST_CACHE: dict[Path, tuple[int, dict[str, Any]]] = {}
_COLUMN_CACHE: dict[tuple[Path, int], dict[str, set[tuple[str, str, str]]]] = {}


def dbt_manifest(graph: Lineage, context: LineageContext) -> None:
    """Sources, models and exposures from dbt's manifest, with their table-level edges."""
    manifest = _load_manifest(context.settings)
    for source in manifest.get("sources", {}).values():
        graph.add(
            LineageNode(
                id=f"{source['schema']}.{source['name']}",
                kind="source",
                name=source["name"],
                layer=source["schema"],
                relation=f"{source['schema']}.{source['name']}",
                description=source.get("description") or "",
                columns=list(source.get("columns") or {}),
                dbt_unique_id=source["unique_id"],
            )
        )
    models = [n for n in manifest.get("nodes", {}).values() if n["resource_type"] == "model"]
    ids = {
        s["unique_id"]: f"{s['schema']}.{s['name']}" for s in manifest.get("sources", {}).values()
    }
    for model in models:
        relation = (
            relation_name(model.get("relation_name")) or f"{model['schema']}.{model['alias']}"
        )
        fqn = model.get("fqn") or []
        graph.add(
            LineageNode(
                id=relation,
                kind="model",
                name=model["name"],
                layer=fqn[1] if len(fqn) > 2 else model["schema"],
                relation=relation,
                materialized=(model.get("config") or {}).get("materialized"),
                description=model.get("description") or "",
                columns=list(model.get("columns") or {}),
                dbt_unique_id=model["unique_id"],
            )
        )
        ids[model["unique_id"]] = relation
    for model in models:
        for dep in model["depends_on"]["nodes"]:
            if dep in ids:
                graph.link(ids[dep], ids[model["unique_id"]])
    for test in manifest.get("nodes", {}).values():
        if test["resource_type"] != "test":
            continue
        for dep in test["depends_on"]["nodes"]:
            if dep in ids and test["name"] not in graph.nodes[ids[dep]].tests:
                graph.nodes[ids[dep]].tests.append(test["name"])
    for exposure in manifest.get("exposures", {}).values():
        kind = exposure.get("type") or "exposure"
        graph.add(
            LineageNode(
                id=f"{kind}:{exposure['name']}",
                kind=kind,
                name=exposure["name"],
                layer=f"{kind}s",
                description=exposure.get("description") or exposure.get("label") or "",
                dbt_unique_id=exposure["unique_id"],
                url=exposure.get("url"),
            ),
            upstream=[ids[d] for d in exposure["depends_on"]["nodes"] if d in ids],
        )


def dbt_columns(graph: Lineage, context: LineageContext) -> None:
    """Column-level edges of every model, read from its compiled SQL with sqlglot."""
    if not context.columns:
        return
    settings = context.settings
    manifest = _load_manifest(settings)
    project_dir = settings.path(settings.transform.project_dir)
    compiled_dir = target_dir(settings) / "compiled"
    models = [n for n in manifest.get("nodes", {}).values() if n["resource_type"] == "model"]
    compiled = {
        n["unique_id"]: compiled_dir / n["package_name"] / n["original_file_path"] for n in models
    }
    # A model never compiled, or edited since, is compiled now (dbt writes the SQL it runs).
    stale = [
        n["name"]
        for n in models
        if not compiled[n["unique_id"]].exists()
        or compiled[n["unique_id"]].stat().st_mtime_ns
        < (project_dir / n["original_file_path"]).stat().st_mtime_ns
    ]
    if stale:
        run_dbt(settings, ["compile", "--select", *stale])
    schema = _lake_schema(context)
    if schema is None:
        return
    for uid, path in compiled.items():
        if not path.exists():
            continue
        child = graph.node(uid).id
        for column, sources in _column_sources(path, schema).items():
            for schema_name, table, source_column in sources:
                parent = f"{schema_name}.{table}"
                if parent in graph.nodes:
                    graph.link_columns(ColumnRef(parent, source_column), ColumnRef(child, column))


register_lineage_provider(dbt_manifest)
register_lineage_provider(dbt_columns)


def manifest_needs_parse(settings: Settings) -> bool:
    """True when the dbt project changed since Fleuve's last manifest.json, or there is none."""
    path = target_dir(settings) / "manifest.json"
    project_dir = settings.path(settings.transform.project_dir)
    newest = max((p.stat().st_mtime_ns for p in project_files(project_dir)), default=0)
    return not path.exists() or path.stat().st_mtime_ns < newest


def _load_manifest(settings: Settings) -> dict[str, Any]:
    """Fleuve's last manifest.json, parsed again first when the dbt project changed since."""
    path = target_dir(settings) / "manifest.json"
    project_dir = settings.path(settings.transform.project_dir)
    if manifest_needs_parse(settings):
        parsed = run_dbt(settings, ["parse"])
        if not parsed.success or not path.exists():
            raise FleuveError(
                f"cannot read the dbt project in {project_dir}: {parsed.error or parsed.summary()}",
                "fix the project until `dbt parse --profiles-dir .` succeeds in that folder",
            )
    mtime = path.stat().st_mtime_ns
    cached = _MANIFEST_CACHE.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    manifest = json.loads(path.read_text(encoding="utf-8"))
    _MANIFEST_CACHE[path] = (mtime, manifest)
    return manifest


def _lake_schema(context: LineageContext) -> dict[str, Any] | None:
    """{catalog: {schema: {table: {column: type}}}} of the lake, for sqlglot to expand `*`."""
    lake = context.lake or Lake(context.settings, create=False)
    try:
        with lake.session() as con:
            rows = con.execute(
                "SELECT table_schema, table_name, column_name, data_type "
                "FROM information_schema.columns WHERE table_catalog = ?",
                [CATALOG],
            ).fetchall()
    except FleuveError as exc:
        log.warning("column lineage skipped: lake unavailable", extra={"error": exc.message})
        return None
    finally:
        if context.lake is None:
            lake.close()
    schema: dict[str, Any] = {}
    for schema_name, table, column, dtype in rows:
        schema.setdefault(CATALOG, {}).setdefault(schema_name, {}).setdefault(table, {})[column] = (
            dtype
        )
    return schema


def _column_sources(path: Path, schema: dict[str, Any]) -> dict[str, set[tuple[str, str, str]]]:
    """For each output column of a compiled model: the (schema, table, column)s it reads."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage as sql_lineage

    key = (path, path.stat().st_mtime_ns)
    if key in _COLUMN_CACHE:
        return _COLUMN_CACHE[key]
    out: dict[str, set[tuple[str, str, str]]] = {}
    try:
        nodes = sql_lineage(None, path.read_text(encoding="utf-8"), schema=schema, dialect="duckdb")
    except (SqlglotError, ValueError, KeyError) as exc:
        log.warning("no column lineage for %s", path.name, extra={"error": str(exc)[:200]})
        nodes = {}
    for column, root in nodes.items():
        out[column] = {
            (n.source.db, n.source.name, n.name.split(".")[-1])
            for n in root.walk()
            if isinstance(n.source, exp.Table) and not n.downstream
        }
    _COLUMN_CACHE[key] = out
    return out


def _walk(start: Any, edges: dict[Any, set[Any]]) -> list[Any]:
    """Breadth-first reachable keys from `start` (excluded), nearest first."""
    seen, order, queue = {start}, [], deque([start])
    while queue:
        for nxt in sorted(edges.get(queue.popleft(), ())):
            if nxt not in seen:
                seen.add(nxt)
                order.append(nxt)
                queue.append(nxt)
    return order
