"""Bronze for captured changes: a change table and a current-state view per stream, and the
source position committed with them.

`bronze.<destination>_changes` keeps every change: `_fleuve_op` (snapshot, insert, update,
delete, truncate), `_fleuve_lsn` (the source transaction's position: PostgreSQL's commit LSN,
or a binlog position as file number * 2^32 + offset), `_fleuve_seq` (the change's rank in its
transaction), `_fleuve_committed_at` (the source's commit time), the stream's columns, then
`_fleuve_extracted_at` and `_fleuve_ingestion_date`. Rows of the initial snapshot have
`_fleuve_lsn` 0: they precede every change.

`bronze.<destination>` is a view of the current state: the latest version of each key, deletes
and truncates applied, over the transactions landed completely.

`bronze._fleuve_cdc_positions` holds one row per connection: `lsn`, below which every source
transaction is in the lake, and, while a huge transaction lands in parts, `partial_lsn` and
`partial_seq`, the part of it already written. It is written in the same DuckLake transaction
as the changes it accounts for, so a restart resumes exactly where the lake stands.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from fleuve.ingest.errors import SchemaDriftError
from fleuve.ingest.state import EXTRACTED_AT, INGESTION_DATE, INGESTION_DATE_SQL
from fleuve.lake import Lake, quote_ident, quote_literal

POSITIONS_TABLE = "bronze._fleuve_cdc_positions"
OP, LSN, SEQ, COMMITTED_AT = "_fleuve_op", "_fleuve_lsn", "_fleuve_seq", "_fleuve_committed_at"
UNCHANGED_COL = "_fleuve_unchanged"
CHANGES_SUFFIX = "_changes"


@dataclass(frozen=True)
class Shape:
    """A stream's columns as bronze keeps them: (name, DuckDB type, is a PostgreSQL array)."""

    columns: tuple[tuple[str, str, bool], ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        """Column names in source order."""
        return [c[0] for c in self.columns]


@dataclass
class Position:
    """Where the lake stands in a connection's source log."""

    lsn: int
    resume: str = ""
    partial_lsn: int | None = None
    partial_seq: int = 0
    slot: str | None = None
    streams: list[str] = field(default_factory=list)

    def landed(self, lsn: int, seq: int) -> bool:
        """True when change `seq` of the transaction at `lsn` is already in the lake."""
        if lsn < self.lsn:
            return True
        return lsn == self.partial_lsn and seq <= self.partial_seq


@dataclass
class CaptureStats:
    """What one run of a capture landed."""

    changes: int = 0
    snapshot_rows: int = 0
    transactions: int = 0
    commits: int = 0
    position: str = ""
    # How far the source's log runs ahead of what is landed, and (PostgreSQL) how much WAL
    # the slot keeps, when the run ended.
    lag_bytes: int | None = None
    retained_bytes: int | None = None


class Segment:
    """Buffered changes of one stream sharing one column layout, kept column by column."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        # One tuple per change, turned into columns once per batch (zip is faster than
        # appending each value to its column as it comes).
        self.changes: list[tuple[str, int, int, datetime]] = []
        self.rows: list[list[Any] | None] = []
        self.unchanged: list[list[str] | None] | None = None

    def __len__(self) -> int:
        return len(self.changes)

    def add(
        self,
        op: str,
        lsn: int,
        seq: int,
        at: datetime,
        row: list[Any] | None,
        unchanged: list[str] | None = None,
    ) -> None:
        """Append one change; `row` None (a truncate) leaves every column null."""
        self.changes.append((op, lsn, seq, at))
        self.rows.append(row)
        if unchanged or self.unchanged is not None:
            if self.unchanged is None:
                self.unchanged = [None] * (len(self.changes) - 1)
            self.unchanged.append(unchanged)

    def arrow(self, encode_array: Any = None) -> pa.Table:
        """The segment as text columns plus the change's metadata, ready to cast."""
        ops, lsns, seqs, times = zip(*self.changes, strict=True)
        data: dict[str, pa.Array] = {
            OP: pa.array(ops, pa.string()),
            LSN: pa.array(lsns, pa.int64()),
            SEQ: pa.array(seqs, pa.int64()),
            COMMITTED_AT: pa.array(times, pa.timestamp("us", tz="UTC")),
        }
        width = len(self.shape.columns)
        empty = [None] * width
        columns = zip(*(empty if r is None else r for r in self.rows), strict=True)
        for (name, _, array), values in zip(self.shape.columns, columns, strict=True):
            if array and encode_array is not None:
                values = tuple(encode_array(v) for v in values)
            data[name] = pa.array(values, pa.string())
        if self.unchanged is not None:
            data[UNCHANGED_COL] = pa.array(self.unchanged, pa.list_(pa.string()))
        return pa.table(data)


class Batch:
    """The changes read since the last commit to the lake, per destination."""

    def __init__(self) -> None:
        self.segments: dict[str, list[Segment]] = {}
        self.rows = 0

    def segment(self, destination: str, shape: Shape) -> Segment:
        """The segment new changes of `destination` with `shape` go to."""
        segments = self.segments.setdefault(destination, [])
        if not segments or segments[-1].shape is not shape:
            segments.append(Segment(shape))
        return segments[-1]

    def clear(self) -> None:
        """Forget the buffered changes (they are committed)."""
        self.segments.clear()
        self.rows = 0


def changes_table(destination: str) -> str:
    """The change table of a stream landing in bronze.<destination>."""
    return f"bronze.{quote_ident(destination + CHANGES_SUFFIX)}"


def current_view(destination: str) -> str:
    """The current-state view of a stream."""
    return f"bronze.{quote_ident(destination)}"


def ensure_positions(lake: Lake) -> None:
    """Create the positions table once."""
    if lake.table_exists(POSITIONS_TABLE):
        return
    lake.commit(
        lambda con: con.execute(
            f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} (connection VARCHAR, source VARCHAR, "
            "slot VARCHAR, lsn BIGINT, resume VARCHAR, partial_lsn BIGINT, partial_seq BIGINT, "
            "streams JSON, updated_at TIMESTAMP WITH TIME ZONE)"
        ),
        what="create change capture positions table",
        creates=True,
    )
    # One row per connection replaced at each commit: kept in files rather than inlined in
    # the catalog, as the ingestion state table is, so replacements never race there.
    lake.commit(
        lambda con: con.execute(
            "CALL lake.set_option('data_inlining_row_limit', 0, "
            "table_name => '_fleuve_cdc_positions', schema => 'bronze')"
        ),
        what="configure change capture positions table",
    )


def read_position(con: duckdb.DuckDBPyConnection, connection: str) -> Position | None:
    """The connection's committed position, as the caller's session sees it."""
    row = con.execute(
        f"SELECT lsn, resume, partial_lsn, partial_seq, slot, CAST(streams AS VARCHAR) "
        f"FROM {POSITIONS_TABLE} WHERE connection = ?",
        [connection],
    ).fetchone()
    if row is None:
        return None
    lsn, resume, partial_lsn, partial_seq, slot, streams = row
    return Position(lsn, resume or "", partial_lsn, partial_seq or 0, slot, json.loads(streams))


def write_position(
    con: duckdb.DuckDBPyConnection, connection: str, source: str, pos: Position
) -> None:
    """Replace the connection's position in the caller's transaction."""
    con.execute(f"DELETE FROM {POSITIONS_TABLE} WHERE connection = ?", [connection])
    con.execute(
        f"INSERT INTO {POSITIONS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())",
        [
            connection,
            source,
            pos.slot,
            pos.lsn,
            pos.resume,
            pos.partial_lsn,
            pos.partial_seq,
            json.dumps(pos.streams),
        ],
    )


def land(
    lake: Lake,
    connection: str,
    source: str,
    batch: Batch,
    pos: Position,
    cast: Any,
    encode_array: Any = None,
) -> None:
    """Commit a micro-batch and the position after it in one lake transaction."""

    def work(con: duckdb.DuckDBPyConnection) -> None:
        for dest, segments in batch.segments.items():
            for segment in segments:
                evolve(con, dest, segment.shape)
                insert_segment(con, dest, segment, cast, encode_array)
        write_position(con, connection, source, pos)

    lake.commit(work, what=f"changes of {connection}")


def forget_position(lake: Lake, connection: str) -> None:
    """Drop the connection's position: its next capture starts with a new snapshot."""
    if lake.table_exists(POSITIONS_TABLE):
        lake.commit(
            lambda con: con.execute(
                f"DELETE FROM {POSITIONS_TABLE} WHERE connection = ?", [connection]
            ),
            what=f"forget change capture position of {connection}",
        )


def create_stream_tables(
    con: duckdb.DuckDBPyConnection, connection: str, destination: str, shape: Shape
) -> None:
    """(Re)create a stream's change table and current-state view, in the caller's transaction."""
    table, view = changes_table(destination), current_view(destination)
    con.execute(f"DROP VIEW IF EXISTS {view}")
    con.execute(f"DROP TABLE IF EXISTS {table}")
    cols = [
        f"{OP} VARCHAR",
        f"{LSN} BIGINT",
        f"{SEQ} BIGINT",
        f"{COMMITTED_AT} TIMESTAMP WITH TIME ZONE",
        *(f"{quote_ident(n)} {t}" for n, t, _ in shape.columns),
        f"{EXTRACTED_AT} TIMESTAMP WITH TIME ZONE",
        f"{INGESTION_DATE} DATE",
    ]
    con.execute(f"CREATE TABLE {table} ({', '.join(cols)})")
    con.execute(f"ALTER TABLE {table} SET PARTITIONED BY ({INGESTION_DATE})")
    con.execute(current_view_sql(connection, destination, shape.key))


def current_view_sql(connection: str, destination: str, key: tuple[str, ...]) -> str:
    """The view of a stream's current state: the latest change per key, over the source
    transactions landed completely, after the last truncate, deletes left out."""
    table = changes_table(destination)
    keys = ", ".join(quote_ident(k) for k in key)
    landed = f"{LSN} < (SELECT lsn FROM {POSITIONS_TABLE} WHERE connection = {quote_literal(connection)})"
    return (
        f"CREATE OR REPLACE VIEW {current_view(destination)} AS "
        f"WITH landed AS (SELECT * FROM {table} WHERE {landed}), "
        f"cut AS (SELECT {LSN} AS lsn, {SEQ} AS seq FROM landed WHERE {OP} = 'truncate' "
        f"ORDER BY 1 DESC, 2 DESC LIMIT 1), "
        f"latest AS (SELECT * FROM landed WHERE {OP} <> 'truncate' AND NOT EXISTS ("
        f"SELECT 1 FROM cut WHERE landed.{LSN} < cut.lsn OR "
        f"(landed.{LSN} = cut.lsn AND landed.{SEQ} < cut.seq)) "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {LSN} DESC, {SEQ} DESC) = 1) "
        f"SELECT * EXCLUDE ({OP}, {SEQ}) FROM latest WHERE {OP} <> 'delete'"
    )


def _existing_columns(con: duckdb.DuckDBPyConnection, destination: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'lake' "
        "AND schema_name = 'bronze' AND table_name = ?",
        [destination + CHANGES_SUFFIX],
    ).fetchall()
    return dict(rows)


def evolve(con: duckdb.DuckDBPyConnection, destination: str, shape: Shape) -> None:
    """Add the columns a source table gained; a column it lost stays, null from then on."""
    existing = _existing_columns(con, destination)
    table = changes_table(destination)
    for name, kind, _ in shape.columns:
        have = existing.get(name)
        if have is None:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(name)} {kind}")
        elif have != kind and not (have.startswith("TIMESTAMP WITH") and kind.startswith(have)):
            try:
                con.execute(f"ALTER TABLE {table} ALTER COLUMN {quote_ident(name)} TYPE {kind}")
            except duckdb.Error as exc:
                raise SchemaDriftError(
                    f"column {name} of {table} changed type at the source from {have} to "
                    f"{kind}, which bronze cannot widen to: {str(exc).splitlines()[0]}",
                    "take a new snapshot: `fleuve sync CONNECTION --full-refresh`",
                ) from None


def insert_segment(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    segment: Segment,
    cast: Any,
    encode_array: Any = None,
) -> int:
    """Append a segment's changes to the stream's change table; unchanged TOASTed values take
    the value the key had before (earlier in the segment, or in the table)."""
    staged = f"fleuve_cdc_{uuid.uuid4().hex[:12]}"
    con.register(staged, segment.arrow(encode_array))
    shape = segment.shape
    table = changes_table(destination)
    casts = ", ".join(f"{cast(n, t)} AS {quote_ident(n)}" for n, t, _ in shape.columns)
    head = f"{OP}, {LSN}, {SEQ}, {COMMITTED_AT}"
    tail = f"now() AS {EXTRACTED_AT}, {INGESTION_DATE_SQL} AS {INGESTION_DATE}"
    try:
        if segment.unchanged is None:
            con.execute(f"INSERT INTO {table} BY NAME SELECT {head}, {casts}, {tail} FROM {staged}")
            return len(segment)
        typed = f"{staged}_typed"
        con.execute(
            f"CREATE TEMP TABLE {typed} AS SELECT {head}, {casts}, {UNCHANGED_COL} FROM {staged}"
        )
        try:
            _fill_unchanged(con, table, typed, segment)
            con.execute(
                f"INSERT INTO {table} BY NAME SELECT * EXCLUDE ({UNCHANGED_COL}), {tail} "
                f"FROM {typed}"
            )
        finally:
            con.execute(f"DROP TABLE IF EXISTS temp.{typed}")
        return len(segment)
    finally:
        con.unregister(staged)


def _fill_unchanged(
    con: duckdb.DuckDBPyConnection, table: str, typed: str, segment: Segment
) -> None:
    """Replace each unchanged TOASTed value by the latest earlier value of its key."""
    key = [quote_ident(k) for k in segment.shape.key]
    marked = sorted({c for cols in segment.unchanged or [] if cols for c in cols})
    on = " AND ".join(f"c.{k} IS NOT DISTINCT FROM m.{k}" for k in key)
    for name in marked:
        col, lit = quote_ident(name), quote_literal(name)
        flagged = f"coalesce(list_contains({UNCHANGED_COL}, {lit}), false)"
        before = (
            f"SELECT {', '.join(key)}, {col}, -1 AS {LSN}, -1 AS {SEQ}, "
            f"NULL::VARCHAR[] AS {UNCHANGED_COL} FROM {table} c "
            f"SEMI JOIN (SELECT DISTINCT {', '.join(key)} FROM {typed} WHERE {flagged}) m ON {on} "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} "
            f"ORDER BY {LSN} DESC, {SEQ} DESC) = 1"
        )
        con.execute(
            f"UPDATE {typed} SET {col} = r.v FROM (SELECT {LSN}, {SEQ}, {UNCHANGED_COL}, "
            f"(last_value(CASE WHEN NOT {flagged} THEN {{'v': {col}}} END IGNORE NULLS) "
            f"OVER (PARTITION BY {', '.join(key)} ORDER BY {LSN}, {SEQ} "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)).v AS v "
            f"FROM (SELECT {', '.join(key)}, {col}, {LSN}, {SEQ}, {UNCHANGED_COL} FROM {typed} "
            f"UNION ALL {before})) r "
            f"WHERE {typed}.{LSN} = r.{LSN} AND {typed}.{SEQ} = r.{SEQ} "
            f"AND coalesce(list_contains({typed}.{UNCHANGED_COL}, {lit}), false)"
        )
