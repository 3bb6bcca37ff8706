"""What a caller may see of the catalog, read through the engine's INFORMATION_SCHEMA."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

from fleuve.lake import quote_ident
from fleuve.serve.queries import Caller, Queries

# DuckDB's own catalogs and the lake's metadata database are not datasets.
_HIDDEN_CATALOGS = re.compile(r"^(system|temp|memory|__ducklake_metadata_.*)$")
_HIDDEN_SCHEMAS = {"information_schema", "pg_catalog", "main"}
TABLE_TYPES = {"BASE TABLE": "TABLE", "TABLE": "TABLE", "VIEW": "VIEW"}


@dataclass(frozen=True)
class Dataset:
    """A table or view a caller can query."""

    schema: str
    name: str
    type: str  # TABLE or VIEW

    @property
    def path(self) -> list[str]:
        """The Dremio-style path: [schema, name]."""
        return [self.schema, self.name]


def like(pattern: str | None) -> re.Pattern[str] | None:
    """A compiled regex for a SQL LIKE pattern ('%' any run, '_' one character)."""
    if pattern is None or pattern == "%":
        return None
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


def _rows(queries: Queries, caller: Caller, sql: str) -> list[dict]:
    stream = queries.stream(sql, caller)
    table = pa.Table.from_batches(list(stream.batches), schema=stream.schema)
    return [{k.lower(): v for k, v in row.items()} for row in table.to_pylist()]


def datasets(
    queries: Queries,
    caller: Caller,
    *,
    schema_like: str | None = None,
    name_like: str | None = None,
) -> list[Dataset]:
    """The tables and views `caller` may see, ordered by schema then name."""
    schema_re, name_re = like(schema_like), like(name_like)
    out = set()
    for row in _rows(queries, caller, 'SELECT * FROM INFORMATION_SCHEMA."TABLES"'):
        catalog, schema, name = (
            row.get("table_catalog") or "",
            row["table_schema"],
            row["table_name"],
        )
        if _HIDDEN_CATALOGS.match(catalog) or schema.lower() in _HIDDEN_SCHEMAS:
            continue
        if (schema_re and not schema_re.match(schema)) or (name_re and not name_re.match(name)):
            continue
        out.add(Dataset(schema, name, TABLE_TYPES.get(str(row.get("table_type")).upper(), "TABLE")))
    return sorted(out, key=lambda d: (d.schema, d.name))


def schemas(queries: Queries, caller: Caller, *, schema_like: str | None = None) -> list[str]:
    """The schemas holding at least one dataset `caller` may see."""
    return sorted({d.schema for d in datasets(queries, caller, schema_like=schema_like)})


def arrow_schema(queries: Queries, caller: Caller, dataset: Dataset) -> pa.Schema:
    """The columns of a dataset as an Arrow schema (an empty read through the engine)."""
    stream = queries.stream(
        f"SELECT * FROM {quote_ident(dataset.schema)}.{quote_ident(dataset.name)} LIMIT 0", caller
    )
    for _ in stream.batches:
        pass
    return stream.schema
