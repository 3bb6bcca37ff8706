"""How fresh the lake is: its current snapshot and what changed since a given one.

Reflections record the snapshot they were built from; every query asks whether their inputs
changed since. The answers come from DuckLake's own catalog tables (`ducklake_snapshot`,
`ducklake_snapshot_changes`, `ducklake_table`, `ducklake_schema`; part of the open DuckLake
specification).

Asking DuckDB costs milliseconds, too much for every dashboard query, so:

- with a PostgreSQL catalog, the clock asks PostgreSQL directly;
- with a SQLite catalog, it asks through DuckDB's own SQLite (a second SQLite library in the
  process would break the file's locks), and only when the catalog files changed since the
  last answer: their size and modification time are read first, which costs microseconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb

from fleuve.config import Settings
from fleuve.lake import CATALOG, quote_ident

# Change kinds that touch a table's files but not its rows.
NEUTRAL = frozenset({"inline_flush", "merge_adjacent", "compacted_table", "flushed_inlined"})
# Change kinds that only add rows.
APPEND = frozenset({"inserted_into_table", "inlined_insert"})
# A file modified this recently may be modified again within the clock's resolution:
# an answer read then is not trusted for later questions.
_SETTLE_NS = 100_000_000


@dataclass(frozen=True)
class LakeState:
    """The lake's latest snapshot and schema version."""

    snapshot: int
    schema_version: int


@dataclass(frozen=True)
class TableHistory:
    """What happened to one table after a snapshot."""

    kinds: frozenset[str]

    @property
    def unchanged(self) -> bool:
        """True when no row was added, removed or altered."""
        return self.kinds <= NEUTRAL

    @property
    def append_only(self) -> bool:
        """True when rows were only added."""
        return self.kinds <= NEUTRAL | APPEND


Session = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


class LakeClock:
    """Answers the lake's snapshot questions, cheaply enough to ask on every query."""

    def __init__(self, settings: Settings, session: Session) -> None:
        self._catalog = settings.lake_catalog
        self._schema = settings.lake.catalog_schema
        self._session = session
        self._local = threading.local()
        self._lock = threading.Lock()
        self._known: tuple[tuple[int, ...], LakeState] | None = None
        # A SQLite catalog's files: their change times tell a new commit without a query.
        self._files: tuple[str, ...] = ()
        if self._catalog.startswith("sqlite:"):
            path = self._catalog.removeprefix("sqlite:")
            self._files = (path, path + "-wal")

    # -- reading the catalog ------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        if self._files:
            prefix = f"__ducklake_metadata_{CATALOG}." + (
                f"{quote_ident(self._schema)}." if self._schema else ""
            )
            with self._session() as con:
                return con.execute(
                    sql.replace("ducklake_", prefix + "ducklake_"), list(params)
                ).fetchall()
        pg = getattr(self._local, "con", None)
        if pg is None:
            import psycopg

            pg = self._local.con = psycopg.connect(
                self._catalog.replace("postgres://", "postgresql://", 1), autocommit=True
            )
        prefix = f'"{self._schema}".' if self._schema else ""
        with pg.cursor() as cur:
            cur.execute(
                sql.replace("ducklake_", prefix + "ducklake_").replace("?", "%s"), list(params)
            )
            return cur.fetchall()

    def _signature(self) -> tuple[int, ...]:
        out: list[int] = []
        for f in self._files:
            try:
                st = os.stat(f)
            except FileNotFoundError:
                out += [0, 0, 0]
                continue
            # SQLite creates an empty WAL when a connection opens and deletes it when the last
            # one closes: that churn commits nothing, and must not make every query re-read.
            out += [st.st_mtime_ns, st.st_size, st.st_ino] if st.st_size else [0, 0, 0]
        return tuple(out)

    def close(self) -> None:
        """Close this thread's catalog connection (PostgreSQL catalogs)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- questions --------------------------------------------------------------------

    def state(self) -> LakeState:
        """The latest snapshot id and its schema version."""
        if not self._files:
            return self._read_state()
        sig = self._signature()
        with self._lock:
            if self._known is not None and self._known[0] == sig:
                return self._known[1]
        state = self._read_state()
        newest = max(sig[0::3], default=0)
        with self._lock:
            if time.time_ns() - newest > _SETTLE_NS:
                self._known = (sig, state)
            else:
                self._known = None
        return state

    def _read_state(self) -> LakeState:
        row = self._rows(
            "SELECT snapshot_id, schema_version FROM ducklake_snapshot "
            "WHERE snapshot_id = (SELECT max(snapshot_id) FROM ducklake_snapshot)"
        )[0]
        return LakeState(int(row[0]), int(row[1]))

    def table_ids(self, schema_version: int) -> dict[tuple[str, str], int]:
        """Live tables as {(schema, table) lowercased: table_id}."""
        return self._table_ids(schema_version)

    @lru_cache(maxsize=8)  # noqa: B019 - one clock per engine; keyed by schema version
    def _table_ids(self, schema_version: int) -> dict[tuple[str, str], int]:
        rows = self._rows(
            "SELECT s.schema_name, t.table_name, t.table_id FROM ducklake_table t "
            "JOIN ducklake_schema s ON s.schema_id = t.schema_id "
            "WHERE t.end_snapshot IS NULL AND s.end_snapshot IS NULL"
        )
        return {(s.lower(), t.lower()): int(i) for s, t, i in rows}

    def history(self, since: int, until: int) -> dict[int, TableHistory]:
        """Per table id, the kinds of change committed in snapshots (since, until]."""
        return self._history(since, until)

    @lru_cache(maxsize=256)  # noqa: B019 - snapshots are immutable once committed
    def _history(self, since: int, until: int) -> dict[int, TableHistory]:
        kinds: dict[int, set[str]] = {}
        rows = self._rows(
            "SELECT changes_made FROM ducklake_snapshot_changes "
            "WHERE snapshot_id > ? AND snapshot_id <= ?",
            (since, until),
        )
        for (changes,) in rows:
            for kind, value in parse_changes(changes or ""):
                if value.isdigit():
                    kinds.setdefault(int(value), set()).add(kind)
        return {tid: TableHistory(frozenset(k)) for tid, k in kinds.items()}


def parse_changes(text: str) -> list[tuple[str, str]]:
    """Split DuckLake's `changes_made` text into (kind, value) pairs; quoted names may hold commas."""
    out: list[tuple[str, str]] = []
    buf, quoted = "", False
    for c in text + ",":
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            kind, _, value = buf.partition(":")
            if kind:
                out.append((kind.strip(), value.strip()))
            buf = ""
        else:
            buf += c
    return out
