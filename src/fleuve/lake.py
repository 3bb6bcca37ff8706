"""The lake: DuckDB sessions with offline extensions and the DuckLake catalog attached.

Every managed table lives in DuckLake under one of the layer schemas. The catalog is a
SQLite file (embedded) or a PostgreSQL database (production); the Parquet files live in
a local folder or an S3-compatible bucket.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import duckdb

from fleuve.config import Settings, redact_dsn
from fleuve.errors import FleuveError, LakeUnavailable
from fleuve.private import private_database

if TYPE_CHECKING:
    # DuckDB loads pyarrow itself when a result is read as Arrow; commands that never do
    # (dbt runs, syncs) skip its import.
    import pyarrow as pa

log = logging.getLogger("fleuve.lake")

DUCKDB_VERSION = "v1.5.5"
CATALOG = "lake"
T = TypeVar("T")

# Extension wheels ship `<name>.duckdb_extension`; DuckDB looks them up by canonical name.
_CANONICAL = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner", "mysql": "mysql_scanner"}


@dataclass(frozen=True)
class Layer:
    """How one layer of the lake writes its Parquet files."""

    schema: str
    compression: str
    partitioning: str
    # Rows per Parquet row group; None keeps DuckDB's 122,880.
    row_group_rows: int | None = None
    # Parquet format version: 2 brings delta and byte-stream-split encodings and v2 pages.
    parquet_version: int = 1


LAYERS: dict[str, Layer] = {
    # With row groups of 65,536 rows instead of DuckDB's 122,880, its partitioned write of
    # ingested rows takes 8% less CPU, for files of the same size; Parquet 2 makes the files of
    # a PostgreSQL table 37% smaller, their write 6% faster and DuckDB's scans of them 1.5-2x
    # faster (`docs/benchmarks.md`). Every reader of the lake goes through DuckDB, which reads it.
    "bronze": Layer("bronze", "snappy", "ingestion date", row_group_rows=65_536, parquet_version=2),
    "silver": Layer("silver", "snappy", "business key where useful"),
    "gold": Layer("gold", "zstd", "time period"),
    "logs": Layer("logs", "zstd", "service and date"),
}

# What DuckDB, DuckLake and the catalogs' databases say when another writer committed first or
# held the catalog. Narrower than any error mentioning a "conflict": a real error retried ten
# times would only make the user wait for the same failure. `tests/lake/test_lost_race.py`
# raises each of them for real.
_LOST_RACE = (
    "database is locked",  # a SQLite catalog another session writes to
    "failed to commit ducklake transaction",  # DuckLake's commit, its own retries spent
    "transaction conflict",  # DuckLake: the table changed since this transaction began
    "write-write conflict",  # DuckDB's catalog: two sessions created or altered one table
    "conflict on tuple deletion",  # DuckDB: two sessions deleted the same rows
    "conflict on update",  # DuckDB: two sessions updated the same rows
    "could not serialize access",  # a PostgreSQL catalog
    "deadlock detected",  # a PostgreSQL catalog
)


@dataclass(frozen=True)
class Maintenance:
    """What one maintenance pass did."""

    expired_snapshots: int
    deleted_files: int
    snapshot: int

    def summary(self) -> str:
        """One line for the pipeline's report."""
        return (
            f"expired {self.expired_snapshots} snapshots, deleted {self.deleted_files} files, "
            f"snapshot {self.snapshot}"
        )


@dataclass(frozen=True)
class Snapshot:
    """One committed version of the lake."""

    snapshot_id: int
    time: datetime
    schema_version: int
    changes: dict[str, Any]
    author: str | None
    message: str | None


@functools.cache
def extension_dir() -> Path:
    """A folder DuckDB can load every pinned extension from, without network access.

    Made once per process (cached: threads of a server call it at once), on a private
    connection, as DuckDB's shared default connection is not safe to use from several threads.
    """
    target = Path(sys.prefix) / "var" / "fleuve" / "duckdb_extensions"
    with duckdb.connect() as con:
        platform = con.execute("PRAGMA platform").fetchall()[0][0]
    folder = target / DUCKDB_VERSION / platform
    folder.mkdir(parents=True, exist_ok=True)
    site = Path(duckdb.__file__).resolve().parent.parent
    for wheel_file in site.glob(
        f"duckdb_extension_*/extensions/{DUCKDB_VERSION}/*.duckdb_extension"
    ):
        name = wheel_file.name.removesuffix(".duckdb_extension")
        link = folder / f"{_CANONICAL.get(name, name)}.duckdb_extension"
        if not link.exists() or link.resolve() != wheel_file.resolve():
            # Replaced atomically: another process may be making the same link right now.
            staged = folder / f".{link.name}.{os.getpid()}.{threading.get_ident()}"
            staged.unlink(missing_ok=True)
            staged.symlink_to(wheel_file)
            os.replace(staged, link)
    return target


def duckdb_config() -> dict[str, Any]:
    """Connection options that make DuckDB load extensions offline (also used by dbt)."""
    return {"extension_directory": str(extension_dir()), "autoinstall_known_extensions": False}


def connect_duckdb(database: str = ":memory:", **config: Any) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that loads extensions from the installed wheels only."""
    return duckdb.connect(database, config={**duckdb_config(), **config})


def lost_race(error: BaseException | str | None) -> bool:
    """True when `error` (an exception or its message) says another lake writer won the race.

    Lake commits, ingestion's retries of a stream and dbt's resumed runs all decide with it.
    """
    text = str(error or "").lower()
    return any(marker in text for marker in _LOST_RACE)


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class Lake:
    """Opens DuckDB sessions on the lake and commits into it safely.

    One `Lake` serves one process; `connect()` gives each thread its own cursor on a shared
    database instance so that the catalog is attached once.
    """

    def __init__(self, settings: Settings, *, create: bool = True) -> None:
        self.settings = settings
        self.create = create
        self._db: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        # Held by a transaction that creates a table (`commit(creates=True)`): DuckLake (DuckDB
        # 1.5.5) fails such commits ("Table entry ... does not have any columns"), loses a
        # table or crashes when two transactions of one database instance create tables at once.
        self._creating = threading.Lock()
        # The session of the transaction each thread is committing, for `interrupt`.
        self._committing: dict[int, duckdb.DuckDBPyConnection] = {}

    def __repr__(self) -> str:
        return f"Lake(catalog={redact_dsn(self.settings.lake_catalog)!r}, data={self.settings.lake_data_path!r})"

    # -- sessions ---------------------------------------------------------------------

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the lake (`USE lake` applied), opened on first use."""
        with self._lock:
            if self._db is None:
                self._db = self._open()
        cur = self._db.cursor()
        cur.execute(f"USE {CATALOG}")
        return cur

    def close(self) -> None:
        """Detach the lake and close the database."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        lake = self.settings.lake
        self._check_catalog_exists()
        con = connect_duckdb()
        timeout = max(1, int(lake.connect_timeout_seconds))
        con.execute(f"SET http_timeout = {timeout}")
        con.execute(f"SET ducklake_max_retry_count = {lake.commit_retries}")
        if lake.on_s3:
            self._create_s3_secret(con)
            # One try within the timeout: an unreachable bucket fails fast instead of retrying.
            con.execute("SET http_retries = 0")
            self._check_bucket(con)
            con.execute("SET http_retries = 3")
        options = [f"DATA_PATH {quote_literal(self.settings.lake_data_path)}"]
        if lake.catalog_schema:
            options.append(f"METADATA_SCHEMA {quote_literal(lake.catalog_schema)}")
        if self.settings.lake_catalog.startswith("sqlite:"):
            # WAL lets an open read (a cursor mid-result) coexist with another session's commit;
            # the busy timeout makes writers wait for each other instead of failing at once.
            options += ["META_JOURNAL_MODE 'wal'", "META_BUSY_TIMEOUT 5000"]
        if not self.create:
            options.append("CREATE_IF_NOT_EXISTS false")
        target = quote_literal(f"ducklake:{self._catalog_dsn()}")
        started = time.monotonic()
        try:
            _retry_conflicts(
                lambda: con.execute(f"ATTACH {target} AS {CATALOG} ({', '.join(options)})"),
                what="attach",
                retries=lake.commit_retries,
            )
        except duckdb.Error as exc:
            con.close()
            raise self._unavailable(exc, time.monotonic() - started) from None
        return con

    def _catalog_dsn(self) -> str:
        """The catalog as DuckLake expects it, with a connect timeout for PostgreSQL."""
        cat = self.settings.lake_catalog
        if cat.startswith("sqlite:"):
            path = Path(cat.removeprefix("sqlite:"))
            path.parent.mkdir(parents=True, exist_ok=True)
            if self.create or path.exists():
                private_database(path)  # mode 0600 from the start, as the metadata database
            return f"sqlite:{path}"
        parts = urlsplit(cat.replace("postgres://", "postgresql://", 1))
        query = dict(parse_qsl(parts.query))
        query.setdefault(
            "connect_timeout", str(max(1, int(self.settings.lake.connect_timeout_seconds)))
        )
        return "postgres:" + urlunsplit(parts._replace(query=urlencode(query)))

    def _check_catalog_exists(self) -> None:
        cat = self.settings.lake_catalog
        if self.create or not cat.startswith("sqlite:"):
            return
        path = Path(cat.removeprefix("sqlite:"))
        if not path.exists():
            raise LakeUnavailable(
                f"no lake catalog at {path}",
                f"run `fleuve init {self.settings.project_dir}` to create the project's lake, "
                "or point lake.catalog at an existing catalog",
            )

    def _unavailable(self, exc: BaseException, elapsed: float) -> LakeUnavailable:
        dsn = redact_dsn(self.settings.lake_catalog)
        text = redact_dsn(_one_line(exc))
        if "does not exist" in text and "database" in text:
            fix = "create the database (e.g. `createdb <name>`) or fix lake.catalog"
        elif (
            "timeout" in text.lower() or "could not connect" in text or "Connection refused" in text
        ):
            fix = "check that the catalog server is running and reachable, or fix lake.catalog"
        else:
            fix = "check lake.catalog and lake.data_path in fleuve.yml"
        return LakeUnavailable(
            f"cannot open the lake catalog {dsn} (after {elapsed:.1f}s): {text}", fix
        )

    def _create_s3_secret(self, con: duckdb.DuckDBPyConnection) -> None:
        s3 = self.settings.lake.s3
        bucket = self.settings.lake_data_path.removeprefix("s3://").split("/", 1)[0]
        fields = {
            "TYPE": "s3",
            "REGION": s3.region,
            "URL_STYLE": s3.url_style,
            "USE_SSL": "true" if s3.use_ssl else "false",
            "SCOPE": f"s3://{bucket}",
        }
        if s3.endpoint:
            fields["ENDPOINT"] = s3.endpoint.removeprefix("http://").removeprefix("https://")
        if s3.access_key_id:
            fields["KEY_ID"] = s3.access_key_id
        if s3.secret_access_key:
            fields["SECRET"] = s3.secret_access_key.get_secret_value()
        body = ", ".join(
            f"{k} {v}" if k in ("TYPE", "USE_SSL") else f"{k} {quote_literal(v)}"
            for k, v in fields.items()
        )
        con.execute(f"CREATE OR REPLACE SECRET fleuve_lake_s3 ({body})")

    def _check_bucket(self, con: duckdb.DuckDBPyConnection) -> None:
        """Fail fast, naming the problem, when the bucket is unreachable or refuses our keys."""
        path = self.settings.lake_data_path
        started = time.monotonic()
        try:
            con.execute(f"SELECT count(*) FROM glob({quote_literal(path + '*')})").fetchone()
        except duckdb.Error as exc:
            text = _one_line(exc)
            lowered = text.lower()
            if (
                "403" in text
                or "forbidden" in lowered
                or "signature" in lowered
                or "accessdenied" in lowered
            ):
                fix = "check lake.s3.access_key_id and lake.s3.secret_access_key"
            elif "404" in text or "nosuchbucket" in lowered:
                fix = "create the bucket or fix lake.data_path"
            else:
                fix = "check that lake.s3.endpoint is reachable and lake.s3.use_ssl matches it"
            raise LakeUnavailable(
                f"cannot reach the lake bucket {path} (after {time.monotonic() - started:.1f}s): {text}",
                fix,
            ) from None

    # -- layout -----------------------------------------------------------------------

    def bootstrap(self) -> None:
        """Create the layer schemas and set their Parquet options (idempotent)."""
        existing = {
            r[0]
            for r in self._rows(
                "SELECT schema_name FROM information_schema.schemata WHERE catalog_name = ?",
                [CATALOG],
            )
        }
        for layer in LAYERS.values():
            if layer.schema not in existing:
                self.commit(
                    methodcaller("execute", f"CREATE SCHEMA IF NOT EXISTS {layer.schema}"),
                    what=f"create schema {layer.schema}",
                )
        current = {
            (r[0], r[1]): r[2]
            for r in self._rows(
                f"SELECT option_name, scope_entry, value FROM {CATALOG}.options() WHERE scope = 'SCHEMA'"
            )
        }
        for layer in LAYERS.values():
            wanted = {"parquet_compression": layer.compression}
            if layer.row_group_rows is not None:
                wanted["parquet_row_group_size"] = str(layer.row_group_rows)
            if layer.parquet_version != 1:
                wanted["parquet_version"] = str(layer.parquet_version)
            for option, value in wanted.items():
                # DuckLake answers a parquet_version of 2 as 'V2'.
                if (current.get((option, layer.schema)) or "").removeprefix("V") != value:
                    self._rows(
                        f"CALL {CATALOG}.set_option(?, ?, schema => ?)",
                        [option, value, layer.schema],
                    )

    def partition(self, table: str, expressions: list[str]) -> None:
        """Partition `table` (schema.name) by DuckLake transforms such as `year(order_date)`."""
        if expressions:
            self.commit(
                lambda c: c.execute(
                    f"ALTER TABLE {table} SET PARTITIONED BY ({', '.join(expressions)})"
                ),
                what=f"partition {table}",
            )

    def partition_for_layer(
        self, table: str, time_column: str, *, by: list[str] | None = None
    ) -> None:
        """Apply the layer's partitioning rule to `table`, keyed on `time_column`."""
        schema = table.split(".")[0]
        col = quote_ident(time_column)
        days = [f"year({col})", f"month({col})", f"day({col})"]
        if schema == "gold":
            exprs = [f"year({col})", f"month({col})"]
        elif schema == "logs":
            exprs = [*(by or ["service"]), *days]
        else:
            exprs = [*(by or []), *days]
        self.partition(table, exprs)

    # -- writes -----------------------------------------------------------------------

    def commit(
        self,
        work: Callable[[duckdb.DuckDBPyConnection], T],
        *,
        what: str = "commit",
        creates: bool = False,
    ) -> T:
        """Run `work` in one lake transaction, retrying with bounded backoff on conflicts.

        `creates`: `work` may create a table, so it runs alone among such transactions of this
        process.
        """
        with self._creating if creates else contextlib.nullcontext(), self.session() as con:

            def attempt() -> T:
                con.execute("BEGIN TRANSACTION")
                try:
                    result = work(con)
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
                return result

            thread = threading.get_ident()
            outer = self._committing.get(thread)
            self._committing[thread] = con
            try:
                return _retry_conflicts(
                    attempt, what=what, retries=self.settings.lake.commit_retries
                )
            finally:
                if outer is None:
                    self._committing.pop(thread, None)
                else:
                    self._committing[thread] = outer

    def interrupt(self, thread: int) -> bool:
        """Stop the statement of the transaction thread `thread` is committing: its `commit`
        fails and rolls back. False when that thread commits nothing now."""
        con = self._committing.get(thread)
        if con is None:
            return False
        with contextlib.suppress(duckdb.Error):  # the transaction ended meanwhile
            con.interrupt()
        return True

    def maintain(self, *, keep_from: int | None = None) -> Maintenance:
        """Compact small files, expire snapshots past retention, delete files nobody references.

        Orphaned Parquet files (written by a sync killed before its commit) go once a day old.
        Snapshots at or after `keep_from` survive whatever their age (reflections built from
        them read the change feed from there). Files are deleted an hour after their last
        snapshot expired, so a long query still reading them is not cut short.
        """
        lake = f"'{CATALOG}'"
        self.commit(
            lambda c: c.execute(f"CALL ducklake_flush_inlined_data({lake})"),
            what="flush inlined data",
        )
        self.commit(
            lambda c: c.execute(f"CALL ducklake_merge_adjacent_files({lake})"),
            what="merge adjacent files",
        )
        expired = 0
        days = self.settings.lake.snapshot_retention_days
        if days is not None:
            current = self.current_snapshot()
            old = [
                sid
                for (sid,) in self._rows(
                    f"SELECT snapshot_id FROM {CATALOG}.snapshots() "
                    f"WHERE snapshot_time < now() - to_seconds(?::DOUBLE) AND snapshot_id < ?",
                    [days * 86400, min(current, keep_from if keep_from is not None else current)],
                )
            ]
            if old:
                self.commit(
                    lambda c: c.execute(
                        f"CALL ducklake_expire_snapshots({lake}, versions => {old!r})"
                    ).fetchall(),
                    what="expire snapshots",
                )
                expired = len(old)
        deleted = self.commit(
            lambda c: len(
                c.execute(
                    f"CALL ducklake_cleanup_old_files({lake}, older_than => now() - INTERVAL 1 HOUR)"
                ).fetchall()
            ),
            what="delete unreferenced files",
        )
        # Parquet files no snapshot ever referenced: left by writers killed before their commit.
        # A day old at least, so that files of a sync still running are never taken.
        deleted += self.commit(
            lambda c: len(
                c.execute(
                    f"CALL ducklake_delete_orphaned_files({lake}, older_than => now() - INTERVAL 1 DAY)"
                ).fetchall()
            ),
            what="delete orphaned files",
        )
        log.info("lake maintained", extra={"expired_snapshots": expired, "deleted_files": deleted})
        return Maintenance(expired, deleted, self.current_snapshot())

    # -- reads ------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run a read query on the lake and return an Arrow table."""
        with self.session() as cur:
            return cur.execute(sql, params or []).to_arrow_table()

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Every row of `sql`, fetched and the cursor closed (no read left open on the catalog)."""
        with self.session() as cur:
            return cur.execute(sql, params or []).fetchall()

    def snapshots(self) -> list[Snapshot]:
        """Every committed snapshot, oldest first."""
        rows = self._rows(
            f"SELECT snapshot_id, snapshot_time, schema_version, changes, author, commit_message "
            f"FROM {CATALOG}.snapshots() ORDER BY snapshot_id"
        )
        return [Snapshot(*row) for row in rows]

    def current_snapshot(self) -> int:
        """The id of the latest snapshot."""
        return self._rows(f"FROM {CATALOG}.current_snapshot()")[0][0]

    def read_at(self, table: str, version: int, sql_columns: str = "*") -> pa.Table:
        """The rows of `table` as they were at snapshot `version` (time travel)."""
        try:
            return self.query(f"SELECT {sql_columns} FROM {table} AT (VERSION => {int(version)})")
        except (duckdb.CatalogException, duckdb.InvalidInputException) as exc:
            # The table did not exist yet, or the snapshot was expired by maintenance.
            raise FleuveError(
                f"{table} cannot be read at snapshot {version}: {_one_line(exc)}",
                "list the snapshots kept with `fleuve lake snapshots` and pick one of them",
            ) from None

    def tables(self, schema: str | None = None) -> list[tuple[str, str]]:
        """(schema, table) pairs of the lake's tables."""
        sql = (
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?"
            + (" AND schema_name = ?" if schema else "")
            + " ORDER BY 1, 2"
        )
        return self._rows(sql, [CATALOG, *([schema] if schema else [])])

    def table_exists(self, table: str) -> bool:
        """True when schema.table exists in the lake."""
        schema, _, name = table.rpartition(".")
        return (schema or "main", name) in set(self.tables(schema or None))

    def layer_sizes(self) -> dict[str, int]:
        """Bytes of live Parquet data per layer schema."""
        rows = self._rows(
            f"SELECT s.schema_name, sum(t.file_size_bytes + t.delete_file_size_bytes) "
            f"FROM ducklake_table_info('{CATALOG}') t "
            f"JOIN {self.metadata_table('ducklake_schema')} s "
            f"ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL GROUP BY 1"
        )
        out = dict.fromkeys(LAYERS, 0)
        for schema, size in rows:
            out[schema] = int(size or 0)
        return out

    def metadata_table(self, name: str) -> str:
        """The qualified name of one of DuckLake's own catalog tables."""
        schema = self.settings.lake.catalog_schema
        return (
            f"__ducklake_metadata_{CATALOG}." + (f"{quote_ident(schema)}." if schema else "") + name
        )

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the lake, closed on exit."""
        cur = self.connect()
        try:
            yield cur
        finally:
            cur.close()


def _one_line(exc: BaseException) -> str:
    """An error's text on one line, without DuckDB's caret excerpt of the query."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    kept = []
    for line in lines:
        if line.startswith("LINE "):
            break
        if line:
            kept.append(line)
    return " ".join(kept)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # A failed COMMIT has already ended the transaction; ROLLBACK then has nothing to undo.
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _retry_conflicts(fn: Callable[[], T], *, what: str, retries: int) -> T:
    """Call `fn`, retrying when another writer committed first; bounded exponential backoff."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except (duckdb.Error, sqlite3.Error) as exc:
            if attempt >= retries or not lost_race(exc):
                raise
            delay = min(2.0, 0.02 * 2**attempt) * (0.5 + random.random())
            log.warning(
                "lake commit conflict, retrying",
                extra={
                    "what": what,
                    "attempt": attempt + 1,
                    "delay_s": round(delay, 3),
                    "error": str(exc).splitlines()[0],
                },
            )
            time.sleep(delay)
    raise AssertionError("unreachable")
