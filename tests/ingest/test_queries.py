"""Custom query streams: run by PostgreSQL, MariaDB or DuckDB over SQLite, incremental too."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import psycopg
import pymysql

from tests.conftest import PG_ADMIN
from tests.ingest.conftest import MYSQL, Workspace, connection

QUERY = "SELECT id, upper(label) AS label, updated_at FROM {t} WHERE id % 2 = 0"


def _stream(table: str) -> dict:
    return {
        "name": "evens",
        "query": QUERY.format(t=table),
        "sync_mode": "incremental",
        "destination_sync_mode": "append_dedup",
        "cursor_field": "updated_at",
        "primary_key": ["id"],
    }


def _check(workspace: Workspace, grow: object) -> None:
    first = workspace.sync()
    assert first.status == "succeeded", first.error
    assert workspace.rows("SELECT count(*), max(label) FROM bronze.evens") == [(5, "ITEM 8")]
    grow()  # type: ignore[operator]
    second = workspace.sync()
    assert second.status == "succeeded", second.error
    assert second.records <= 3  # only rows at or after the cursor were read
    assert workspace.rows("SELECT id, label FROM bronze.evens WHERE id >= 8 ORDER BY id") == [
        (8, "CHANGED 8"),
        (10, "ITEM 10"),
        (12, "ITEM 12"),
    ]


def test_postgres_query(pg_schema: str, workspace: Workspace) -> None:
    t = f'"{pg_schema}".things'
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {t} AS SELECT i AS id, 'item ' || i AS label, "
            "timestamp '2026-01-01' + i * interval '1 minute' AS updated_at "
            "FROM generate_series(0, 9) i"
        )

    def grow() -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(
                f"INSERT INTO {t} VALUES (10, 'item 10', '2026-01-02'), "
                "(11, 'item 11', '2026-01-02'), (12, 'item 12', '2026-01-03')"
            )
            conn.execute(
                f"UPDATE {t} SET label = 'changed 8', updated_at = '2026-01-03' WHERE id = 8"
            )

    source = {"type": "postgres", "dsn": "postgresql://postgres@127.0.0.1/test"}
    workspace.configure([connection(source, [_stream(t)])])
    _check(workspace, grow)


def test_mariadb_query(workspace: Workspace) -> None:
    t = f"things_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(**MYSQL, autocommit=True)

    def run(sql: str) -> None:
        with conn.cursor() as cur:
            cur.execute(sql)

    try:
        run(f"CREATE TABLE {t} (id INT, label VARCHAR(20), updated_at DATETIME)")
        run(
            f"INSERT INTO {t} SELECT seq, concat('item ', seq), "
            "'2026-01-01' + INTERVAL seq MINUTE FROM seq_0_to_9"
        )

        def grow() -> None:
            run(
                f"INSERT INTO {t} VALUES (10, 'item 10', '2026-01-02'), "
                "(11, 'item 11', '2026-01-02'), (12, 'item 12', '2026-01-03')"
            )
            run(f"UPDATE {t} SET label = 'changed 8', updated_at = '2026-01-03' WHERE id = 8")

        workspace.configure([connection({"type": "mysql", **MYSQL}, [_stream(t)])])
        _check(workspace, grow)
    finally:
        run(f"DROP TABLE IF EXISTS {t}")
        conn.close()


def test_sqlite_query(workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "src.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (id INTEGER, label TEXT, updated_at TIMESTAMP)")
        db.executemany(
            "INSERT INTO things VALUES (?, ?, ?)",
            [(i, f"item {i}", f"2026-01-01 00:{i:02d}:00") for i in range(10)],
        )

    def grow() -> None:
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO things VALUES (?, ?, ?)",
                [
                    (10, "item 10", "2026-01-02 00:00:00"),
                    (11, "item 11", "2026-01-02 00:00:00"),
                    (12, "item 12", "2026-01-03 00:00:00"),
                ],
            )
            db.execute(
                "UPDATE things SET label = 'changed 8', updated_at = '2026-01-03 00:00:00' "
                "WHERE id = 8"
            )

    workspace.configure([connection({"type": "sqlite", "path": str(path)}, [_stream("things")])])
    _check(workspace, grow)
