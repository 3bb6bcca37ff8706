"""How fresh the lake is: its current snapshot and what changed since a given one.

Reflections record the snapshot they were built from; every query asks whether their inputs
changed since. Going through DuckDB for that costs milliseconds per question, so this reads
DuckLake's own catalog tables (`ducklake_snapshot`, `ducklake_snapshot_changes`,
`ducklake_table`, `ducklake_schema`; part of the open DuckLake specification) directly.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fleuve.config import Settings

# Change kinds that touch a table's files but not its rows.
NEUTRAL = frozenset({"inline_flush", "merge_adjacent", "compacted_table", "flushed_inlined"})
# Change kinds that only add rows.
APPEND = frozenset({"inserted_into_table", "inlined_insert"})


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


class LakeClock:
    """Reads the lake's snapshot history straight from its catalog database."""

    def __init__(self, settings: Settings) -> None:
        self._catalog = settings.lake_catalog
        self._schema = settings.lake.catalog_schema
        self._local = threading.local()

    # -- connections ------------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        if self._catalog.startswith("sqlite:"):
            return con.execute(sql, tuple(params)).fetchall()
        prefix = f'"{self._schema}".' if self._schema else ""
        with con.cursor() as cur:
            cur.execute(sql.replace("ducklake_", prefix + "ducklake_").replace("?", "%s"), params)
            return cur.fetchall()

    def _connect(self) -> Any:
        if self._catalog.startswith("sqlite:"):
            path = self._catalog.removeprefix("sqlite:")
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            con.execute("PRAGMA busy_timeout = 5000")
            return con
        import psycopg

        return psycopg.connect(
            self._catalog.replace("postgres://", "postgresql://", 1), autocommit=True
        )

    def close(self) -> None:
        """Close this thread's catalog connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- questions --------------------------------------------------------------------

    def state(self) -> LakeState:
        """The latest snapshot id and its schema version."""
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
