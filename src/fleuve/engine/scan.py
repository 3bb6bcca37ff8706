"""Plain scans of big lake tables, streamed by Arrow's Parquet reader.

DuckDB hands a streamed result to Arrow on one thread, so a plain `SELECT *` of a big table
(an export, a Flight client pulling a dataset) is bound by that conversion. When the query is a
plain scan of one lake table whose local Parquet files hold exactly its rows — no deletions, no
inlined rows, every file written with the table's current columns — Arrow reads those files
itself, decoding them on every core. Anything else, and any doubt, goes to DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
from sqlglot import exp

from fleuve.lake import CATALOG, Lake, quote_ident

if TYPE_CHECKING:
    import pyarrow.dataset as pds

# Smaller tables are quicker through DuckDB than through the checks below.
MIN_BYTES = 16 << 20
MAX_FILES = 256
_SELECT_ARGS = {"expressions", "from_"}
_TABLE_ARGS = {"this", "db", "catalog", "alias"}


def plain_scan(ast: exp.Expr) -> tuple[str, str, list[str] | None] | None:
    """(schema, table, columns read or None for all) of a plain scan of one lake table."""
    if not isinstance(ast, exp.Select) or {k for k, v in ast.args.items() if v} - _SELECT_ARGS:
        return None
    source = ast.args["from_"].this if ast.args.get("from_") else None
    if not isinstance(source, exp.Table) or {k for k, v in source.args.items() if v} - _TABLE_ARGS:
        return None
    if source.catalog.lower() != CATALOG or not source.db:
        return None
    alias = source.alias_or_name
    if len(ast.expressions) == 1 and isinstance(ast.expressions[0], exp.Star):
        return (source.db, source.name, None) if not any(ast.expressions[0].args.values()) else None
    columns = []
    for e in ast.expressions:
        target = e.this if isinstance(e, exp.Alias) else e
        if not (
            isinstance(target, exp.Column)
            and isinstance(target.this, exp.Identifier)
            and target.table in ("", alias)
            and not target.args.get("db")
        ):
            return None
        columns.append(target.name)
    return source.db, source.name, columns


def open_scan(
    lake: Lake, cur: duckdb.DuckDBPyConnection, ast: exp.Expr, sql: str, batch_rows: int
) -> pa.RecordBatchReader | None:
    """Arrow's reader over the table's files, when `ast` is a plain scan they answer exactly."""
    scan = plain_scan(ast)
    if scan is None:
        return None
    schema, table, columns = scan
    # One transaction: the files, the column ids and the row count of one snapshot.
    cur.execute("BEGIN TRANSACTION")
    try:
        dataset = _dataset(lake, cur, schema, table)
        # The result as DuckDB would give it: the reference the files must match.
        expected = cur.execute(f"{sql} LIMIT 0").to_arrow_table().schema if dataset else None
    except (duckdb.Error, pa.ArrowException, OSError):
        cur.execute("ROLLBACK")
        return None  # DuckDB runs the query, and reports what is wrong with it
    cur.execute("COMMIT")
    if dataset is None or expected is None:
        return None
    names = expected.names if columns is None else columns
    if len(names) != len(expected) or any(
        dataset.schema.get_field_index(n) < 0 or dataset.schema.field(n).type != f.type
        for n, f in zip(names, expected, strict=True)
    ):
        return None
    scanner = dataset.scanner(columns=names, batch_size=batch_rows, use_threads=True)
    return pa.RecordBatchReader.from_batches(expected, _renamed(scanner.to_reader(), expected))


def _dataset(
    lake: Lake, cur: duckdb.DuckDBPyConnection, schema: str, table: str
) -> pds.Dataset | None:
    """The table's files as one Arrow dataset, if they hold exactly its rows; else None."""
    files = cur.execute(
        "SELECT data_file, data_file_size_bytes, data_file_encryption_key, delete_file "
        "FROM ducklake_list_files(?, ?, schema => ?)",
        [CATALOG, table, schema],
    ).fetchall()
    if (
        not files
        or len(files) > MAX_FILES
        or sum(f[1] for f in files) < MIN_BYTES
        or any(f[2] or f[3] or "://" in f[0] for f in files)
    ):
        return None
    # Files name their columns by field id: each must be the table's current column of
    # that name (a column dropped and added again gets a new id; DuckDB reads NULL for it).
    ids = dict(
        cur.execute(
            f"SELECT c.column_name, c.column_id FROM {lake.metadata_table('ducklake_column')} c "
            f"JOIN {lake.metadata_table('ducklake_table')} t ON t.table_id = c.table_id "
            f"JOIN {lake.metadata_table('ducklake_schema')} s ON s.schema_id = t.schema_id "
            "WHERE s.schema_name = ? AND t.table_name = ? AND s.end_snapshot IS NULL "
            "AND t.end_snapshot IS NULL AND c.end_snapshot IS NULL AND c.parent_column IS NULL",
            [schema, table],
        ).fetchall()
    )
    if not ids:
        return None
    import pyarrow.dataset as pds

    dataset = pds.dataset([f[0] for f in files], format="parquet")
    rows = 0
    for fragment in dataset.get_fragments():
        fields = fragment.physical_schema
        for name, column_id in ids.items():
            if fields.get_field_index(name) < 0:
                return None
            meta = fields.field(name).metadata or {}
            if meta.get(b"PARQUET:field_id") != str(column_id).encode():
                return None
        if not fields.equals(dataset.schema):
            return None
        rows += fragment.metadata.num_rows
    # Rows kept in the catalog (inlined) are not in the files: the counts then differ.
    count = cur.execute(
        f"SELECT count(*) FROM {CATALOG}.{quote_ident(schema)}.{quote_ident(table)}"
    ).fetchone()
    return dataset if count is not None and count[0] == rows else None


def _renamed(reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The reader's batches under the result's names, without the files' field metadata."""
    for batch in reader:
        yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
