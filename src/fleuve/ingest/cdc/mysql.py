"""MySQL and MariaDB change capture: a snapshot consistent with a binlog position, then the
row-based binary log from there (read as a replica with the `mysql-replication` package).

Positions are binlog file and offset; `_fleuve_lsn` numbers a transaction by its file's number
* 2^32 + the offset of its GTID event, so that it orders like PostgreSQL's LSNs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pymysql  # type: ignore[import-untyped]
import pymysql.cursors  # type: ignore[import-untyped]
from pymysqlreplication import BinLogStreamReader  # type: ignore[import-untyped]
from pymysqlreplication.event import (  # type: ignore[import-untyped]
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    QueryEvent,
    RotateEvent,
    XidEvent,
)
from pymysqlreplication.row_event import (  # type: ignore[import-untyped]
    DeleteRowsEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from fleuve.config import ConnectionSettings, StreamSettings
from fleuve.ingest.cdc import changes
from fleuve.ingest.cdc.changes import Batch, CaptureStats, Position, Shape
from fleuve.ingest.cdc.errors import CaptureError, PositionLost
from fleuve.ingest.cdc.pgtypes import cast_sql
from fleuve.ingest.connectors.relational import _dsn_fields
from fleuve.ingest.errors import SourceUnavailable
from fleuve.ingest.names import normalize, normalize_all
from fleuve.lake import Lake, quote_ident
from fleuve.logs.local import scrub

log = logging.getLogger("fleuve.ingest.cdc")

SOURCE = "mysql"
_INTS = {
    "tinyint": ("TINYINT", "UTINYINT"),
    "smallint": ("SMALLINT", "USMALLINT"),
    "mediumint": ("INTEGER", "UINTEGER"),
    "int": ("INTEGER", "UINTEGER"),
    "bigint": ("BIGINT", "UBIGINT"),
}
_OTHERS = {
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "time": "TIME",
    "year": "INTEGER",
    "json": "JSON",
    "binary": "BLOB",
    "varbinary": "BLOB",
    "tinyblob": "BLOB",
    "blob": "BLOB",
    "mediumblob": "BLOB",
    "longblob": "BLOB",
    "bit": "BLOB",
}


def duckdb_type(data_type: str, column_type: str) -> str:
    """The bronze type of a MySQL column, as the cursor sync maps it."""
    kind, full = data_type.lower(), column_type.lower()
    if full.startswith("tinyint(1)"):
        return "BOOLEAN"
    if kind in _INTS:
        return _INTS[kind][1 if "unsigned" in full else 0]
    if kind in ("decimal", "numeric"):
        m = re.search(r"\((\d+)(?:,(\d+))?\)", full)
        precision, scale = (int(m.group(1)), int(m.group(2) or 0)) if m else (10, 0)
        return f"DECIMAL({precision},{scale})" if precision <= 38 else "VARCHAR"
    return _OTHERS.get(kind, "VARCHAR")


def cast_mysql(column: str, kind: str) -> str:
    """A staged text column as its bronze type; zero dates become null."""
    col = quote_ident(column)
    if kind == "TIMESTAMP WITH TIME ZONE":
        return f"TRY_CAST({col} || '+00' AS TIMESTAMP WITH TIME ZONE)"
    if kind in ("DATE", "TIMESTAMP"):
        return f"TRY_CAST({col} AS {kind})"
    return cast_sql(column, kind)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _keys_text(value: Any) -> Any:
    """JSON decoded by the binlog reader may carry bytes keys and values."""
    if isinstance(value, dict):
        return {
            (k.decode() if isinstance(k, bytes) else k): _keys_text(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_keys_text(v) for v in value]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def text(value: Any, kind: str = "") -> str | None:
    """A value read from MySQL in a text form its bronze type's cast reads."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal | float):
        return str(value)
    if isinstance(value, bytes | bytearray):
        if kind == "BLOB":
            return "\\x" + bytes(value).hex()
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        sign = "-" if value < timedelta(0) else ""
        total = abs(value)
        hours, rest = divmod(total.seconds, 3600)
        return f"{sign}{total.days * 24 + hours:02d}:{rest // 60:02d}:{rest % 60:02d}" + (
            f".{total.microseconds:06d}" if total.microseconds else ""
        )
    if isinstance(value, dict | list):
        return json.dumps(_keys_text(value), ensure_ascii=False, default=_json_default)
    if isinstance(value, set):
        return ",".join(sorted(value))
    return str(value)


def shown(resume: str) -> str:
    """A stored binlog position as people write it: binlog.000003:1234."""
    where = json.loads(resume)
    return f"{where['file']}:{where['pos']}"


def number(file: str, pos: int) -> int:
    """A binlog position as one increasing number: the file's index * 2^32 + the offset."""
    return (int(file.rsplit(".", 1)[1]) << 32) | pos


@dataclass
class _Table:
    stream: StreamSettings
    schema: str
    table: str
    destination: str
    key: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # source column names of `shape`
    shape: Shape | None = None
    kinds: list[str] | None = None


class MySQLCapture:
    """Captures the `sync_mode: cdc` streams of one MySQL or MariaDB connection."""

    def __init__(
        self,
        lake: Lake,
        conn: ConnectionSettings,
        streams: list[StreamSettings],
        *,
        flush_rows: int = 50_000,
        flush_seconds: float = 1.0,
        idle_confirm_seconds: float = 10.0,
    ) -> None:
        self.lake, self.conn = lake, conn
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.idle_confirm_seconds = idle_confirm_seconds
        fields = _dsn_fields(conn.source, "mysql")
        self.params: dict[str, Any] = {
            "host": fields.get("host", "127.0.0.1"),
            "port": int(fields.get("port", 3306)),
            "user": fields.get("user", "root"),
            "password": fields.get("password", ""),
        }
        self.database = fields["database"]
        self.server_id = int(
            conn.source.get("server_id") or 100_000 + zlib.crc32(conn.name.encode()) % 1_000_000
        )
        self.tables: dict[tuple[str, str], _Table] = {}
        for stream in streams:
            schema, _, table = (stream.table or stream.name).rpartition(".")
            dest = stream.destination or normalize(stream.name)
            self.tables[(schema or self.database, table)] = _Table(
                stream, schema or self.database, table, dest
            )

    # -- connections and checks -------------------------------------------------------

    def _connect(self, **more: Any) -> pymysql.Connection:
        try:
            return pymysql.connect(
                **self.params,
                database=self.database,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=10,
                **more,
            )
        except pymysql.err.OperationalError as exc:
            raise SourceUnavailable(
                f"connection '{self.conn.name}': cannot reach the MySQL source: {scrub(str(exc))}",
                "check that the server is running and that host and port are right",
            ) from None

    def _rows(self, db: pymysql.Connection, sql: str, params: Any = None) -> list[tuple]:
        with db.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def check(self) -> list[tuple[str, str]]:
        """What the server lacks for change capture, asked on a connection of its own."""
        db = self._connect()
        try:
            return self.problems(db)
        finally:
            db.close()

    def problems(self, db: pymysql.Connection) -> list[tuple[str, str]]:
        """What the server lacks for change capture: (problem, fix) pairs, empty when ready."""
        out = []
        settings = {
            k.lower(): str(v)
            for k, v in self._rows(
                db,
                "SHOW VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', "
                "'binlog_row_image', 'binlog_row_metadata')",
            )
        }
        wanted = {
            "log_bin": ("ON", "start the server with log_bin (a binary log)"),
            "binlog_format": ("ROW", "set binlog_format = ROW"),
            "binlog_row_image": ("FULL", "set binlog_row_image = FULL"),
            "binlog_row_metadata": ("FULL", "set binlog_row_metadata = FULL"),
        }
        for name, (value, fix) in wanted.items():
            have = settings.get(name)
            if have is not None and have.upper() != value:
                out.append((f"{name} is '{have}', change capture needs '{value}'", fix))
        try:
            self._rows(db, "SHOW MASTER STATUS")
        except pymysql.err.MySQLError as exc:
            out.append(
                (
                    f"the user cannot read the binary log position: {exc.args[-1]}",
                    "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO <user>",
                )
            )
        for t in self.tables.values():
            try:
                self._describe(db, t)
            except CaptureError as exc:
                out.append((exc.message, exc.fix or ""))
        return out

    def _describe(self, db: pymysql.Connection, t: _Table) -> Shape:
        """The table's current bronze layout; sets its key, or fails naming why."""
        rows = self._rows(
            db,
            "SELECT column_name, data_type, column_type, column_key FROM "
            "information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            [t.schema, t.table],
        )
        if not rows:
            raise CaptureError(
                f"stream '{t.stream.name}': no table {t.schema}.{t.table} in the source",
                f"run `fleuve source discover {self.conn.name}` to list its tables",
            )
        names = [r[0] for r in rows]
        bronze = dict(zip(names, normalize_all(names), strict=True))
        key = t.stream.primary_key or [r[0] for r in rows if r[3] == "PRI"]
        if not key:
            raise CaptureError(
                f"stream '{t.stream.name}': {t.schema}.{t.table} has no primary key, so its "
                "changes cannot be told apart",
                "add a primary key to the table, or set primary_key: [...] on the stream",
            )
        t.key = tuple(bronze[k] for k in key if k in bronze)
        t.names = tuple(names)
        t.kinds = [duckdb_type(r[1], r[2]) for r in rows]
        shape = Shape(
            tuple((bronze[n], k, False) for n, k in zip(names, t.kinds, strict=True)), t.key
        )
        if shape != t.shape:
            t.shape = shape
        return t.shape

    def _master(self, db: pymysql.Connection) -> tuple[str, int]:
        row = self._rows(db, "SHOW MASTER STATUS")
        if not row:
            raise CaptureError(
                f"connection '{self.conn.name}': the server writes no binary log",
                "start it with log_bin, binlog_format = ROW and binlog_row_image = FULL",
            )
        return str(row[0][0]), int(row[0][1])

    # -- run --------------------------------------------------------------------------

    def run(
        self,
        *,
        stop: Callable[[], bool] = lambda: False,
        until_caught_up: bool = True,
        full_refresh: bool = False,
    ) -> CaptureStats:
        """Snapshot if needed, then read the binlog into bronze until caught up (or `stop()`)."""
        stats = CaptureStats()
        changes.ensure_positions(self.lake)
        with self.lake.session() as con:
            pos = changes.read_position(con, self.conn.name)
        db = self._connect()
        try:
            problems = self.problems(db)
            if problems:
                problem, fix = problems[0]
                raise CaptureError(f"connection '{self.conn.name}': {problem}", fix)
            names = sorted(t.stream.name for t in self.tables.values())
            if pos is not None and not full_refresh and not set(names) <= set(pos.streams):
                raise CaptureError(
                    f"connection '{self.conn.name}': stream(s) "
                    f"{', '.join(sorted(set(names) - set(pos.streams)))} have no snapshot yet",
                    f"take a new snapshot of the connection: `fleuve sync {self.conn.name} "
                    "--full-refresh`",
                )
            if pos is None or full_refresh:
                pos = self._snapshot(names, stats)
            self._check_position(db, pos)
        finally:
            db.close()
        self._stream(pos, stats, stop=stop, until_caught_up=until_caught_up)
        db = self._connect()
        try:
            file, offset = self._master(db)
        finally:
            db.close()
        landed = json.loads(pos.resume)
        if stats.position:
            landed["file"], _, landed["pos"] = stats.position.rpartition(":")
        if landed["file"] == file:  # across files the log's sizes would have to be summed
            stats.lag_bytes = max(0, offset - int(landed["pos"]))
        return stats

    def _check_position(self, db: pymysql.Connection, pos: Position) -> None:
        file = json.loads(pos.resume)["file"]
        logs = [str(r[0]) for r in self._rows(db, "SHOW BINARY LOGS")]
        if file not in logs:
            raise PositionLost(
                f"connection '{self.conn.name}': the server no longer has binary log {file}; "
                "the changes since the lake's position cannot be read any more",
                f"take a new snapshot: `fleuve sync {self.conn.name} --full-refresh`, and keep "
                "binary logs longer (binlog_expire_logs_seconds)",
            )

    # -- snapshot ---------------------------------------------------------------------

    def _snapshot(self, names: list[str], stats: CaptureStats) -> Position:
        """Read every table in one consistent-snapshot transaction whose binlog position is
        known, and commit the rows with that position in one lake transaction."""
        db = self._connect(cursorclass=pymysql.cursors.SSCursor)
        try:
            with db.cursor() as cur:
                cur.execute("SET SESSION time_zone = '+00:00'")
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                # MariaDB tells the binlog position of the snapshot without a lock.
                cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
                status = {k.lower(): v for k, v in cur.fetchall()}
                if status.get("binlog_snapshot_file"):
                    file = str(status["binlog_snapshot_file"])
                    offset = int(status["binlog_snapshot_position"])
                else:  # MySQL: hold writes for the instant the snapshot and position are taken
                    cur.execute("ROLLBACK")
                    cur.execute("FLUSH TABLES WITH READ LOCK")
                    try:
                        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                        cur.execute("SHOW MASTER STATUS")
                        row = cur.fetchone()
                        file, offset = str(row[0]), int(row[1])
                    finally:
                        cur.execute("UNLOCK TABLES")
                cur.execute("SELECT UTC_TIMESTAMP(6)")
                (taken_at,) = cur.fetchone()
            taken_at = taken_at.replace(tzinfo=UTC)
            for t in self.tables.values():
                self._describe(db, t)
            position = Position(
                number(file, offset),
                json.dumps({"file": file, "pos": offset}),
                streams=names,
            )
            calls = 0

            def work(con: Any) -> int:
                nonlocal calls
                calls += 1
                if calls > 1:
                    raise CaptureError(
                        f"connection '{self.conn.name}': another writer changed bronze while the "
                        "snapshot was landing",
                        "sync again: a new snapshot is taken",
                    )
                rows = 0
                for t in self.tables.values():
                    assert t.shape is not None
                    changes.create_stream_tables(con, self.conn.name, t.destination, t.shape)
                    rows += self._copy_into(con, db, t, taken_at)
                changes.write_position(con, self.conn.name, SOURCE, position)
                return rows

            stats.snapshot_rows = self.lake.commit(
                work, what=f"snapshot of {self.conn.name}", creates=True
            )
        finally:
            with contextlib.suppress(Exception):
                db.close()
        log.info(
            "change capture snapshot",
            extra={"connection_id": self.conn.name, "position": position.resume},
        )
        return position

    def _copy_into(self, con: Any, db: pymysql.Connection, t: _Table, taken_at: datetime) -> int:
        """Stream one table's rows into its change table as 'snapshot' rows, in chunks."""
        assert t.shape is not None and t.kinds is not None
        cols = ", ".join("`" + n.replace("`", "``") + "`" for n in t.names)
        kinds = t.kinds
        total = 0
        with db.cursor() as cur:
            cur.execute(f"SELECT {cols} FROM `{t.schema}`.`{t.table}`")
            while True:
                rows = cur.fetchmany(20_000)
                if not rows:
                    return total
                segment = changes.Segment(t.shape)
                for row in rows:
                    segment.add(
                        "snapshot",
                        0,
                        0,
                        taken_at,
                        [text(v, k) for v, k in zip(row, kinds, strict=True)],
                    )
                total += changes.insert_segment(con, t.destination, segment, cast_mysql)

    # -- streaming --------------------------------------------------------------------

    def _stream(
        self,
        pos: Position,
        stats: CaptureStats,
        *,
        stop: Callable[[], bool],
        until_caught_up: bool,
    ) -> None:
        resume = json.loads(pos.resume)
        # By file and offset, MariaDB as well (is_mariadb would resume by GTID instead).
        reader = BinLogStreamReader(
            connection_settings=dict(self.params),  # the reader adds its own keys to it
            server_id=self.server_id,
            resume_stream=True,
            log_file=resume["file"],
            log_pos=int(resume["pos"]),
            blocking=not until_caught_up,
            slave_heartbeat=None if until_caught_up else 0.5,
            only_events=[
                MariadbGtidEvent,
                GtidEvent,
                QueryEvent,
                XidEvent,
                RotateEvent,
                HeartbeatLogEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
            ],
        )
        try:
            _BinlogStreamer(self, reader, pos, stats, stop).run()
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1236:
                raise PositionLost(
                    f"connection '{self.conn.name}': the server cannot send its binary log from "
                    f"{resume['file']}:{resume['pos']}: {exc.args[-1]}",
                    f"take a new snapshot: `fleuve sync {self.conn.name} --full-refresh`",
                ) from None
            raise SourceUnavailable(
                f"connection '{self.conn.name}': the binary log stream broke: {exc.args[-1]}",
                "check that the server is running",
            ) from None
        finally:
            reader.close()

    def land(self, batch: Batch, pos: Position) -> None:
        """Commit a micro-batch and the position after it in one lake transaction."""
        changes.land(self.lake, self.conn.name, SOURCE, batch, pos, cast_mysql)

    def shape_for(self, t: _Table, columns: tuple[str, ...]) -> Shape:
        """The table's layout for rows with these columns (asked again after a DDL)."""
        if columns != t.names:
            db = self._connect()
            try:
                self._describe(db, t)
            finally:
                db.close()
            if columns != t.names:
                raise CaptureError(
                    f"stream '{t.stream.name}': the binlog's columns {list(columns)} differ from "
                    f"the table's {list(t.names)}",
                    "set binlog_row_metadata = FULL on the server, then take a new snapshot",
                )
        assert t.shape is not None
        return t.shape


class _BinlogStreamer:
    """One binlog stream: group row events into transactions, land micro-batches."""

    def __init__(
        self,
        capture: MySQLCapture,
        reader: BinLogStreamReader,
        pos: Position,
        stats: CaptureStats,
        stop: Callable[[], bool],
    ) -> None:
        self.capture, self.reader, self.stats, self.stop = capture, reader, stats, stop
        self.committed = pos
        self.reached = pos.lsn
        self.resume = pos.resume
        self.batch = Batch()
        self.txn: list[Any] | None = None  # [lsn, committed_at, seq, skip]
        self.oldest: float | None = None
        self.last_commit = time.monotonic()

    def here(self) -> tuple[int, str]:
        """The position after the last event read."""
        file, offset = self.reader.log_file, self.reader.log_pos
        return number(file, offset), json.dumps({"file": file, "pos": offset})

    def run(self) -> None:
        for event in self.reader:
            if isinstance(event, HeartbeatLogEvent):
                self.advance(force=False)
            else:
                self.on_event(event)
            now = time.monotonic()
            if self.batch.rows >= self.capture.flush_rows or (
                self.oldest is not None and now - self.oldest >= self.capture.flush_seconds
            ):
                self.flush()
            if self.stop():
                break
        if self.txn is None:
            self.flush()
            self.advance(force=True)
        else:
            self.flush()

    def on_event(self, event: Any) -> None:
        if isinstance(event, WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent):
            txn = self.txn
            t = self.capture.tables.get((event.schema, event.table))
            if txn is None or txn[3] or t is None:
                return
            columns = tuple(c.name for c in event.columns)
            shape = self.capture.shape_for(t, columns)
            kinds = t.kinds or []
            for row in event.rows:
                if isinstance(event, UpdateRowsEvent):
                    before = [
                        text(row["before_values"][c], k)
                        for c, k in zip(columns, kinds, strict=True)
                    ]
                    after = [
                        text(row["after_values"][c], k) for c, k in zip(columns, kinds, strict=True)
                    ]
                    positions = [shape.names.index(k) for k in shape.key]
                    if any(before[i] != after[i] for i in positions):
                        self.row(t, shape, "delete", before)
                    self.row(t, shape, "update", after)
                else:
                    values = [
                        text(row["values"][c], k) for c, k in zip(columns, kinds, strict=True)
                    ]
                    op = "insert" if isinstance(event, WriteRowsEvent) else "delete"
                    self.row(t, shape, op, values)
        elif isinstance(event, MariadbGtidEvent | GtidEvent):
            lsn, _ = self.here()
            at = datetime.fromtimestamp(event.timestamp, UTC)
            self.txn = [lsn, at, 0, lsn < self.committed.lsn]
        elif isinstance(event, XidEvent):
            self.commit()
        elif isinstance(event, QueryEvent):
            query = event.query.strip().upper()
            if query == "BEGIN":
                if self.txn is None:
                    lsn, _ = self.here()
                    at = datetime.fromtimestamp(event.timestamp, UTC)
                    self.txn = [lsn, at, 0, lsn < self.committed.lsn]
                return
            if query.startswith("TRUNCATE") and self.txn is not None and not self.txn[3]:
                target = re.sub(r"^TRUNCATE\s+(TABLE\s+)?", "", event.query.strip(), flags=re.I)
                name = target.strip().strip(";").replace("`", "")
                schema, _, table = name.rpartition(".")
                current = event.schema
                current = current.decode() if isinstance(current, bytes) else current
                t = self.capture.tables.get((schema or current, table))
                if t is not None and t.shape is not None:
                    self.row(t, t.shape, "truncate", None)
            # DDL commits by itself; so does COMMIT of a non-transactional table's changes.
            self.commit()

    def row(self, t: _Table, shape: Shape, op: str, values: list[Any] | None) -> None:
        txn = self.txn
        assert txn is not None
        txn[2] += 1
        if txn[0] == self.committed.partial_lsn and txn[2] <= self.committed.partial_seq:
            return
        self.batch.segment(t.destination, shape).add(op, txn[0], txn[2], txn[1], values)
        self.batch.rows += 1
        if self.oldest is None:
            self.oldest = time.monotonic()

    def commit(self) -> None:
        txn, self.txn = self.txn, None
        self.reached, self.resume = self.here()
        if txn is not None and not txn[3]:
            self.stats.transactions += 1
            if txn[0] == self.committed.partial_lsn and self.oldest is None:
                self.oldest = time.monotonic()

    def flush(self) -> None:
        """Land the batch: complete transactions, and the part of an open one read so far."""
        txn = self.txn
        if not self.batch.rows and (txn is not None or self.committed.partial_lsn is None):
            return
        pos = Position(
            self.reached,
            self.resume,
            partial_lsn=txn[0] if txn is not None and not txn[3] and txn[2] else None,
            partial_seq=txn[2] if txn is not None and not txn[3] else 0,
            streams=self.committed.streams,
        )
        self.capture.land(self.batch, pos)
        self.stats.changes += self.batch.rows
        self.stats.commits += 1
        self.batch.clear()
        self.oldest = None
        self.committed = pos
        self.last_commit = time.monotonic()
        self.stats.position = shown(pos.resume)

    def advance(self, *, force: bool) -> None:
        """With nothing buffered, move the committed position to the end of what was read."""
        # At the end of a one-shot read every event before the reader's position is seen;
        # while streaming, the end of the last transaction is.
        lsn, resume = self.here() if force else (self.reached, self.resume)
        if lsn <= self.committed.lsn or self.txn is not None or self.batch.rows:
            return
        if not force and time.monotonic() - self.last_commit < self.capture.idle_confirm_seconds:
            return
        pos = Position(lsn, resume, streams=self.committed.streams)
        self.capture.lake.commit(
            lambda con: changes.write_position(con, self.capture.conn.name, SOURCE, pos),
            what=f"position of {self.capture.conn.name}",
        )
        self.reached, self.resume = lsn, resume
        self.committed = pos
        self.last_commit = time.monotonic()
        self.stats.position = shown(resume)
