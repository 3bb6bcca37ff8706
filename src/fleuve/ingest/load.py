"""Land one stream in bronze: schema drift, sync mode, rejected rows and state, in one commit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import duckdb
from pyarrow import ArrowInvalid

from fleuve.config import ConnectionSettings, StreamSettings
from fleuve.ingest import direct
from fleuve.ingest.connectors.base import SOURCE_FILE, Connector, Cursor, Extract, ExtractContext
from fleuve.ingest.errors import RejectedThresholdError
from fleuve.ingest.names import normalize
from fleuve.ingest.schema import (
    Column,
    bronze_name,
    create_table,
    plan_columns,
    reconcile,
    settle_types,
)
from fleuve.ingest.state import (
    EXTRACTED_AT,
    INGESTION_DATE,
    INGESTION_DATE_SQL,
    REJECTED_TABLE,
    SYNC_ID,
    StreamState,
    read_state,
    write_state,
)
from fleuve.lake import Lake, quote_ident, quote_literal

log = logging.getLogger("fleuve.ingest")

REJECT_SAMPLE = 1000
# Rows read again to measure the Arrow size of a database stream's rows (`bytesSynced`).
MEASURED_ROWS = 2048


@dataclass
class StreamOutcome:
    """What one stream's sync committed."""

    stream: str
    table: str
    sync_id: str
    mode: str
    records_read: int = 0
    records_committed: int = 0
    records_rejected: int = 0
    bytes_read: int = 0
    cursor: str | None = None
    schema_changes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    files_read: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for the attempt's stats."""
        return {k: v for k, v in vars(self).items() if k != "stream"}


def destination(stream: StreamSettings) -> str:
    """The bronze table name of a stream."""
    return stream.destination or normalize(stream.name)


def load_stream(
    lake: Lake,
    connector: Connector,
    conn: ConnectionSettings,
    stream: StreamSettings,
    *,
    sync_id: str,
    full_refresh: bool,
    ctx: ExtractContext,
    bronze: set[str],
    on_session: Callable[[duckdb.DuckDBPyConnection | None], None] = lambda con: None,
) -> StreamOutcome:
    """Read the stream and commit its rows, rejected rows and new cursor together.

    `bronze`: the names of bronze's tables when the sync started.
    """
    load = _StreamLoad(lake, connector, conn, stream, sync_id, full_refresh, ctx, on_session)
    started = time.monotonic()
    try:
        # A stream creating its table loads alone in this process (`Lake.commit`'s `creates`).
        # Only a table dropped by hand since the sync started would create without the lock.
        result = _commit(load, creates=load.name not in bronze)
    finally:
        on_session(None)
    result.seconds = time.monotonic() - started
    return result


@dataclass
class _StreamLoad:
    """One stream's load: what it reads, where it lands, and what its attempts leave."""

    lake: Lake
    connector: Connector
    conn: ConnectionSettings
    stream: StreamSettings
    sync_id: str
    full_refresh: bool
    ctx: ExtractContext
    on_session: Callable[[duckdb.DuckDBPyConnection | None], None]
    # The last read's tolerant reader, set up to read the stream again if its load fails.
    fallback: Callable[[], None] | None = None
    # Files written by each attempt; only the committed attempt's files stay.
    attempts: list[list[str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The bronze table's name."""
        return destination(self.stream)

    @property
    def table(self) -> str:
        """The bronze table, quoted for SQL."""
        return f"bronze.{quote_ident(self.name)}"

    @property
    def incremental(self) -> bool:
        """True when this sync reads on from the last one's cursor or files."""
        return self.stream.sync_mode == "incremental" and not self.full_refresh

    @property
    def mode(self) -> str:
        """The sync mode as reported: how it reads, then how it writes."""
        read = "incremental" if self.incremental else "full_refresh"
        return f"{read}+{self.stream.destination_sync_mode}"

    @property
    def written(self) -> list[str]:
        """The files the current attempt wrote."""
        return self.attempts[-1]


@dataclass
class _Rows:
    """How the extract's rows land: the bronze columns and the SELECT that fills them."""

    columns: list[Column]
    # The table's columns and types once evolved for this read.
    current: dict[str, str]
    # Tables created before stream tables were partitioned by ingestion date lack its column.
    dated: bool
    # The condition of rows a declared type refuses, if a column is checked.
    bad: str | None
    source: str
    cursor_col: str | None
    keys: list[str]
    # `source` is every row of the extract as read: no row set apart or already committed.
    whole: bool
    created: bool

    @property
    def names(self) -> list[str]:
        """The bronze names of the stream's columns."""
        return [c.name for c in self.columns]


def _commit(load: _StreamLoad, *, creates: bool) -> StreamOutcome:
    """Commit the stream's transaction, once more with the tolerant reader if the engine failed.

    The files of attempts that did not commit are deleted.
    """
    what = f"sync {load.conn.name}.{load.stream.name}"
    try:
        try:
            result = load.lake.commit(partial(_attempt, load), what=what, creates=creates)
        except (duckdb.Error, ArrowInvalid) as exc:
            if load.fallback is None or isinstance(exc, duckdb.InterruptException):
                raise
            # Nothing of the failed load was committed: read again, setting bad rows apart.
            log.info(
                "stream read again with the tolerant reader",
                extra={
                    "connection": load.conn.name,
                    "stream": load.stream.name,
                    "reason": _reason(exc),
                },
            )
            fallback, load.fallback = load.fallback, None
            fallback()
            result = load.lake.commit(partial(_attempt, load), what=what, creates=creates)
    except BaseException:
        direct.discard(load.lake, [f for files in load.attempts for f in files])
        raise
    else:
        direct.discard(load.lake, [f for files in load.attempts[:-1] for f in files])
    return result


def _attempt(load: _StreamLoad, con: duckdb.DuckDBPyConnection) -> StreamOutcome:
    """One try at the stream's transaction: read, evolve the table, land, reject, move on."""
    load.on_session(con)
    load.attempts.append([])
    outcome = StreamOutcome(load.stream.name, f"bronze.{load.name}", load.sync_id, load.mode)
    since, files = _previous_read(con, load)
    exists = _table_exists(con, load.name)
    extract = _extract(con, load, since, files, exists, outcome)
    if not extract.relation:
        _record_empty_read(con, load, extract, since, outcome)
        return outcome
    columns, current = _evolve_table(con, load, extract, exists, outcome)
    rows = _plan_rows(con, load, extract, columns, current, since, created=not exists)
    outcome.records_committed = _write_rows(con, load, extract, rows)
    _set_rejected_apart(con, load, extract, rows, outcome)
    _move_cursor(con, load, extract, rows, since, outcome)
    _measure_bytes(con, extract, outcome)
    return outcome


def _previous_read(
    con: duckdb.DuckDBPyConnection, load: _StreamLoad
) -> tuple[Cursor | None, dict[str, str] | None]:
    """Where the last sync stopped: its cursor and the files it read (nothing for a full read)."""
    # A full read needs no state: the lake round trip is saved (tens of ms a sync).
    state = read_state(con, load.conn.name, load.stream.name) if load.incremental else StreamState()
    return state.cursor, state.files


def _extract(
    con: duckdb.DuckDBPyConnection,
    load: _StreamLoad,
    since: Cursor | None,
    files: dict[str, str] | None,
    exists: bool,
    outcome: StreamOutcome,
) -> Extract:
    """Ask the connector for the rows after `since`, telling it the bronze table's types."""
    load.ctx.established = (
        {r[0]: r[1] for r in con.execute(f"DESCRIBE {load.table}").fetchall()} if exists else {}
    )
    extract = load.connector.extract(con, load.stream, since, files, load.ctx)
    load.fallback = extract.fallback
    load.ctx.on_estimate(extract.estimated_rows, extract.row_bytes)
    outcome.bytes_read = extract.bytes_read
    outcome.files_read = len(extract.files or {}) - len(files or {}) + len(extract.replaced_files)
    return extract


def _record_empty_read(
    con: duckdb.DuckDBPyConnection,
    load: _StreamLoad,
    extract: Extract,
    since: Cursor | None,
    outcome: StreamOutcome,
) -> None:
    """A read with no rows: keep the files seen and the rows the source refused."""
    write_state(con, load.conn.name, load.stream.name, since, extract.files, load.sync_id)
    outcome.cursor = since.value if since else None
    outcome.records_rejected = _reject(
        con, load.conn, load.stream, load.sync_id, [extract.rejected]
    )


def _evolve_table(
    con: duckdb.DuckDBPyConnection,
    load: _StreamLoad,
    extract: Extract,
    exists: bool,
    outcome: StreamOutcome,
) -> tuple[list[Column], dict[str, str]]:
    """Plan the bronze columns, create or evolve the table to hold them; the table's columns."""
    columns = plan_columns(con, extract, load.stream)
    if extract.inferred_types:
        settle_types(con, extract, columns, load.ctx.established)
    if exists:
        outcome.schema_changes = reconcile(con, load.table, columns, extract.has_source_file)
    else:
        create_table(con, load.table, columns, extract.has_source_file)
    return columns, {r[0]: r[1] for r in con.execute(f"DESCRIBE {load.table}").fetchall()}


def _plan_rows(
    con: duckdb.DuckDBPyConnection,
    load: _StreamLoad,
    extract: Extract,
    columns: list[Column],
    current: dict[str, str],
    since: Cursor | None,
    *,
    created: bool,
) -> _Rows:
    """The SELECT of the rows to land: no bad rows, none the last sync already committed."""
    dated = INGESTION_DATE in current
    typed = [c for c in columns if c.checked]
    bad = _bad_row_condition(typed) if typed else None
    source = _source_select(columns, extract, load.sync_id, bad, dated)
    cursor_col = bronze_name(columns, load.stream.cursor_field)
    keys = [bronze_name(columns, k) or normalize(k) for k in load.stream.primary_key]
    whole = bad is None
    if since is not None and cursor_col and not created:
        names = [c.name for c in columns]
        source = _without_boundary_rows(con, load.table, source, since, cursor_col, names)
        whole = False
    return _Rows(columns, current, dated, bad, source, cursor_col, keys, whole, created)


def _write_rows(
    con: duckdb.DuckDBPyConnection, load: _StreamLoad, extract: Extract, rows: _Rows
) -> int:
    """Write the rows as the destination sync mode says: replace, add, or merge by key."""
    mode = load.stream.destination_sync_mode
    # A full re-read appended to what is there would double it.
    if mode == "overwrite" or (load.full_refresh and mode == "append"):
        con.execute(f"DELETE FROM {load.table}")
        return _land(con, load, extract, rows, rows.source)
    if mode == "append":
        if extract.replaced_files:
            con.execute(
                f"DELETE FROM {load.table} WHERE {quote_ident(SOURCE_FILE)} IN "
                f"({', '.join(quote_literal(f) for f in extract.replaced_files)})"
            )
        return _land(con, load, extract, rows, rows.source)
    # The source's primary key already makes each incoming key unique.
    unique = bool(extract.unique_key) and set(extract.unique_key) == set(load.stream.primary_key)
    latest = rows.source if unique else _latest(rows.source, rows.keys, rows.cursor_col)
    if rows.created:
        # A table created by this sync has nothing to match: adding rows is much cheaper.
        return _land(con, load, extract, rows, latest)
    extract.scannable(con)
    return _merge(
        con,
        load.table,
        latest,
        rows.names,
        rows.keys,
        rows.cursor_col,
        extract.has_source_file,
        dated=rows.dated,
    )


def _land(
    con: duckdb.DuckDBPyConnection, load: _StreamLoad, extract: Extract, rows: _Rows, select: str
) -> int:
    """Add the rows of `select`: as files written here when possible, else an insert."""
    lake, name, current = load.lake, load.name, rows.current
    if (
        select == rows.source
        and rows.whole
        and direct.applies(
            lake, con, name, rows.columns, current, extract.arrow, created=rows.created
        )
    ):
        sources = extract.arrow or []
        return direct.write(
            lake, con, name, rows.columns, sources, load.sync_id, load.ctx.cancelled, load.written
        )
    extract.scannable(con)
    if direct.copies(lake, con, name, current, created=rows.created):
        produced = {*rows.names, EXTRACTED_AT, SYNC_ID, INGESTION_DATE}
        produced |= {SOURCE_FILE} if extract.has_source_file else set()
        return direct.copy(lake, con, name, select, produced, current, load.written)
    return _count(con.execute(f"INSERT INTO {load.table} BY NAME {select}"))


def _set_rejected_apart(
    con: duckdb.DuckDBPyConnection,
    load: _StreamLoad,
    extract: Extract,
    rows: _Rows,
    outcome: StreamOutcome,
) -> None:
    """Keep the rows the source or the declared types refused, and count the rows read."""
    typed_rejects = _typed_rejects(rows.columns, extract, rows.bad, rows.keys)
    rejected = _reject(con, load.conn, load.stream, load.sync_id, [extract.rejected, typed_rejects])
    outcome.records_rejected = rejected
    outcome.records_read = outcome.records_committed + rejected
    if not rejected:
        return
    extract.scannable(con)
    # to_json of the whole row makes every column parse, as the load did.
    every = _source_select(rows.columns, extract, load.sync_id, rows.bad, rows.dated)
    read = _count(con.execute(f"SELECT count(to_json(r)) FROM ({every}) AS r"))
    outcome.records_read = read + rejected
    _check_rejected_share(con, load, read, rejected)


def _check_rejected_share(
    con: duckdb.DuckDBPyConnection, load: _StreamLoad, read: int, rejected: int
) -> None:
    """Fail the stream when more of its rows were rejected than its settings allow."""
    stream = load.stream
    limit = (
        stream.max_rejected_ratio
        if stream.max_rejected_ratio is not None
        else load.conn.max_rejected_ratio
    )
    ratio = rejected / max(1, read + rejected)
    if ratio <= limit:
        return
    sample = con.execute(
        f"SELECT location, reason, raw FROM {REJECTED_TABLE} WHERE {SYNC_ID} = ? LIMIT {REJECT_SAMPLE}",
        [load.sync_id],
    ).fetchall()
    first = sample[0] if sample else ("?", "?", "")
    exc = RejectedThresholdError(
        f"stream '{stream.name}': {rejected:,} of {read + rejected:,} rows rejected "
        f"({ratio:.1%}, above the {limit:.1%} allowed); first at {first[0]}: {first[1]}",
        "fix the source rows (see bronze._rejected), or raise max_rejected_ratio",
    )
    exc.sample = sample  # type: ignore[attr-defined]
    raise exc


def _move_cursor(
    con: duckdb.DuckDBPyConnection,
    load: _StreamLoad,
    extract: Extract,
    rows: _Rows,
    since: Cursor | None,
    outcome: StreamOutcome,
) -> None:
    """Write the stream's new cursor and the files it has seen, in its rows' transaction."""
    cursor = (
        _new_cursor(con, load.table, rows.cursor_col, since, extract, load.sync_id)
        if load.stream.cursor_field
        else None
    )
    write_state(con, load.conn.name, load.stream.name, cursor, extract.files, load.sync_id)
    outcome.cursor = cursor.value if cursor else None


def _measure_bytes(
    con: duckdb.DuckDBPyConnection, extract: Extract, outcome: StreamOutcome
) -> None:
    """Report the rows' size for a source that gave no byte count: their size as Arrow data."""
    if not outcome.bytes_read and outcome.records_read and extract.arrow is None:
        outcome.bytes_read = _arrow_bytes(con, extract.relation, outcome.records_read)


def _arrow_bytes(con: duckdb.DuckDBPyConnection, relation: str, rows: int) -> int:
    """The Arrow size of `rows` rows of `relation`, measured on its first rows read again.

    Database sources report no byte count: their `bytesSynced` is the rows' size as Arrow data.
    """
    sample = con.execute(
        f"SELECT * FROM ({relation}) AS fleuve_r LIMIT {MEASURED_ROWS}"
    ).to_arrow_table()
    return round(sample.nbytes / sample.num_rows * rows) if sample.num_rows else 0


def keep_rejected(
    lake: Lake,
    conn: ConnectionSettings,
    stream: StreamSettings,
    sync_id: str,
    sample: list[tuple[str, str, str]],
) -> None:
    """Commit a failed stream's rejected rows on their own, so they can be inspected."""
    if not sample:
        return

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.executemany(
            f"INSERT INTO {REJECTED_TABLE} VALUES (?, ?, ?, ?, ?, ?, now())",
            [[conn.name, stream.name, loc, reason, raw, sync_id] for loc, reason, raw in sample],
        )

    lake.commit(work, what=f"keep rejected rows of {conn.name}.{stream.name}")


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' "
            "AND schema_name = 'bronze' AND table_name = ?",
            [name],
        ).fetchall()[0][0]
    )


# -- statements -------------------------------------------------------------------------


def _source_select(
    columns: list[Column], extract: Extract, sync_id: str, bad: str | None, dated: bool
) -> str:
    exprs = [f"{c.expr} AS {quote_ident(c.name)}" for c in columns]
    exprs += [f"now() AS {EXTRACTED_AT}", f"{quote_literal(sync_id)} AS {SYNC_ID}"]
    if dated:
        exprs.append(f"{INGESTION_DATE_SQL} AS {INGESTION_DATE}")
    if extract.has_source_file:
        exprs.append(f"src.{quote_ident(SOURCE_FILE)} AS {SOURCE_FILE}")
    where = f" WHERE NOT ({bad})" if bad else ""
    return f"SELECT {', '.join(exprs)} FROM ({extract.relation}) AS src{where}"


def _bad_row_condition(typed: Any) -> str:
    parts = [f"(src.{quote_ident(c.source)} IS NOT NULL AND {c.expr} IS NULL)" for c in typed]
    return " OR ".join(parts)


def _typed_rejects(
    columns: list[Column], extract: Extract, bad: str | None, keys: list[str]
) -> str | None:
    if not bad:
        return None
    key_cols = [c for c in columns if c.name in keys]
    # Rows are numbered before the bad ones are picked out, per file for files.
    within = f"PARTITION BY src.{quote_ident(SOURCE_FILE)}" if extract.has_source_file else ""
    location = (
        "'key ' || concat_ws(',', "
        + ", ".join(f"CAST(src.{quote_ident(c.source)} AS VARCHAR)" for c in key_cols)
        + ")"
        if key_cols
        else f"'row ' || CAST(row_number() OVER ({within}) AS VARCHAR)"
    )
    if extract.has_source_file:
        location = f"src.{quote_ident(SOURCE_FILE)} || ', ' || {location}"
    reasons = " || ".join(
        f"CASE WHEN src.{quote_ident(c.source)} IS NOT NULL AND {c.expr} IS NULL "
        f"THEN {quote_literal(f'column {c.source}: ')} || "
        f"left(CAST(src.{quote_ident(c.source)} AS VARCHAR), 100) || "
        f"{quote_literal(f' is not a {c.type}; ')} ELSE '' END"
        for c in columns
        if c.checked
    )
    return (
        f"SELECT location, reason, raw FROM (SELECT {location} AS location, CASE WHEN {bad} "
        f"THEN {reasons} END AS reason, CASE WHEN {bad} THEN CAST(to_json(src) AS VARCHAR) END "
        f"AS raw, {bad} AS fleuve_bad FROM ({extract.relation}) AS src) WHERE fleuve_bad"
    )


def _reject(
    con: duckdb.DuckDBPyConnection,
    conn: ConnectionSettings,
    stream: StreamSettings,
    sync_id: str,
    selects: list[str | None],
) -> int:
    """Insert the rows the source or the declared types refused into bronze._rejected."""
    total = 0
    for select in selects:
        if not select:
            continue
        total += _count(
            con.execute(
                f"INSERT INTO {REJECTED_TABLE} SELECT {quote_literal(conn.name)}, "
                f"{quote_literal(stream.name)}, location, reason, raw, {quote_literal(sync_id)}, now() "
                f"FROM ({select})"
            )
        )
    return total


def _without_boundary_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    since: Cursor,
    cursor_col: str,
    match: list[str],
) -> str:
    """Drop incoming rows at the last cursor value that the previous sync already committed."""
    kind = con.execute(
        "SELECT data_type FROM duckdb_columns() WHERE database_name = 'lake' AND schema_name = 'bronze' "
        "AND table_name = ? AND column_name = ?",
        [table.split(".", 1)[1].strip('"').replace('""', '"'), cursor_col],
    ).fetchall()[0][0]
    boundary = f"TRY_CAST({quote_literal(since.value)} AS {kind})"
    cur = quote_ident(cursor_col)
    cond = " AND ".join(
        f"n.{quote_ident(m)} IS NOT DISTINCT FROM b.{quote_ident(m)}" for m in match
    )
    return (
        f"SELECT n.* FROM ({source}) AS n ANTI JOIN "
        f"(SELECT * FROM {table} WHERE {cur} = {boundary}) AS b ON n.{cur} = b.{cur} AND {cond}"
    )


def _latest(source: str, keys: list[str], cursor_col: str | None) -> str:
    """One row per key of `source`: the latest by cursor (any one of them without a cursor)."""
    part = ", ".join(quote_ident(k) for k in keys)
    order = f"{quote_ident(cursor_col)} DESC NULLS LAST" if cursor_col else "1"
    return f"SELECT * FROM ({source}) QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {order}) = 1"


def _merge(
    con: duckdb.DuckDBPyConnection,
    table: str,
    latest: str,
    cols: list[str],
    keys: list[str],
    cursor_col: str | None,
    with_file: bool,
    *,
    dated: bool,
) -> int:
    """Upsert `latest` (one row per key): a row replaces the table's when its cursor is not older."""
    all_cols = [*cols, EXTRACTED_AT, SYNC_ID, *([INGESTION_DATE] if dated else [])]
    all_cols += [SOURCE_FILE] if with_file else []
    on = " AND ".join(f"t.{quote_ident(k)} = s.{quote_ident(k)}" for k in keys)
    newer = (
        f" AND (t.{quote_ident(cursor_col)} IS NULL OR s.{quote_ident(cursor_col)} >= t.{quote_ident(cursor_col)})"
        if cursor_col
        else ""
    )
    sets = ", ".join(f"{quote_ident(c)} = s.{quote_ident(c)}" for c in all_cols)
    names = ", ".join(quote_ident(c) for c in all_cols)
    values = ", ".join(f"s.{quote_ident(c)}" for c in all_cols)
    return _count(
        con.execute(
            f"MERGE INTO {table} AS t USING ({latest}) AS s ON {on} "
            f"WHEN MATCHED{newer} THEN UPDATE SET {sets} "
            f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
        )
    )


def _new_cursor(
    con: duckdb.DuckDBPyConnection,
    table: str,
    cursor_col: str | None,
    since: Cursor | None,
    extract: Extract,
    sync_id: str,
) -> Cursor | None:
    """The cursor only moves forward: the newest value committed by this sync, or the old one."""
    if extract.cursor_value is not None:
        if since is None or _after(extract.cursor_value, since.value):
            return Cursor(extract.cursor_value, "VARCHAR")
        return since
    if not cursor_col:
        return since
    row = con.execute(
        f"SELECT CAST(max({quote_ident(cursor_col)}) AS VARCHAR), typeof(max({quote_ident(cursor_col)})) "
        f"FROM {table} WHERE {SYNC_ID} = ?",
        [sync_id],
    ).fetchone()
    if row is None or row[0] is None:
        return since
    candidate = Cursor(row[0], row[1])
    if since is None:
        return candidate
    newer = con.execute(
        f"SELECT {candidate.literal()} > TRY_CAST({quote_literal(since.value)} AS {row[1]})"
    ).fetchall()[0][0]
    return candidate if newer else since


def _after(a: str, b: str) -> bool:
    try:
        return float(a) > float(b)
    except ValueError:
        return a > b


def _reason(exc: BaseException) -> str:
    """The first line of an engine error, without the reader's Python traceback."""
    return str(exc).splitlines()[0].split(". Detail: Python exception")[0][:300]


def _count(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    result.fetchall()
    return int(row[0]) if row and row[0] is not None else 0
