"""Land one stream in bronze: schema drift, sync mode, rejected rows and state, in one commit."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
from pyarrow import ArrowInvalid

from fleuve.config import ConnectionSettings, StreamSettings
from fleuve.ingest import direct
from fleuve.ingest.connectors.base import Connector, Cursor, Extract, ExtractContext, stream_types
from fleuve.ingest.connectors.files import SOURCE_FILE
from fleuve.ingest.errors import RejectedThresholdError, SchemaDriftError
from fleuve.ingest.names import normalize, normalize_all
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

_INTS = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"]
_UINTS = ["UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"]
_FLOATS = ["FLOAT", "DOUBLE"]
_TEXT = ("VARCHAR", "JSON")
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_HUGE = re.compile(r"\bU?HUGEINT\b")
REJECT_SAMPLE = 1000
# Rows read again to measure the Arrow size of a database stream's rows (`bytesSynced`).
MEASURED_ROWS = 2048


@dataclass
class Column:
    """A bronze column: its name, its type and the expression that fills it from the source."""

    name: str
    type: str
    expr: str
    source: str
    # `expr` converts the source's value: a non-NULL value it turns into NULL rejects the row.
    checked: bool = False


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
    name = destination(stream)
    table = f"bronze.{quote_ident(name)}"
    incremental = stream.sync_mode == "incremental" and not full_refresh
    mode = f"{'incremental' if incremental else 'full_refresh'}+{stream.destination_sync_mode}"
    started = time.monotonic()
    fallback: list[Callable[[], None]] = []
    # Files written by each attempt; only the committed attempt's files stay.
    attempts: list[list[str]] = []

    def work(con: duckdb.DuckDBPyConnection) -> StreamOutcome:
        on_session(con)
        written: list[str] = []
        attempts.append(written)
        outcome = StreamOutcome(stream.name, f"bronze.{name}", sync_id, mode)
        # A full read needs no state: the lake round trip is saved (tens of ms a sync).
        state = read_state(con, conn.name, stream.name) if incremental else StreamState()
        since, files = state.cursor, state.files
        exists = _table_exists(con, name)
        ctx.established = (
            {r[0]: r[1] for r in con.execute(f"DESCRIBE {table}").fetchall()} if exists else {}
        )
        extract = connector.extract(con, stream, since, files, ctx)
        fallback[:] = [extract.fallback] if extract.fallback else []
        ctx.on_estimate(extract.estimated_rows, extract.row_bytes)
        outcome.bytes_read = extract.bytes_read
        outcome.files_read = (
            len(extract.files or {}) - len(files or {}) + len(extract.replaced_files)
        )
        if not extract.relation:
            write_state(con, conn.name, stream.name, since, extract.files, sync_id)
            outcome.cursor = since.value if since else None
            outcome.records_rejected = _reject(con, conn, stream, sync_id, [extract.rejected])
            return outcome
        columns = plan_columns(con, extract, stream)
        if extract.inferred_types:
            settle_types(con, extract, columns, ctx.established)
        if exists:
            outcome.schema_changes = reconcile(con, table, columns, extract.has_source_file)
        else:
            _create(con, table, columns, extract.has_source_file)
        current = {r[0]: r[1] for r in con.execute(f"DESCRIBE {table}").fetchall()}
        # Tables created before stream tables were partitioned by this column go without it.
        dated = INGESTION_DATE in current
        typed = [c for c in columns if c.checked]
        bad = _bad_row_condition(typed) if typed else None
        source = _source_select(columns, extract, sync_id, bad, dated)
        target_cols = [c.name for c in columns]
        cursor_col = _mapped(columns, stream.cursor_field)
        keys = [_mapped(columns, k) or normalize(k) for k in stream.primary_key]

        overwrite = stream.destination_sync_mode == "overwrite" or (
            # A full re-read appended to what is there would double it.
            full_refresh and stream.destination_sync_mode == "append"
        )
        whole = bad is None
        if since is not None and cursor_col and exists:
            source = _without_boundary_rows(con, table, source, since, cursor_col, target_cols)
            whole = False

        def land(select: str) -> int:
            """Add the rows of `select`: as files written here when possible, else an insert."""
            if (
                select == source
                and whole
                and direct.applies(
                    lake, con, name, columns, current, extract.arrow, created=not exists
                )
            ):
                return direct.write(
                    lake, con, name, columns, extract.arrow or [], sync_id, ctx.cancelled, written
                )
            extract.scannable(con)
            if direct.copies(lake, con, name, current, created=not exists):
                produced = {*target_cols, EXTRACTED_AT, SYNC_ID, INGESTION_DATE}
                produced |= {SOURCE_FILE} if extract.has_source_file else set()
                return direct.copy(lake, con, name, select, produced, current, written)
            return _count(con.execute(f"INSERT INTO {table} BY NAME {select}"))

        if overwrite:
            con.execute(f"DELETE FROM {table}")
            committed = land(source)
        elif stream.destination_sync_mode == "append":
            if extract.replaced_files:
                con.execute(
                    f"DELETE FROM {table} WHERE {quote_ident(SOURCE_FILE)} IN "
                    f"({', '.join(quote_literal(f) for f in extract.replaced_files)})"
                )
            committed = land(source)
        else:
            # The source's primary key already makes each incoming key unique.
            unique = bool(extract.unique_key) and set(extract.unique_key) == set(stream.primary_key)
            latest = source if unique else _latest(source, keys, cursor_col)
            if exists:
                extract.scannable(con)
                committed = _merge(
                    con,
                    table,
                    latest,
                    target_cols,
                    keys,
                    cursor_col,
                    extract.has_source_file,
                    dated=dated,
                )
            else:
                # A table created by this sync has nothing to match: adding rows is much cheaper.
                committed = land(latest)
        outcome.records_committed = committed
        rejected = _reject(
            con,
            conn,
            stream,
            sync_id,
            [extract.rejected, _typed_rejects(columns, extract, bad, keys)],
        )
        outcome.records_rejected = rejected
        outcome.records_read = committed + rejected
        if rejected:
            extract.scannable(con)
            # to_json of the whole row makes every column parse, as the load did.
            every = _source_select(columns, extract, sync_id, bad, dated)
            read = _count(con.execute(f"SELECT count(to_json(r)) FROM ({every}) AS r"))
            outcome.records_read = read + rejected
            limit = (
                stream.max_rejected_ratio
                if stream.max_rejected_ratio is not None
                else conn.max_rejected_ratio
            )
            ratio = rejected / max(1, read + rejected)
            if ratio > limit:
                sample = con.execute(
                    f"SELECT location, reason, raw FROM {REJECTED_TABLE} WHERE {SYNC_ID} = ? LIMIT {REJECT_SAMPLE}",
                    [sync_id],
                ).fetchall()
                first = sample[0] if sample else ("?", "?", "")
                exc = RejectedThresholdError(
                    f"stream '{stream.name}': {rejected:,} of {read + rejected:,} rows rejected "
                    f"({ratio:.1%}, above the {limit:.1%} allowed); first at {first[0]}: {first[1]}",
                    "fix the source rows (see bronze._rejected), or raise max_rejected_ratio",
                )
                exc.sample = sample  # type: ignore[attr-defined]
                raise exc
        cursor = (
            _new_cursor(con, table, cursor_col, since, extract, sync_id)
            if stream.cursor_field
            else None
        )
        write_state(con, conn.name, stream.name, cursor, extract.files, sync_id)
        outcome.cursor = cursor.value if cursor else None
        if not outcome.bytes_read and outcome.records_read and extract.arrow is None:
            outcome.bytes_read = _arrow_bytes(con, extract.relation, outcome.records_read)
        return outcome

    # A stream creating its table loads alone in this process (`Lake.commit`'s `creates`).
    # Only a table dropped by hand since the sync started would create without the lock.
    creates = name not in bronze
    try:
        try:
            result = lake.commit(work, what=f"sync {conn.name}.{stream.name}", creates=creates)
        except (duckdb.Error, ArrowInvalid) as exc:
            if not fallback or isinstance(exc, duckdb.InterruptException):
                raise
            # Nothing of the failed load was committed: read again, setting bad rows apart.
            log.info(
                "stream read again with the tolerant reader",
                extra={
                    "connection": conn.name,
                    "stream": stream.name,
                    "reason": _reason(exc),
                },
            )
            fallback.pop()()
            result = lake.commit(work, what=f"sync {conn.name}.{stream.name}", creates=creates)
    except BaseException:
        direct.discard(lake, [f for files in attempts for f in files])
        raise
    else:
        direct.discard(lake, [f for files in attempts[:-1] for f in files])
    finally:
        on_session(None)
    result.seconds = time.monotonic() - started
    return result


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


# -- columns and drift ------------------------------------------------------------------


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
    # CSV readers apply declared types themselves and report the rows that fail.
    return extract.rejected is not None and "read_csv(" in extract.relation


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' "
            "AND schema_name = 'bronze' AND table_name = ?",
            [name],
        ).fetchone()[0]
    )


def _create(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[Column], with_file: bool
) -> None:
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


def _mapped(columns: list[Column], source_name: str | None) -> str | None:
    if not source_name:
        return None
    for col in columns:
        if col.source == source_name or col.name == source_name:
            return col.name
    return None


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
    ).fetchone()[0]
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
    ).fetchone()[0]
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
