"""SQLite sources: values of another kind than their column's declared type."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.ingest.conftest import Workspace, connection


def test_a_table_read_as_text_leaves_the_other_streams_typed(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The table holding a text in an INTEGER column is read as text by a session of its own;
    the connection's other tables keep their typed read, and only the odd row is rejected."""
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as db:
        for table, values in (("odd", [(1, 5), (2, "many"), (3, 7)]), ("clean", [(1, 5), (2, 6)])):
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, qty INTEGER)")
            db.executemany(f"INSERT INTO {table} VALUES (?, ?)", values)
    streams = [{"name": t, "table": t} for t in ("odd", "clean")]
    workspace.configure(
        [connection({"type": "sqlite", "path": str(path)}, streams, max_rejected_ratio=0.5)]
    )
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    odd, clean = result.streams["odd"], result.streams["clean"]
    assert (odd.records_committed, odd.records_rejected) == (2, 1)
    assert (clean.records_committed, clean.records_rejected) == (2, 0)
    for table in ("odd", "clean"):
        types = workspace.rows(f"SELECT column_type FROM (DESCRIBE bronze.{table}) LIMIT 2")
        assert types == [("BIGINT",), ("BIGINT",)], (table, types)
    assert workspace.rows("SELECT id, qty FROM bronze.odd ORDER BY id") == [(1, 5), (3, 7)]
    [(location, reason, raw)] = workspace.rows("SELECT location, reason, raw FROM bronze._rejected")
    assert location == "main.odd row 2"
    assert "column qty: 'many' is not a BIGINT" in reason and '"many"' in raw
