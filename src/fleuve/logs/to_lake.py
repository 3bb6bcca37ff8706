"""Log records into the lake's `logs` layer: `logs.records`, partitioned by service and day, zstd.

A `LakeLogHandler` never blocks the code that logs: `emit` appends to a buffer, and one
background thread writes the buffer in one lake transaction every few seconds or as soon as
it holds `flush_records` records. A clean stop (`close`, or the process exiting) writes what is
buffered; a crash loses at most the last buffer. Records the writer itself causes (a lake
commit conflict it retries, say) go to the local file only, so that writing never feeds itself.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleuve.logs.local import scrub

if TYPE_CHECKING:
    from fleuve.config import LakeLogSettings
    from fleuve.lake import Lake

log = logging.getLogger("fleuve.observe")

TABLE = "logs.records"
SERVICES = ("ingestion", "engine", "transform", "serve", "scheduler", "platform")
# The service a logger's records belong to, by the second part of its name (fleuve.<part>...).
_SERVICE_OF = {
    "ingest": "ingestion",
    "engine": "engine",
    "lake": "engine",
    "transform": "transform",
    "serve": "serve",
    "security": "serve",
    "observe": "serve",
    "schedule": "scheduler",
    "pipeline": "scheduler",
}
# Columns of logs.records in order, with their DuckDB types; other fields go to `fields` (JSON).
COLUMNS = {
    "id": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "level": "VARCHAR",
    "service": "VARCHAR",
    "message": "VARCHAR",
    "logger": "VARCHAR",
    "job_id": "VARCHAR",
    "connection_id": "VARCHAR",
    "records_synced": "BIGINT",
    "bytes_synced": "BIGINT",
    "user": "VARCHAR",
    "query_id": "VARCHAR",
    "host": "VARCHAR",
    "pid": "INTEGER",
    "error": "VARCHAR",
    "fields": "VARCHAR",
}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "service",
}
# Other names the same facts go by in Fleuve's log calls.
_ALIASES = {"username": "user", "query_job": "query_id", "bytes": "bytes_synced"}
BUFFER_LIMIT = 100_000  # past it the oldest buffered records go (a lake down for long)
PURGE_EVERY = timedelta(hours=24)


def service_of(record: logging.LogRecord) -> str:
    """The service a record belongs to: its `service` extra, else its logger's part of Fleuve."""
    named = getattr(record, "service", None)
    if isinstance(named, str) and named:
        return named
    parts = record.name.split(".")
    return _SERVICE_OF.get(parts[1], "platform") if len(parts) > 1 else "platform"


def to_row(record: logging.LogRecord, host: str, pid: int) -> dict[str, Any]:
    """The columns of one record, every text masked of credentials."""
    row: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "timestamp": datetime.fromtimestamp(record.created, UTC).replace(tzinfo=None),
        "level": record.levelname,
        "service": service_of(record),
        "message": scrub(record.getMessage()),
        "logger": record.name,
        "host": host,
        "pid": pid,
    }
    extra: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD:
            continue
        name = _ALIASES.get(key, key)
        if name in ("job_id", "connection_id", "user", "query_id") and value is not None:
            row[name] = scrub(str(value))
        elif name in ("records_synced", "bytes_synced") and isinstance(value, int):
            row[name] = value
        elif name == "error" and value is not None:
            row["error"] = scrub(str(value))
        elif name not in COLUMNS:
            extra[name] = scrub(value) if isinstance(value, str) else value
    if record.exc_info and "error" not in row:
        row["error"] = scrub(logging.Formatter().formatException(record.exc_info))
    if extra:
        row["fields"] = json.dumps(extra, default=str, ensure_ascii=False)
    return row


def ensure_table(lake: Lake) -> None:
    """Create logs.records, partitioned by service and day (idempotent)."""
    if lake.table_exists(TABLE):
        return
    columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items())
    lake.commit(
        lambda c: c.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})"),
        what="create logs.records",
        creates=True,
    )
    lake.partition_for_layer(TABLE, "timestamp", by=["service"])


def write(lake: Lake, rows: list[dict[str, Any]]) -> None:
    """Append `rows` (as `to_row` makes them) to logs.records in one transaction."""
    import pyarrow as pa

    batch = pa.Table.from_pylist(
        [{name: row.get(name) for name in COLUMNS} for row in rows], schema=_arrow_schema()
    )

    def insert(con: Any) -> None:
        con.register("fleuve_log_batch", batch)
        try:
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM fleuve_log_batch")
        finally:
            con.unregister("fleuve_log_batch")

    lake.commit(insert, what="write log records")


def purge(lake: Lake, retention_days: int) -> int:
    """Delete the records of days past retention; returns how many went."""
    if not lake.table_exists(TABLE):
        return 0
    cutoff = (datetime.now(UTC) - timedelta(days=retention_days)).replace(tzinfo=None)
    # Whole days go, so that a day's partition files are dropped rather than rewritten.
    day = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    return lake.commit(
        lambda c: c.execute(f"DELETE FROM {TABLE} WHERE timestamp < ?", [day]).fetchall()[0][0],
        what="purge log records",
    )


def _arrow_schema() -> Any:
    import pyarrow as pa

    kinds = {
        "VARCHAR": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
    }
    return pa.schema([(name, kinds[kind]) for name, kind in COLUMNS.items()])


class LakeLogHandler(logging.Handler):
    """Buffers log records and writes them into logs.records from one background thread."""

    def __init__(self, lake: Callable[[], Lake], settings: LakeLogSettings) -> None:
        super().__init__()
        # pyarrow's first conversion imports more modules; done here, by the caller's thread:
        # an import from the writer's thread fails once the interpreter is shutting down,
        # which is when the last buffer is written.
        import pyarrow as pa

        pa.Table.from_pylist([], schema=_arrow_schema())

        self._lake = lake
        self.settings = settings
        self._buffer: collections.deque[dict[str, Any]] = collections.deque(maxlen=BUFFER_LIMIT)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._host, self._pid = socket.gethostname(), os.getpid()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="fleuve-lake-logs", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the record (never waits on the lake)."""
        if record.thread == self._thread.ident:
            return
        try:
            row = to_row(record, self._host, self._pid)
        except Exception:
            self.handleError(record)
            return
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(row)
        if len(self._buffer) >= self.settings.flush_records:
            self._wake.set()

    def flush(self) -> None:
        """Ask the writer to write what is buffered now (it does so without the caller waiting)."""
        self._wake.set()

    def close(self) -> None:
        """Write what is buffered, then stop the writer (idempotent)."""
        if not self._stopping.is_set():
            self._stopping.set()
            self._wake.set()
            self._thread.join(timeout=30)
            atexit.unregister(self.close)
        super().close()

    def _run(self) -> None:
        purged_at: datetime | None = None
        while True:
            self._wake.wait(self.settings.flush_seconds)
            self._wake.clear()
            stopping = self._stopping.is_set()
            self._write_buffer()
            if purged_at is None or datetime.now(UTC) - purged_at >= PURGE_EVERY:
                purged_at = datetime.now(UTC)
                try:
                    purge(self._lake(), self.settings.retention_days)
                except Exception:
                    log.exception("could not delete log records past retention")
            if stopping:
                return

    def _write_buffer(self) -> None:
        while self._buffer:
            rows: list[dict[str, Any]] = []
            while self._buffer and len(rows) < 50_000:
                rows.append(self._buffer.popleft())
            try:
                lake = self._lake()
                ensure_table(lake)
                write(lake, rows)
            except Exception:
                # Put back: the next pass tries again (the buffer's bound keeps memory in check).
                self._buffer.extendleft(reversed(rows))
                log.exception("could not write %d log records into the lake", len(rows))
                return


def attach(lake: Callable[[], Lake], settings: LakeLogSettings) -> LakeLogHandler | None:
    """Send the `fleuve` loggers' records into the lake too (when `observe.logs.lake` is on)."""
    if not settings.lake:
        return None
    root = logging.getLogger("fleuve")
    for handler in root.handlers:
        if isinstance(handler, LakeLogHandler):
            root.removeHandler(handler)
            handler.close()
    handler = LakeLogHandler(lake, settings)
    root.addHandler(handler)
    return handler


def detach(handler: LakeLogHandler | None) -> None:
    """Stop sending records to the lake, writing what is buffered."""
    if handler is not None:
        logging.getLogger("fleuve").removeHandler(handler)
        handler.close()
