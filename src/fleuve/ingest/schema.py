"""The bronze table's columns: planned from a stream's extract, evolved as the source drifts.

A stream's columns get normalized names and the types bronze stores; a column whose type
changed is widened when every old value fits the new type (`absorb`), and refused otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from fleuve.config import StreamSettings
from fleuve.ingest.connectors.base import SOURCE_FILE, Extract, stream_types
from fleuve.ingest.errors import SchemaDriftError
from fleuve.ingest.names import normalize_all
from fleuve.ingest.state import EXTRACTED_AT, INGESTION_DATE, SYNC_ID
from fleuve.lake import quote_ident

_INTS = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"]
_UINTS = ["UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"]
_FLOATS = ["FLOAT", "DOUBLE"]
_TEXT = ("VARCHAR", "JSON")
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_HUGE = re.compile(r"\bU?HUGEINT\b")


@dataclass
class Column:
    """A bronze column: its name, its type and the expression that fills it from the source."""

    name: str
    type: str
    expr: str
    source: str
    # `expr` converts the source's value: a non-NULL value it turns into NULL rejects the row.
    checked: bool = False


def plan_columns(
    con: duckdb.DuckDBPyConnection, extract: Extract, stream: StreamSettings
) -> list[Column]:
    """The bronze columns for this extract: normalized names, declared types, nested JSON."""
    if extract.describe is None:
        extract.scannable(con)
    described = [
        (r[0], r[1])
        for r in con.execute(
            f"DESCRIBE SELECT * FROM ({extract.describe or extract.relation}) AS src"
        ).fetchall()
        if r[0] != SOURCE_FILE
    ]
    declared = stream_types(stream)
    typed_at_source = _typed_by_source(extract)
    raw: list[tuple[str, str, str]] = []  # (source name, type, expression)
    for src_name, kind in described:
        expr = f"src.{quote_ident(src_name)}"
        if stream.flatten and kind.startswith("STRUCT"):
            raw.extend(_flatten(con, extract.relation, src_name, expr))
            continue
        nested = kind.startswith(("STRUCT", "MAP")) or kind.endswith("]")
        if nested and (stream.flatten or extract.nested_as_json):
            raw.append((src_name, "JSON", f"to_json({expr})"))
            continue
        if src_name in declared and not typed_at_source:
            kind = stored_type(str(declared[src_name]).upper())
            expr = f"TRY_CAST({expr} AS {kind})"
        raw.append((src_name, kind, expr))
    names = normalize_all([r[0] for r in raw])
    return [
        Column(n, stored_type(kind), expr, src, checked=expr.startswith("TRY_CAST("))
        for n, (src, kind, expr) in zip(names, raw, strict=True)
    ]


# json_type() of a value → the kind of column it belongs in.
_JSON_KINDS = {
    "VARCHAR": "VARCHAR",
    "BIGINT": "BIGINT",
    "UBIGINT": "BIGINT",
    "DOUBLE": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "OBJECT": "JSON",
    "ARRAY": "JSON",
}


def settle_types(
    con: duckdb.DuckDBPyConnection,
    extract: Extract,
    columns: list[Column],
    established: dict[str, str],
) -> None:
    """Give each column of a source whose types are inferred from values one type, keeping
    every value's text: the bronze table's type when it has the column, else the type most of
    this read's values have. Values that do not fit are checked, so that their rows are
    rejected rather than stored changed (a string in JSON quotes, a NULL)."""
    for col in columns:
        old = established.get(col.name)
        # The reader met values of several kinds (strings and numbers, say).
        mixed = col.type == "JSON" and col.expr == f"src.{quote_ident(col.source)}"
        if mixed and old is None:
            counts = con.execute(
                f"SELECT json_type({col.expr}) AS kind, count(*) FROM ({extract.relation}) AS src "
                f"WHERE {col.expr} IS NOT NULL GROUP BY kind"
            ).fetchall()
            votes: dict[str, int] = {}
            for kind, n in counts:
                if kind in _JSON_KINDS:
                    votes[_JSON_KINDS[kind]] = votes.get(_JSON_KINDS[kind], 0) + n
            if "DOUBLE" in votes and "BIGINT" in votes:
                votes["DOUBLE"] += votes.pop("BIGINT")
            # Ties go to text, which holds any value as it was written.
            order = ["VARCHAR", "JSON", "DOUBLE", "BIGINT", "BOOLEAN"]
            winner = max(order, key=lambda k: (votes.get(k, 0), -order.index(k)))
            if winner != "JSON":
                _convert(col, winner)
            continue
        if old is not None and (
            (mixed and old != "JSON") or (not mixed and absorb(old, col.type)[0] == "no")
        ):
            _convert(col, old)


def _convert(col: Column, kind: str) -> None:
    """Read `col` as `kind`: JSON values by their text (a string without its quotes)."""
    value = f"json_extract_string({col.expr}, '$')" if col.type == "JSON" else col.expr
    col.expr = value if kind == "VARCHAR" else f"TRY_CAST({value} AS {kind})"
    col.type, col.checked = kind, kind != "VARCHAR"


def stored_type(kind: str) -> str:
    """The bronze type for values of type `kind`: 128-bit integers become DECIMAL(38,0).

    DuckDB writes HUGEINT and UHUGEINT to Parquet as DOUBLE, so a lake column of those types
    keeps 53 bits of each value (and cannot read back the largest UHUGEINT values).
    """
    return _HUGE.sub("DECIMAL(38,0)", kind)


def _flatten(
    con: duckdb.DuckDBPyConnection, relation: str, name: str, expr: str
) -> list[tuple[str, str, str]]:
    """A STRUCT column as one column per leaf: {'a': {'b': 1}} → a_b."""
    fields = con.execute(f"DESCRIBE SELECT unnest({expr}) FROM ({relation}) AS src").fetchall()
    out: list[tuple[str, str, str]] = []
    for child, kind, *_ in fields:
        child_expr = f"{expr}.{quote_ident(child)}"
        child_name = f"{name}_{child}"
        if kind.startswith("STRUCT"):
            out.extend(_flatten(con, relation, child_name, child_expr))
        elif kind.endswith("]") or kind.startswith("MAP"):
            out.append((child_name, "JSON", f"to_json({child_expr})"))
        else:
            out.append((child_name, kind, child_expr))
    return out


def _typed_by_source(extract: Extract) -> bool:
    """True when the source's reader applied the declared types itself."""
    # CSV readers apply declared types themselves and report the rows that fail.
    return extract.rejected is not None and "read_csv(" in extract.relation


def create_table(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[Column], with_file: bool
) -> None:
    """Create a stream's bronze table with `columns`, the sync's columns and its partitioning."""
    cols = [f"{quote_ident(c.name)} {c.type}" for c in columns]
    cols += [f"{EXTRACTED_AT} TIMESTAMP WITH TIME ZONE", f"{SYNC_ID} VARCHAR"]
    cols.append(f"{INGESTION_DATE} DATE")
    if with_file:
        cols.append(f"{SOURCE_FILE} VARCHAR")
    con.execute(f"CREATE TABLE {table} ({', '.join(cols)})")
    # One key, the date itself: every row of a sync lands in a single partition, which the
    # engine writes without splitting rows and Fleuve can write itself (`direct`).
    con.execute(f"ALTER TABLE {table} SET PARTITIONED BY ({INGESTION_DATE})")


def reconcile(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[Column], with_file: bool
) -> list[str]:
    """Evolve `table` to take `columns`: add new ones, widen types; fail on incompatible ones."""
    current = {r[0]: r[1] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    changes: list[str] = []
    problems: list[str] = []
    for col in columns:
        ident = quote_ident(col.name)
        old = current.get(col.name)
        if old is None:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {ident} {col.type}")
            changes.append(f"added column {col.name} {col.type}")
            continue
        verdict, target = absorb(old, col.type)
        if verdict == "same":
            continue
        if stored_type(target) != target:  # a 128-bit integer ladder's top, stored as a decimal
            verdict, target = "rewrite", stored_type(target)
        if verdict == "promote":
            con.execute(f"ALTER TABLE {table} ALTER COLUMN {ident} SET DATA TYPE {target}")
            changes.append(f"widened {col.name} from {old} to {target}")
        elif verdict == "rewrite":
            tmp = quote_ident(f"{col.name}__fleuve_widened")
            con.execute(f"ALTER TABLE {table} ADD COLUMN {tmp} {target}")
            con.execute(f"UPDATE {table} SET {tmp} = CAST({ident} AS {target})")
            con.execute(f"ALTER TABLE {table} DROP COLUMN {ident}")
            con.execute(f"ALTER TABLE {table} RENAME COLUMN {tmp} TO {ident}")
            changes.append(f"widened {col.name} from {old} to {target}")
        else:
            problems.append(f"column '{col.name}' changed from {old} to {col.type}")
    if with_file and SOURCE_FILE not in current:
        con.execute(f"ALTER TABLE {table} ADD COLUMN {SOURCE_FILE} VARCHAR")
    if problems:
        raise SchemaDriftError(
            f"{table}: incompatible schema change, nothing committed for this stream: "
            + "; ".join(problems),
            "restore the source type, or declare the column's type in the stream's options.types, "
            "or drop the bronze table to start it again",
        )
    return changes


def absorb(old: str, new: str) -> tuple[str, str]:
    """How a bronze column of type `old` takes values of type `new`: same, promote, rewrite or no."""
    old, new = old.upper(), new.upper()
    if old == new or (old in _TEXT and new in _TEXT) or old == "VARCHAR":
        return "same", old
    for ladder in (_INTS, _UINTS, _FLOATS):
        if old in ladder and new in ladder:
            return ("same", old) if ladder.index(new) <= ladder.index(old) else ("promote", new)
    if old in _UINTS and new in _INTS and _INTS.index(new) > _UINTS.index(old):
        return "rewrite", new
    if old in _INTS and new in _UINTS:
        return (
            ("same", old)
            if _UINTS.index(new) < _INTS.index(old)
            else ("rewrite", _INTS[min(4, _UINTS.index(new) + 1)])
        )
    old_dec, new_dec = _DECIMAL.fullmatch(old), _DECIMAL.fullmatch(new)
    if old_dec and new_dec:
        (p1, s1), (p2, s2) = (map(int, old_dec.groups())), (map(int, new_dec.groups()))
        whole, scale = max(p1 - s1, p2 - s2), max(s1, s2)
        if (whole, scale) == (p1 - s1, s1):
            return "same", old
        return "rewrite", f"DECIMAL({min(38, whole + scale)},{scale})"
    if old in _FLOATS and (new in _INTS or new in _UINTS or new_dec):
        return "same", old
    if (old in _INTS or old in _UINTS or old_dec) and new in _FLOATS:
        return "rewrite", "DOUBLE"
    if old in _INTS and new_dec:
        digits = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19, "HUGEINT": 38}[old]
        p2, s2 = map(int, new_dec.groups())
        return "rewrite", f"DECIMAL({min(38, max(digits, p2 - s2) + s2)},{s2})"
    if old_dec and new in _INTS:
        p1, s1 = map(int, old_dec.groups())
        digits = {"TINYINT": 3, "SMALLINT": 5, "INTEGER": 10, "BIGINT": 19, "HUGEINT": 38}[new]
        return (
            ("same", old)
            if digits <= p1 - s1
            else ("rewrite", f"DECIMAL({min(38, digits + s1)},{s1})")
        )
    if old == "DATE" and new.startswith("TIMESTAMP"):
        return "rewrite", new
    if old.startswith("TIMESTAMP") and new == "DATE":
        return "same", old
    if old == "TIMESTAMP" and new == "TIMESTAMP WITH TIME ZONE":
        return "rewrite", new
    if old == "TIMESTAMP WITH TIME ZONE" and new == "TIMESTAMP":
        return "same", old
    return "no", old


def bronze_name(columns: list[Column], source_name: str | None) -> str | None:
    """The bronze name of a source column (named by its source or bronze name), if planned."""
    if not source_name:
        return None
    for col in columns:
        if col.source == source_name or col.name == source_name:
            return col.name
    return None
