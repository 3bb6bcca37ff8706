"""What a caller may see of the catalog, read through the engine's INFORMATION_SCHEMA (grants apply)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from fleuve.errors import FleuveError
from fleuve.lake import quote_ident
from fleuve.serve.queries import Caller, Queries
from fleuve.transform.lineage import Lineage

# INFORMATION_SCHEMA table types as Flight SQL and JDBC name them.
TABLE_TYPES = {"TABLE": "TABLE", "VIEW": "VIEW", "SYSTEM_TABLE": "SYSTEM TABLE"}


@dataclass(frozen=True)
class VisibleDataset:
    """A table or view a caller can query."""

    catalog: str
    schema: str  # Dremio-style: "gold", or "My Space.folder"
    name: str
    type: str  # TABLE, VIEW or SYSTEM TABLE

    @property
    def path(self) -> list[str]:
        """The path parts, e.g. ['gold', 'fct_daily_revenue']."""
        return [*self.schema.split("."), self.name]

    @property
    def sql_name(self) -> str:
        """The dataset's quoted name for a query."""
        return ".".join(quote_ident(part) for part in self.path)


def like(pattern: str | None) -> re.Pattern[str] | None:
    """A compiled regex for a SQL LIKE pattern ('%' any run, '_' one character)."""
    if pattern is None or pattern == "%":
        return None
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


def _rows(queries: Queries, caller: Caller, sql: str) -> list[dict]:
    stream = queries.stream(sql, caller)
    table = pa.Table.from_batches(list(stream.batches), schema=stream.schema)
    return [{k.upper(): v for k, v in row.items()} for row in table.to_pylist()]


def schemas(
    queries: Queries, caller: Caller, *, schema_like: str | None = None
) -> list[tuple[str, str]]:
    """(catalog, schema) pairs `caller` may see."""
    pattern = like(schema_like)
    rows = _rows(queries, caller, "SELECT * FROM INFORMATION_SCHEMA.SCHEMATA")
    found = {
        (r["CATALOG_NAME"], r["SCHEMA_NAME"])
        for r in rows
        if not pattern or pattern.match(r["SCHEMA_NAME"])
    }
    return sorted(found)


def datasets(
    queries: Queries,
    caller: Caller,
    *,
    schema_like: str | None = None,
    name_like: str | None = None,
) -> list[VisibleDataset]:
    """The tables and views `caller` may see, ordered by schema then name."""
    schema_re, name_re = like(schema_like), like(name_like)
    out = set()
    for row in _rows(queries, caller, 'SELECT * FROM INFORMATION_SCHEMA."TABLES"'):
        schema, name = row["TABLE_SCHEMA"], row["TABLE_NAME"]
        if (schema_re and not schema_re.match(schema)) or (name_re and not name_re.match(name)):
            continue
        kind = TABLE_TYPES.get(str(row["TABLE_TYPE"]).upper(), "TABLE")
        out.add(VisibleDataset(row["TABLE_CATALOG"], schema, name, kind))
    return sorted(out, key=lambda d: (d.schema, d.name))


def arrow_schema(queries: Queries, caller: Caller, dataset: VisibleDataset) -> pa.Schema:
    """The columns of a dataset as an Arrow schema (an empty read through the engine)."""
    stream = queries.stream(f"SELECT * FROM {dataset.sql_name} LIMIT 0", caller)
    for _ in stream.batches:
        pass
    return stream.schema


def visible_lineage(
    queries: Queries, username: str, graph: Lineage, keep: Iterable[str] | None = None
) -> dict[str, Any]:
    """The graph's JSON (only the nodes in `keep` if given) without the lake tables `username`
    may not read, nor edges to them: a view's grantee does not learn what the view reads."""
    body = graph.to_dict()
    kept = {n["id"] for n in body["nodes"]} if keep is None else set(keep)
    if not queries.engine.grants.principal(username).admin:
        kept = {i for i in kept if _readable(queries, username, graph.nodes[i].relation)}
    body["nodes"] = [n for n in body["nodes"] if n["id"] in kept]
    body["edges"] = [e for e in body["edges"] if e["from"] in kept and e["to"] in kept]
    body["columns"] = [
        c for c in body["columns"] if c["from"]["node"] in kept and c["to"]["node"] in kept
    ]
    return body


def _readable(queries: Queries, username: str, relation: str | None) -> bool:
    """Lake tables show only to who may read them; other nodes (dashboards...) to everyone."""
    if relation is None:
        return True
    try:
        queries.engine.dataset(relation, user=username)
    except FleuveError:
        return False
    return True
