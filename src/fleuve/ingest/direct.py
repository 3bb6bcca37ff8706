"""Bronze files written into their partition folder, then added in the sync's transaction.

All rows of a sync share one ingestion date, so a stream's rows need no partitioned write:
they go straight into that date's folder, and `ducklake_add_data_files` registers the files
in the transaction that also writes the stream's state. Two writers do this:

- `write`: a stream read through Arrow (clean local CSV files) lands without going through
  the engine: each thread parses whole files and writes its own Parquet file with pyarrow.
  About half the CPU of the engine's partitioned insert (`docs/benchmarks.md`).
- `copy`: any other stream the engine reads (database tables, JSON, Parquet, CSV through
  DuckDB's reader) is written by the engine's `COPY`, one file per thread, which skips the
  partitioned insert's buffering: 8-14% faster for a PostgreSQL table, in 30% less memory,
  about twice as fast into a bucket.

Exactly-once holds as for an insert: the files become part of the table only when the
transaction commits. Files of a sync that fails are deleted from a local lake; in a bucket, and
those of a killed sync, they stay unreferenced, invisible to readers, until `Lake.maintain`
deletes them as orphans.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import duckdb

from fleuve.ingest.connectors.base import SOURCE_FILE, arrow_pool
from fleuve.ingest.schema import Column
from fleuve.ingest.state import EXTRACTED_AT, INGESTION_DATE, INGESTION_DATE_SQL, SYNC_ID
from fleuve.lake import LAYERS, Lake, quote_ident, quote_literal

# Rolled over past this size, as the engine's own writes are (DuckLake's target file size).
_TARGET_FILE_BYTES = 512 << 20
# A column whose first row group holds at most this share of distinct values is
# dictionary-encoded (as DuckDB's writer decides, from a sample instead of every value).
_DICTIONARY_RATIO = 0.5
# DuckDB's writer tries a dictionary on each column of each row group until it holds this
# share of the group's rows (a fifth by default): for the columns that never repeat that much,
# the attempt cost a seventh of a database table's full refresh (`docs/benchmarks.md`). A
# column repeating each value 16 times on average keeps its dictionary.
_DICTIONARY_SHARE = 16
# Row groups buffered before a write: files hold full row groups whatever the sources' sizes.
_FLUSH_GROUPS = 8
# Types whose Parquet form `ducklake_add_data_files` cannot map back to the column (checked in
# the bundled DuckLake); tables holding one insert. Fleuve stores no HUGEINT (see
# `schema.stored_type`), but tables created before may.
_UNMAPPED_TYPES = re.compile(r"HUGEINT|TIME WITH TIME ZONE")


class ArrowSource(Protocol):
    """One source file read as Arrow record batches."""

    file: str
    origin: str  # the name its rows keep (a bucket file's s3:// name)
    schema: Any

    def batches(self) -> Iterator[Any]:
        """The file's rows, in order."""
        ...


def applies(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: list[Column],
    current: dict[str, str],
    sources: list[ArrowSource] | None,
    *,
    created: bool,
) -> bool:
    """True when `sources` can be written as files of `bronze.<name>` as they are.

    That needs a local lake, every column of the table in the files, each landing under its
    own type without an expression, and what `copies` needs of the table. `current`: the
    table's columns and types as they are now.
    """
    if not sources or lake.settings.lake.on_s3:
        return False
    names = sources[0].schema.names
    if any(s.schema != sources[0].schema for s in sources) or names != [c.source for c in columns]:
        return False
    # A table column the files would lack (a column the source dropped) is filled by an
    # insert instead: DuckLake counts an added file's missing column as all values present.
    if set(current) != {c.name for c in columns} | {
        EXTRACTED_AT,
        SYNC_ID,
        INGESTION_DATE,
        SOURCE_FILE,
    }:
        return False
    for col in columns:
        if col.expr != f"src.{quote_ident(col.source)}" or current.get(col.name) != col.type:
            return False
    return copies(lake, con, name, current, created=created)


def copies(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    name: str,
    current: dict[str, str],
    *,
    created: bool,
) -> bool:
    """True when the engine can `copy` rows into `bronze.<name>` as files of the lake.

    That needs a table partitioned by ingestion date alone (as Fleuve creates stream tables)
    and column types whose Parquet form maps back to them; the lake may be local or in a bucket.
    """
    if INGESTION_DATE not in current:
        return False
    if any(_UNMAPPED_TYPES.search(kind.upper()) for kind in current.values()):
        return False
    return created or partition_keys(lake, con, name) == [(INGESTION_DATE, "identity")]


def partition_keys(lake: Lake, con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    """The (column, transform) keys `bronze.<name>` is partitioned by, from the lake's catalog."""
    md = lake.metadata_table
    return [
        (str(column), str(transform))
        for column, transform in con.execute(
            f"SELECT c.column_name, pc.transform FROM {md('ducklake_partition_info')} pi "
            f"JOIN {md('ducklake_partition_column')} pc USING (partition_id, table_id) "
            f"JOIN {md('ducklake_column')} c ON c.table_id = pc.table_id "
            "AND c.column_id = pc.column_id AND c.end_snapshot IS NULL "
            f"JOIN {md('ducklake_table')} t ON t.table_id = pi.table_id AND t.end_snapshot IS NULL "
            f"JOIN {md('ducklake_schema')} s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL "
            "WHERE pi.end_snapshot IS NULL AND s.schema_name = 'bronze' AND t.table_name = ? "
            "ORDER BY pc.partition_key_index",
            [name],
        ).fetchall()
    ]


def write(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    name: str,
    columns: list[Column],
    sources: list[ArrowSource],
    sync_id: str,
    cancelled: threading.Event,
    written: list[str],
) -> int:
    """Write `sources` as Parquet files of `bronze.<name>` and add them in `con`'s transaction.

    Returns the rows added; the files' paths are appended to `written`, so that the caller
    can `discard` them if the transaction does not commit. DuckLake leaves added files on
    disk when a transaction rolls back. On a failure here the files are deleted at once.
    """
    import pyarrow as pa

    extracted_at, day = con.execute(f"SELECT now(), {INGESTION_DATE_SQL}").fetchall()[0]
    folder = Path(_date_folder(lake, name, day))
    renamed = {c.source: c.name for c in columns}
    fields = [pa.field(renamed[f.name], f.type) for f in sources[0].schema]
    constants = {
        EXTRACTED_AT: pa.array([extracted_at], pa.timestamp("us", tz="UTC")),
        SYNC_ID: pa.array([sync_id], pa.string()),
        INGESTION_DATE: pa.array([day], pa.date32()),
    }
    # Constant columns are dictionaries of one value: nothing to copy, a few bytes per page.
    fields += [pa.field(k, pa.dictionary(pa.int32(), v.type)) for k, v in constants.items()]
    fields.append(pa.field(SOURCE_FILE, pa.dictionary(pa.int32(), pa.string())))
    todo: queue.SimpleQueue[ArrowSource] = queue.SimpleQueue()
    for source in sources:
        todo.put(source)
    # Set when a writer fails, so that the others stop instead of reading on for nothing.
    failed = threading.Event()
    writers = [
        _Writer(folder, pa.schema(fields), constants, cancelled, failed)
        for _ in range(max(1, min(len(sources), os.cpu_count() or 1)))
    ]
    try:
        with ThreadPoolExecutor(len(writers), thread_name_prefix="fleuve-bronze") as pool:
            rows = sum(pool.map(lambda w: w.drain(todo), writers))
        files = [f for w in writers for f in w.files]
        written.extend(files)
        if files:
            con.execute(
                "CALL ducklake_add_data_files('lake', ?, ?, schema => 'bronze', "
                "hive_partitioning => true)",
                [name, files],
            )
    except BaseException:
        discard(lake, [f for w in writers for f in w.files])
        raise
    return rows


def copy(
    lake: Lake,
    con: duckdb.DuckDBPyConnection,
    name: str,
    select: str,
    produced: set[str],
    current: dict[str, str],
    written: list[str],
) -> int:
    """Write the rows of `select` as Parquet files of `bronze.<name>` with the engine's `COPY`.

    `produced`: the columns `select` gives. Each table column gets its table type (NULL where
    `select` lacks it, as for a column the source dropped), so that every file holds every
    column: DuckLake would count a missing one as values. Returns the rows added; the files'
    paths go to `written` as in `write`.
    """
    (day,) = con.execute(f"SELECT {INGESTION_DATE_SQL}").fetchall()[0]
    folder = _date_folder(lake, name, day)
    exprs = ", ".join(
        f"CAST({'s.' + quote_ident(col) if col in produced else 'NULL'} AS {kind}) AS {quote_ident(col)}"
        for col, kind in current.items()
    )
    layer = LAYERS["bronze"]
    group = layer.row_group_rows or 122_880
    # A name of this attempt's own, so that a COPY failing half-way leaves files we can find.
    prefix = f"ducklake-{uuid.uuid4()}"
    try:
        rows, files = con.execute(
            f"COPY (SELECT {exprs} FROM ({select}) AS s) TO {quote_literal(folder)} "
            f"(FORMAT parquet, PER_THREAD_OUTPUT true, OVERWRITE_OR_IGNORE true, "
            f"FILENAME_PATTERN '{prefix}_{{i}}', FILE_SIZE_BYTES {_TARGET_FILE_BYTES}, "
            f"COMPRESSION {layer.compression}, ROW_GROUP_SIZE {group}, "
            f"DICTIONARY_SIZE_LIMIT {group // _DICTIONARY_SHARE}, "
            f"PARQUET_VERSION V{layer.parquet_version}, RETURN_FILES true)"
        ).fetchall()[0]
    except BaseException:
        if not lake.settings.lake.on_s3:  # objects in a bucket exist only once complete
            discard(lake, [str(f) for f in Path(folder).glob(f"{prefix}_*")])
        raise
    written.extend(files)
    if not rows:
        discard(lake, files)  # the empty file a COPY of no rows leaves
        return 0
    con.execute(
        "CALL ducklake_add_data_files('lake', ?, ?, schema => 'bronze', hive_partitioning => true)",
        [name, files],
    )
    return int(rows)


def _date_folder(lake: Lake, name: str, day: Any) -> str:
    """The folder of `bronze.<name>`'s partition for `day`, created when the lake is local."""
    folder = f"{lake.settings.lake_data_path}bronze/{name}/{INGESTION_DATE}={day.isoformat()}"
    if not lake.settings.lake.on_s3:
        Path(folder).mkdir(parents=True, exist_ok=True)
    return folder


def discard(lake: Lake, paths: list[str]) -> None:
    """Delete files written for a transaction that did not commit.

    In a bucket they stay: deleting an object through pyarrow leaves an empty marker object
    for its folder, and the engine deletes nothing. Referenced by no snapshot, they are
    orphans that `Lake.maintain` deletes, as those of a killed sync.
    """
    if lake.settings.lake.on_s3:
        return
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


class _Writer:
    """One thread's Parquet files: sources' rows with their metadata columns, in full row groups."""

    def __init__(
        self,
        folder: Path,
        schema: Any,
        constants: dict[str, Any],
        cancelled: threading.Event,
        failed: threading.Event,
    ) -> None:
        layer = LAYERS["bronze"]
        self.folder, self.schema = folder, schema
        self.constants, self.cancelled, self.failed = constants, cancelled, failed
        self.group = layer.row_group_rows or 122_880
        self.options: dict[str, Any] = {
            "compression": layer.compression,
            "store_schema": False,
            "memory_pool": arrow_pool(),
        }
        if layer.parquet_version == 2:
            self.options["data_page_version"] = "2.0"
        self.files: list[str] = []
        self.buffer: list[Any] = []
        self.buffered = 0
        self.sink: Any = None
        self.writer: Any = None

    def drain(self, todo: queue.SimpleQueue[ArrowSource]) -> int:
        """Write sources from `todo` until it is empty; the rows written."""
        rows = 0
        try:
            while not self.failed.is_set():
                try:
                    source = todo.get_nowait()
                except queue.Empty:
                    break
                for batch in source.batches():
                    if self.cancelled.is_set():
                        raise duckdb.InterruptException("INTERRUPT Error: the sync was cancelled")
                    if self.failed.is_set():
                        return rows
                    self._add(batch, source.origin)
                    rows += batch.num_rows
            self._write(final=True)
            return rows
        except BaseException:
            self.failed.set()
            raise
        finally:
            self._close()

    def _add(self, batch: Any, file: str) -> None:
        """Buffer `batch` with its metadata columns; write once enough rows are buffered."""
        import numpy as np
        import pyarrow as pa

        zeros = pa.array(np.zeros(batch.num_rows, dtype=np.int32))
        arrays = [*batch.columns]
        arrays += [pa.DictionaryArray.from_arrays(zeros, v) for v in self.constants.values()]
        arrays.append(pa.DictionaryArray.from_arrays(zeros, pa.array([file], pa.string())))
        self.buffer.append(pa.Table.from_arrays(arrays, schema=self.schema))
        self.buffered += batch.num_rows
        if self.buffered >= self.group * _FLUSH_GROUPS:
            self._write(final=False)

    def _write(self, *, final: bool) -> None:
        """Write the buffered rows in full row groups; the last, partial one only when `final`."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffered:
            return
        table = pa.concat_tables(self.buffer)
        cut = table.num_rows if final else table.num_rows - table.num_rows % self.group
        if self.sink is not None and self.sink.tell() >= _TARGET_FILE_BYTES:
            self._close()
        if self.writer is None:
            if "use_dictionary" not in self.options:
                dictionary = [
                    *_repetitive(table.slice(0, self.group)),
                    *self.constants,
                    SOURCE_FILE,
                ]
                self.options["use_dictionary"] = dictionary
                if "data_page_version" in self.options:
                    self.options["column_encoding"] = _v2_encodings(self.schema, dictionary)
            path = str(self.folder / f"ducklake-{uuid.uuid4()}.parquet")
            self.files.append(path)
            self.sink = pa.OSFile(path, "wb")
            self.writer = pq.ParquetWriter(self.sink, self.schema, **self.options)
        self.writer.write_table(table.slice(0, cut), row_group_size=self.group)
        rest = table.slice(cut)
        self.buffer, self.buffered = ([rest] if rest.num_rows else []), rest.num_rows

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.sink.close()
        self.writer = self.sink = None


def _v2_encodings(schema: Any, dictionary: list[str]) -> dict[str, str]:
    """Parquet 2 encodings for the columns not dictionary-encoded, as DuckDB's writer picks them."""
    import pyarrow as pa

    integral = (pa.types.is_integer, pa.types.is_timestamp, pa.types.is_date, pa.types.is_time)
    out = {}
    for field in schema:
        if field.name in dictionary:
            continue
        if any(test(field.type) for test in integral):
            out[field.name] = "DELTA_BINARY_PACKED"
        elif pa.types.is_floating(field.type):
            out[field.name] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            out[field.name] = "DELTA_LENGTH_BYTE_ARRAY"
    return out


def _repetitive(sample: Any) -> list[str]:
    """Columns of `sample` that repeat values, which a dictionary encodes smaller and faster.

    Trying a dictionary on every column and giving up on those that outgrow it (pyarrow's
    default) costs as much as the rest of the write; counting a row group's values is cheap.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = max(1, sample.num_rows)
    out = []
    for field, column in zip(sample.schema, sample.columns, strict=True):
        if pa.types.is_dictionary(field.type):
            continue  # the metadata columns, dictionaries already
        try:
            distinct = pc.count_distinct(column, mode="all").as_py()
        except pa.ArrowNotImplementedError:
            continue
        if distinct <= rows * _DICTIONARY_RATIO:
            out.append(field.name)
    return out


__all__ = ["ArrowSource", "applies", "copies", "copy", "discard", "partition_keys", "write"]
