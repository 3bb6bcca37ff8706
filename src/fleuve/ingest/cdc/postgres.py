"""PostgreSQL change capture: a publication and a logical replication slot per connection,
an initial snapshot consistent with the slot, then the slot's `pgoutput` stream into bronze.

The client is psycopg2's replication connection (psycopg 3 does not speak the replication
protocol); catalog queries and the snapshot's reads use psycopg 3 like the rest of Fleuve.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import select
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import psycopg
import psycopg2
import psycopg2.errors
import psycopg2.extras
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from fleuve.config import ConnectionSettings, StreamSettings
from fleuve.ingest.cdc import changes
from fleuve.ingest.cdc.changes import Batch, CaptureStats, Position, Shape
from fleuve.ingest.cdc.errors import CaptureError, PositionLost
from fleuve.ingest.cdc.pgoutput import (
    UNCHANGED,
    Begin,
    Change,
    Commit,
    Relation,
    Truncate,
    decode,
    lsn_text,
    parse_lsn,
)
from fleuve.ingest.cdc.pgtypes import array_json, cast_sql, duckdb_type, is_array
from fleuve.ingest.connectors.relational import _dsn_fields
from fleuve.ingest.errors import SourceUnavailable
from fleuve.ingest.names import normalize, normalize_all
from fleuve.lake import Lake, quote_ident
from fleuve.logs.local import scrub

log = logging.getLogger("fleuve.ingest.cdc")

SOURCE = "postgres"
# Session settings that fix the text form of values, in the snapshot as in the stream.
_SESSION = (
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=3 "
    "-c bytea_output=hex"
)


def default_name(connection: str) -> str:
    """The slot and publication Fleuve names after a connection: fleuve_<connection>."""
    return ("fleuve_" + normalize(connection))[:63]


@dataclass
class Captured:
    """A captured table: its stream, bronze destination, key and current column layout."""

    stream: StreamSettings
    schema: str
    table: str
    destination: str
    key: tuple[str, ...]
    shape: Shape | None = None
    arrays: list[bool] = field(default_factory=list)
    key_positions: list[int] = field(default_factory=list)


@dataclass
class _Txn:
    lsn: int
    at: datetime
    seq: int = 0
    skip: bool = False


class _CopyReader(io.RawIOBase):
    """A COPY TO STDOUT stream as a file pyarrow's CSV reader can pull from."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self.chunks = chunks
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            try:
                self.pending = bytes(next(self.chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


class PostgresCapture:
    """Captures the `sync_mode: cdc` streams of one PostgreSQL connection."""

    def __init__(
        self,
        lake: Lake,
        conn: ConnectionSettings,
        streams: list[StreamSettings],
        *,
        flush_rows: int = 50_000,
        flush_seconds: float = 1.0,
        idle_confirm_seconds: float = 10.0,
        slot_wait_seconds: float = 10.0,
    ) -> None:
        self.lake, self.conn = lake, conn
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.idle_confirm_seconds = idle_confirm_seconds
        self.slot_wait_seconds = slot_wait_seconds
        source = conn.source
        fields = _dsn_fields(source, "postgresql")
        self.params: dict[str, Any] = {
            "host": fields.get("host", "127.0.0.1"),
            "port": int(fields.get("port", 5432)),
            "dbname": fields["database"],
            "user": fields.get("user"),
            "password": fields.get("password"),
            "options": _SESSION,
            "application_name": f"fleuve-cdc-{conn.name}"[:63],
        }
        self.slot = str(source.get("slot") or default_name(conn.name))
        self.publication = str(source.get("publication") or default_name(conn.name))
        self.own_slot = "slot" not in source
        self.own_publication = "publication" not in source
        default_schema = source.get("schema") or "public"
        self.captured: dict[tuple[str, str], Captured] = {}
        for stream in streams:
            schema, _, table = (stream.table or stream.name).rpartition(".")
            dest = stream.destination or normalize(stream.name)
            self.captured[(schema or default_schema, table)] = Captured(
                stream, schema or default_schema, table, dest, ()
            )
        self.relations: dict[int, Captured] = {}

    # -- connections ------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(**self.params, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise self._unreachable(exc) from None

    def _replication(self) -> psycopg2.extensions.connection:
        try:
            return psycopg2.connect(
                connection_factory=psycopg2.extras.LogicalReplicationConnection,
                connect_timeout=10,
                **{k: v for k, v in self.params.items() if v is not None},
            )
        except psycopg2.OperationalError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: BaseException) -> Exception:
        text = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        if "replication" in text and ("permission" in text or "must be" in text):
            return CaptureError(
                f"connection '{self.conn.name}': the PostgreSQL user may not replicate: {text}",
                "grant it: ALTER ROLE <user> WITH REPLICATION (and allow replication "
                "connections in pg_hba.conf)",
            )
        return SourceUnavailable(
            f"connection '{self.conn.name}': cannot reach the PostgreSQL source: {text}",
            "check that the server is running and that host and port are right",
        )

    # -- checks -----------------------------------------------------------------------

    def check(self) -> list[tuple[str, str]]:
        """What the server lacks for change capture, asked on a connection of its own."""
        with self._connect() as pg:
            return self.problems(pg)

    def problems(self, pg: psycopg.Connection[Any]) -> list[tuple[str, str]]:
        """What the server lacks for change capture: (problem, fix) pairs, empty when ready."""
        out = []
        (level,) = pg.execute("SHOW wal_level").fetchone()  # type: ignore[misc]
        if level != "logical":
            out.append(
                (
                    f"wal_level is '{level}', change capture needs 'logical'",
                    "set wal_level = logical in postgresql.conf and restart the server",
                )
            )
        (may,) = pg.execute(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()  # type: ignore[misc]
        if not may:
            out.append(
                (
                    "the user has no REPLICATION privilege",
                    "ALTER ROLE <user> WITH REPLICATION",
                )
            )
        free = pg.execute(
            "SELECT current_setting('max_replication_slots')::int - "
            "(SELECT count(*) FROM pg_replication_slots)"
        ).fetchone()[0]  # type: ignore[index]
        slot_exists = pg.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [self.slot]
        ).fetchone()
        if free < 1 and not slot_exists:
            out.append(
                (
                    "no free replication slot (max_replication_slots reached)",
                    "raise max_replication_slots, or drop an unused slot",
                )
            )
        for cap in self.captured.values():
            try:
                self._describe(pg, cap)
            except CaptureError as exc:
                out.append((exc.message, exc.fix or ""))
        return out

    def _describe(self, pg: psycopg.Connection[Any], cap: Captured) -> list[tuple[str, int, int]]:
        """The table's columns (name, type oid, typmod); sets its key, or fails naming why."""
        name = f"{cap.schema}.{cap.table}"
        row = pg.execute(
            "SELECT c.oid, c.relreplident FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            [cap.schema, cap.table],
        ).fetchone()
        if row is None:
            raise CaptureError(
                f"stream '{cap.stream.name}': no table {name} in the source",
                f"run `fleuve source discover {self.conn.name}` to list its tables",
            )
        oid, identity = row
        columns = pg.execute(
            "SELECT attname, atttypid, atttypmod FROM pg_attribute WHERE attrelid = %s "
            "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [oid],
        ).fetchall()
        pk = [
            r[0]
            for r in pg.execute(
                "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY "
                "AS k(attnum, pos) ON true JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = k.attnum WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.pos",
                [oid],
            ).fetchall()
        ]
        names = [c[0] for c in columns]
        bronze = dict(zip(names, normalize_all(names), strict=True))
        key = cap.stream.primary_key or pk
        if not key:
            raise CaptureError(
                f"stream '{cap.stream.name}': {name} has no primary key, so its changes cannot "
                "be told apart",
                f"add a primary key to {name}, or set primary_key: [...] on the stream and run "
                f"ALTER TABLE {name} REPLICA IDENTITY FULL",
            )
        if identity == "n" or (identity == "d" and not pk):
            raise CaptureError(
                f"stream '{cap.stream.name}': {name} has no replica identity, so PostgreSQL "
                "would refuse its updates and deletes once published",
                f"ALTER TABLE {name} REPLICA IDENTITY FULL (or give it a primary key)",
            )
        missing = [k for k in key if k not in bronze]
        if missing:
            raise CaptureError(
                f"stream '{cap.stream.name}': primary_key {missing} not among the columns of {name}",
                f"pick among: {', '.join(names)}",
            )
        cap.key = tuple(bronze[k] for k in key)
        return [(n, int(t), int(m)) for n, t, m in columns]

    def _shape(self, cap: Captured, columns: list[tuple[str, int, int]]) -> Shape:
        """The bronze layout of `columns`; the current one when nothing changed."""
        names = normalize_all([c[0] for c in columns])
        shape = Shape(
            tuple(
                (n, duckdb_type(t, m), is_array(t))
                for n, (_, t, m) in zip(names, columns, strict=True)
            ),
            cap.key,
        )
        if shape != cap.shape:
            cap.shape = shape
            cap.arrays = [a for _, _, a in shape.columns]
            cap.key_positions = [names.index(k) for k in cap.key if k in names]
        return cap.shape

    # -- setup ------------------------------------------------------------------------

    def _publish(self, pg: psycopg.Connection[Any]) -> None:
        """Create or complete Fleuve's publication; check a user's publication covers the streams."""
        tables = [(c.schema, c.table) for c in self.captured.values()]
        exists = pg.execute(
            "SELECT puballtables FROM pg_publication WHERE pubname = %s", [self.publication]
        ).fetchone()
        published = {
            (s, t)
            for s, t in pg.execute(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
                [self.publication],
            ).fetchall()
        }
        missing = [t for t in tables if t not in published]
        if exists and (exists[0] or not missing):
            return
        idents = sql.SQL(", ").join(sql.Identifier(s, t) for s, t in missing)
        if not self.own_publication:
            if not exists:
                raise CaptureError(
                    f"connection '{self.conn.name}': no publication '{self.publication}' "
                    "on the source",
                    f"CREATE PUBLICATION {self.publication} FOR TABLE ..., or remove "
                    "source.publication so that Fleuve creates its own",
                )
            raise CaptureError(
                f"connection '{self.conn.name}': publication '{self.publication}' lacks "
                + ", ".join(f"{s}.{t}" for s, t in missing),
                f"ALTER PUBLICATION {self.publication} ADD TABLE "
                + ", ".join(f"{s}.{t}" for s, t in missing),
            )
        pub = sql.Identifier(self.publication)
        try:
            if exists:
                pg.execute(sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(pub, idents))
            else:
                pg.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(pub, idents))
        except psycopg.errors.InsufficientPrivilege as exc:
            raise CaptureError(
                f"connection '{self.conn.name}': cannot publish the streams' tables: "
                f"{str(exc).splitlines()[0]}",
                "let a table owner run CREATE PUBLICATION and name it as source.publication",
            ) from None

    def _slot(self, pg: psycopg.Connection[Any]) -> tuple[int | None, str | None, int | None]:
        """(confirmed flush LSN, wal status, active pid) of the slot, or Nones without it."""
        row = pg.execute(
            "SELECT confirmed_flush_lsn::text, wal_status, active_pid FROM pg_replication_slots "
            "WHERE slot_name = %s",
            [self.slot],
        ).fetchone()
        if row is None:
            return None, None, None
        return (parse_lsn(row[0]) if row[0] else None), row[1], row[2]

    def _drop_slot(self, pg: psycopg.Connection[Any]) -> None:
        deadline = time.monotonic() + self.slot_wait_seconds
        _, _, pid = self._slot(pg)
        while pid is not None and time.monotonic() < deadline:
            time.sleep(0.2)  # a capture that just died keeps it until the server notices
            _, _, pid = self._slot(pg)
        if pid is not None:
            raise CaptureError(
                f"connection '{self.conn.name}': slot '{self.slot}' is in use by process {pid}",
                "stop the other capture of this connection first",
            )
        with contextlib.suppress(psycopg.errors.UndefinedObject):
            pg.execute("SELECT pg_drop_replication_slot(%s)", [self.slot])

    # -- run --------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        until_caught_up: bool = True,
        full_refresh: bool = False,
    ) -> CaptureStats:
        """Snapshot if needed, then stream changes into bronze until caught up (or `stop()`)."""
        stats = CaptureStats()
        changes.ensure_positions(self.lake)
        with self.lake.session() as con:
            pos = changes.read_position(con, self.conn.name)
        with self._connect() as pg:
            problems = self.problems(pg)
            if problems:
                problem, fix = problems[0]
                raise CaptureError(f"connection '{self.conn.name}': {problem}", fix)
            self._publish(pg)
            names = sorted(c.stream.name for c in self.captured.values())
            fresh = (
                full_refresh
                or pos is None
                or pos.slot != self.slot
                or not set(names) <= set(pos.streams)
            )
            if fresh and pos is not None and not full_refresh:
                new = sorted(set(names) - set(pos.streams))
                if new and pos.slot == self.slot:
                    raise CaptureError(
                        f"connection '{self.conn.name}': stream(s) {', '.join(new)} have no "
                        "snapshot yet",
                        f"take a new snapshot of the connection: `fleuve sync {self.conn.name} "
                        "--full-refresh`",
                    )
            if fresh:
                pos = self._snapshot(pg, names, stats, replace=full_refresh)
            assert pos is not None
            self._check_slot(pg, pos)
            target = parse_lsn(pg.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])  # type: ignore[index]
        self._stream(pos, stats, stop=stop, target=target if until_caught_up else None)
        with self._connect() as pg:
            lag = pg.execute(
                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, "
                "(pg_current_wal_lsn() - restart_lsn)::bigint FROM pg_replication_slots "
                "WHERE slot_name = %s",
                [self.slot],
            ).fetchone()
        if lag is not None:
            stats.lag_bytes, stats.retained_bytes = lag
        return stats

    def _check_slot(self, pg: psycopg.Connection[Any], pos: Position) -> None:
        """Fail, naming the fix, when the slot cannot give every change after `pos`."""
        confirmed, status, _ = self._slot(pg)
        fix = (
            f"take a new snapshot: `fleuve sync {self.conn.name} --full-refresh` (bronze is "
            "replaced by the source's current state, then changes stream again)"
        )
        if confirmed is None:
            raise PositionLost(
                f"connection '{self.conn.name}': replication slot '{self.slot}' is gone from the "
                f"source; the changes after {lsn_text(pos.lsn)} cannot be read any more",
                fix,
            )
        if status == "lost":
            raise PositionLost(
                f"connection '{self.conn.name}': the source removed WAL that slot '{self.slot}' "
                "still needed (max_slot_wal_keep_size); changes were lost to it",
                fix,
            )
        if confirmed > pos.lsn:
            raise PositionLost(
                f"connection '{self.conn.name}': slot '{self.slot}' was confirmed up to "
                f"{lsn_text(confirmed)}, past the lake's position {lsn_text(pos.lsn)}: the "
                "changes between them are not in the lake and the slot no longer has them",
                fix,
            )

    # -- snapshot ---------------------------------------------------------------------

    def _snapshot(
        self, pg: psycopg.Connection[Any], names: list[str], stats: CaptureStats, *, replace: bool
    ) -> Position:
        """Create the slot, read every table as of its exported snapshot, and commit the rows
        with the slot's consistent point, in one lake transaction."""
        confirmed, _, _ = self._slot(pg)
        if confirmed is not None:
            if not (self.own_slot or replace):
                raise CaptureError(
                    f"connection '{self.conn.name}': slot '{self.slot}' exists but the lake "
                    "holds no snapshot taken with it, and an existing slot cannot give one",
                    f"drop it (SELECT pg_drop_replication_slot('{self.slot}')) so that Fleuve "
                    "creates it with a snapshot, or sync with --full-refresh",
                )
            self._drop_slot(pg)
        repl = self._replication()
        try:
            cur = repl.cursor()
            try:
                cur.execute(
                    f"CREATE_REPLICATION_SLOT {psycopg2.extensions.quote_ident(self.slot, cur)} "
                    "LOGICAL pgoutput EXPORT_SNAPSHOT"
                )
            except psycopg2.Error as exc:
                raise CaptureError(
                    f"connection '{self.conn.name}': cannot create replication slot "
                    f"'{self.slot}': {str(exc).strip().splitlines()[0]}",
                    "check max_replication_slots and the user's REPLICATION privilege",
                ) from None
            created = cur.fetchone()
            assert created is not None
            _, consistent, exported, _ = created
            reader = self._connect()
            reader.autocommit = False
            reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            reader.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported)))
        finally:
            # The reading transaction holds the snapshot now; the slot lives on without us.
            repl.close()
        consistent_lsn = parse_lsn(consistent)
        log.info(
            "change capture snapshot",
            extra={"connection_id": self.conn.name, "slot": self.slot, "lsn": consistent},
        )
        try:
            (taken_at,) = reader.execute("SELECT now()").fetchone()  # type: ignore[misc]
            layouts = []
            for cap in self.captured.values():
                columns = self._describe(reader, cap)
                layouts.append((cap, self._shape(cap, columns), [c[0] for c in columns]))
            calls = 0

            def work(con: Any) -> int:
                nonlocal calls
                calls += 1
                if calls > 1:  # the tables' COPY streams were read: a retry cannot replay them
                    raise CaptureError(
                        f"connection '{self.conn.name}': another writer changed bronze while the "
                        "snapshot was landing",
                        "sync again: a new snapshot is taken",
                    )
                rows = 0
                for cap, shape, source_names in layouts:
                    changes.create_stream_tables(con, self.conn.name, cap.destination, shape)
                    rows += self._copy_into(con, reader, cap, shape, source_names, taken_at)
                changes.write_position(
                    con,
                    self.conn.name,
                    SOURCE,
                    Position(consistent_lsn, consistent, slot=self.slot, streams=names),
                )
                return rows

            stats.snapshot_rows = self.lake.commit(
                work, what=f"snapshot of {self.conn.name}", creates=True
            )
        finally:
            reader.close()
        return Position(consistent_lsn, consistent, slot=self.slot, streams=names)

    def _copy_into(
        self,
        con: Any,
        reader: psycopg.Connection[Any],
        cap: Captured,
        shape: Shape,
        source_names: list[str],
        taken_at: datetime,
    ) -> int:
        """Stream one table's rows (COPY as CSV) into its change table as 'snapshot' rows."""
        source = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT csv)").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in source_names),
            sql.Identifier(cap.schema, cap.table),
        )
        names = shape.names
        text = {n: pa.string() for n in names}
        with reader.cursor() as cur, cur.copy(source) as copy:
            chunks = iter(copy)
            first = next(chunks, None)
            if first is None:
                return 0  # an empty table: pyarrow reads no CSV without a line
            csv = pacsv.open_csv(
                io.BufferedReader(
                    _CopyReader(itertools.chain([first], chunks)), buffer_size=1 << 20
                ),
                read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=text,
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                    null_values=[""],
                ),
            )
            arrays = [i for i, (_, _, a) in enumerate(shape.columns) if a]
            schema = pa.schema([(n, pa.string()) for n in names])

            def batches() -> Iterator[pa.RecordBatch]:
                for batch in csv:
                    if arrays:
                        cols = list(batch.columns)
                        for i in arrays:
                            cols[i] = pa.array(
                                [array_json(v) for v in cols[i].to_pylist()], pa.string()
                            )
                        batch = pa.RecordBatch.from_arrays(cols, schema=schema)
                    yield batch

            staged = "fleuve_cdc_snapshot"
            con.register(staged, pa.RecordBatchReader.from_batches(schema, batches()))
            try:
                casts = ", ".join(
                    f"{cast_sql(n, t)} AS {quote_ident(n)}" for n, t, _ in shape.columns
                )
                count = con.execute(
                    f"INSERT INTO {changes.changes_table(cap.destination)} BY NAME SELECT "
                    f"'snapshot' AS {changes.OP}, 0 AS {changes.LSN}, 0 AS {changes.SEQ}, "
                    f"?::TIMESTAMPTZ AS {changes.COMMITTED_AT}, {casts}, "
                    f"now() AS {changes.EXTRACTED_AT}, {changes.INGESTION_DATE_SQL} "
                    f"AS {changes.INGESTION_DATE} FROM {staged}",
                    [taken_at],
                ).fetchone()[0]
            finally:
                con.unregister(staged)
        return int(count)

    # -- streaming --------------------------------------------------------------------

    def _stream(
        self,
        pos: Position,
        stats: CaptureStats,
        *,
        stop: Callable[[], bool],
        target: int | None,
    ) -> None:
        """Read the slot from `pos`, landing micro-batches, until caught up with `target`
        (or, without a target, until `stop()`)."""
        deadline = time.monotonic() + self.slot_wait_seconds
        while True:
            repl = self._replication()
            try:
                cur = cast(psycopg2.extras.ReplicationCursor, repl.cursor())
                try:
                    cur.start_replication(
                        slot_name=self.slot,
                        decode=False,
                        start_lsn=pos.lsn,
                        options={"proto_version": "1", "publication_names": self.publication},
                    )
                except psycopg2.Error as exc:
                    text = str(exc).strip().splitlines()[0]
                    if "has already been removed" in text or "does not exist" in text:
                        raise PositionLost(
                            f"connection '{self.conn.name}': the source cannot stream from "
                            f"{lsn_text(pos.lsn)}: {text}",
                            f"take a new snapshot: `fleuve sync {self.conn.name} --full-refresh`",
                        ) from None
                    if "is active for PID" not in text:
                        raise
                    # A capture that just died leaves the slot busy until the server notices.
                    if time.monotonic() > deadline:
                        raise SourceUnavailable(
                            f"connection '{self.conn.name}': {text}",
                            "another process captures this connection; stop it first",
                        ) from None
                    time.sleep(0.2)
                    continue
                _Streamer(self, cur, pos, stats, stop, target).run()
                return
            finally:
                with contextlib.suppress(Exception):
                    repl.close()

    def land(self, batch: Batch, pos: Position) -> None:
        """Commit a micro-batch and the position after it in one lake transaction."""
        changes.land(self.lake, self.conn.name, SOURCE, batch, pos, cast_sql, array_json)


class _Streamer:
    """One replication stream: decode, buffer, land micro-batches, confirm what landed."""

    def __init__(
        self,
        capture: PostgresCapture,
        cur: Any,
        pos: Position,
        stats: CaptureStats,
        stop: Callable[[], bool],
        target: int | None,
    ) -> None:
        self.capture, self.cur, self.stats = capture, cur, stats
        self.stop, self.target = stop, target
        self.committed = pos  # in the lake
        self.reached = pos.lsn  # every transaction before it is in the lake or the batch
        self.batch = Batch()
        self.txn: _Txn | None = None
        self.oldest: float | None = None  # when the batch's first change arrived
        self.last_commit = time.monotonic()

    def run(self) -> None:
        cur = self.cur
        idle_since: float | None = None
        asked = 0.0
        while True:
            msg = cur.read_message()
            if msg is not None:
                idle_since = None
                self.on_message(msg.payload)
                if self.batch.rows >= self.capture.flush_rows or (
                    self.oldest is not None
                    and time.monotonic() - self.oldest >= self.capture.flush_seconds
                ):
                    self.flush()
                    if self.stop():
                        return
                if self.txn is None and self.target is not None and self.reached >= self.target:
                    self.flush()
                    self.advance_idle(force=True)
                    return
                continue
            now = time.monotonic()
            if self.oldest is not None and now - self.oldest >= self.capture.flush_seconds:
                self.flush()
            if self.txn is None and not self.batch.rows:
                if self.stop() or self.caught_up(idle_since, now):
                    self.advance_idle(force=True)
                    return
                self.advance_idle(force=False)
            elif self.stop():
                self.flush()
                return
            if idle_since is None:
                idle_since = now
            if self.target is not None and now - asked > 0.2:
                # Ask the server for a keepalive: it carries how far its decoding has gone.
                cur.send_feedback(reply=True)
                asked = now
            wait = 0.05 if self.target is not None else 0.2
            if self.oldest is not None:
                wait = min(wait, max(0.0, self.oldest + self.capture.flush_seconds - now))
            select.select([cur], [], [], wait)

    def caught_up(self, idle_since: float | None, now: float) -> bool:
        """One-shot runs stop once the server has decoded past the WAL end seen at start."""
        if self.target is None:
            return False
        if max(self.cur.wal_end or 0, self.reached) >= self.target:
            return True
        # Decoding may stop short of the target by WAL that holds no record yet: an idle
        # stream for a few seconds is caught up as well. Stopping early loses nothing.
        return idle_since is not None and now - idle_since > 3.0

    def on_message(self, payload: bytes) -> None:
        m = decode(payload)
        if isinstance(m, Change):
            cap = self.capture.relations.get(m.relation)
            txn = self.txn
            if cap is None or txn is None or txn.skip:
                return
            self.on_change(cap, txn, m)
        elif isinstance(m, Begin):
            skip = m.lsn < self.committed.lsn
            self.txn = _Txn(m.lsn, m.committed_at, skip=skip)
        elif isinstance(m, Commit):
            txn, self.txn = self.txn, None
            self.reached = max(self.reached, m.end_lsn)
            if txn is not None and not txn.skip:
                self.stats.transactions += 1
                if txn.lsn == self.committed.partial_lsn and self.oldest is None:
                    # Parts of it landed already: commit its end soon, so that it shows.
                    self.oldest = time.monotonic()
        elif isinstance(m, Relation):
            cap = self.capture.captured.get((m.schema, m.table))
            if cap is not None:
                self.capture.relations[m.oid] = cap
                self.capture._shape(cap, [(c.name, c.type_oid, c.typmod) for c in m.columns])
                missing = [k for k in cap.key if k not in cap.shape.names]  # type: ignore[union-attr]
                if missing:
                    raise CaptureError(
                        f"stream '{cap.stream.name}': key column(s) {missing} left the source table",
                        f"take a new snapshot: `fleuve sync {self.capture.conn.name} --full-refresh`",
                    )
        elif isinstance(m, Truncate):
            txn = self.txn
            if txn is None or txn.skip:
                return
            for oid in m.relations:
                cap = self.capture.relations.get(oid)
                if cap is not None:
                    self.row(cap, txn, "truncate", None)

    def on_change(self, cap: Captured, txn: _Txn, m: Change) -> None:
        if m.op == "insert":
            self.row(cap, txn, "insert", m.new)
            return
        if m.op == "delete":
            self.row(cap, txn, "delete", [None if v is UNCHANGED else v for v in m.old or []])
            return
        new, old = list(m.new or []), m.old
        unchanged = None
        if UNCHANGED in new:
            for i, v in enumerate(new):
                if v is UNCHANGED:
                    if old is not None and old[i] is not UNCHANGED and old[i] is not None:
                        new[i] = old[i]  # REPLICA IDENTITY FULL sends the old row whole
                    else:
                        new[i] = None
                        unchanged = [*(unchanged or []), cap.shape.columns[i][0]]  # type: ignore[union-attr]
        if old is not None and any(old[i] != new[i] for i in cap.key_positions):
            # The key changed: the old key's row is gone.
            self.row(cap, txn, "delete", [None if v is UNCHANGED else v for v in old])
        self.row(cap, txn, "update", new, unchanged)

    def row(
        self,
        cap: Captured,
        txn: _Txn,
        op: str,
        values: list[Any] | None,
        unchanged: list[str] | None = None,
    ) -> None:
        txn.seq += 1
        if txn.lsn == self.committed.partial_lsn and txn.seq <= self.committed.partial_seq:
            return  # landed by an earlier run, in a part of this transaction
        assert cap.shape is not None
        self.batch.segment(cap.destination, cap.shape).add(
            op, txn.lsn, txn.seq, txn.at, values, unchanged
        )
        self.batch.rows += 1
        if self.oldest is None:
            self.oldest = time.monotonic()

    def flush(self) -> None:
        """Land the batch: complete transactions, and the part of an open one read so far."""
        txn = self.txn
        if not self.batch.rows and (txn is not None or self.committed.partial_lsn is None):
            return
        pos = Position(
            self.reached,
            lsn_text(self.reached),
            partial_lsn=txn.lsn if txn is not None and not txn.skip and txn.seq else None,
            partial_seq=txn.seq if txn is not None and not txn.skip else 0,
            slot=self.capture.slot,
            streams=self.committed.streams,
        )
        self.capture.land(self.batch, pos)
        self.stats.changes += self.batch.rows
        self.stats.commits += 1
        self.batch.clear()
        self.oldest = None
        self.confirmed(pos)

    def confirmed(self, pos: Position) -> None:
        """`pos` is committed: let the server recycle the WAL before it."""
        self.committed = pos
        self.last_commit = time.monotonic()
        self.stats.position = lsn_text(pos.lsn)
        self.cur.send_feedback(write_lsn=pos.lsn, flush_lsn=pos.lsn, apply_lsn=pos.lsn, force=True)

    def advance_idle(self, *, force: bool) -> None:
        """With nothing buffered, move the committed position up to where the server's
        decoding stands, so that the slot does not hold WAL of transactions we do not read."""
        reached = max(self.reached, self.cur.wal_end or 0)
        if reached <= self.committed.lsn:
            return
        if not force and time.monotonic() - self.last_commit < self.capture.idle_confirm_seconds:
            return
        pos = Position(
            reached, lsn_text(reached), slot=self.capture.slot, streams=self.committed.streams
        )

        def work(con: Any) -> None:
            changes.write_position(con, self.capture.conn.name, SOURCE, pos)

        self.capture.lake.commit(work, what=f"position of {self.capture.conn.name}")
        self.reached = reached
        self.confirmed(pos)
