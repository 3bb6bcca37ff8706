"""Schema drift on a real PostgreSQL source, and type fidelity for PostgreSQL and MariaDB."""

from __future__ import annotations

import uuid
from decimal import Decimal

import psycopg
import pymysql
import pytest

from fleuve.ingest.schema import absorb
from tests.conftest import PG_ADMIN
from tests.ingest.conftest import MYSQL, Workspace, connection


def _pg(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def _source(schema: str) -> dict:
    return {"type": "postgres", "dsn": "postgresql://postgres@127.0.0.1/test", "schema": schema}


def test_added_removed_and_widened_columns(pg_schema: str, workspace: Workspace) -> None:
    t = f'"{pg_schema}".drift'
    _pg(f"CREATE TABLE {t} (id integer, qty integer, price real, note text, gone text)")
    _pg(f"INSERT INTO {t} VALUES (1, 10, 1.5, 'a', 'x')")
    stream = {
        "name": "drift",
        "table": "drift",
        "sync_mode": "incremental",
        "destination_sync_mode": "append",
        "cursor_field": "id",
    }
    workspace.configure([connection(_source(pg_schema), [stream])])
    assert workspace.sync().status == "succeeded"

    # New column, removed column, integer → bigint (promoted), real → double (promoted),
    # and an integer column that now holds decimals (rewritten as DOUBLE).
    _pg(f'ALTER TABLE {t} ADD COLUMN "Added Col" text, DROP COLUMN gone')
    _pg(f"ALTER TABLE {t} ALTER COLUMN qty TYPE bigint, ALTER COLUMN price TYPE double precision")
    _pg(f"ALTER TABLE {t} ALTER COLUMN id TYPE double precision")
    _pg(f"INSERT INTO {t} VALUES (2.5, 5000000000, 2.25, 'b', 'new')")
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    changes = result.streams["drift"].schema_changes
    assert "added column added_col VARCHAR" in changes
    assert "widened qty from INTEGER to BIGINT" in changes
    assert "widened price from FLOAT to DOUBLE" in changes
    assert "widened id from INTEGER to DOUBLE" in changes
    assert workspace.rows(
        "SELECT id, qty, price, note, gone, added_col FROM bronze.drift ORDER BY id"
    ) == [(1.0, 10, 1.5, "a", "x", None), (2.5, 5000000000, 2.25, "b", None, "new")]
    types = dict(
        workspace.rows(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'drift' AND database_name = 'lake'"
        )
    )
    assert types["qty"] == "BIGINT" and types["price"] == "DOUBLE" and types["gone"] == "VARCHAR"


def test_incompatible_change_fails_the_stream_and_commits_nothing(
    pg_schema: str, workspace: Workspace
) -> None:
    _pg(f'CREATE TABLE "{pg_schema}".a (id integer, amount numeric(10,2))')
    _pg(f'CREATE TABLE "{pg_schema}".b (id integer)')
    _pg(f'INSERT INTO "{pg_schema}".a VALUES (1, 9.99)')
    _pg(f'INSERT INTO "{pg_schema}".b VALUES (1)')
    streams = [{"name": "a", "table": "a"}, {"name": "b", "table": "b"}]
    workspace.configure([connection(_source(pg_schema), streams, max_retries=0)])
    assert workspace.sync().status == "succeeded"
    before = workspace.rows("SELECT * FROM bronze.a")

    _pg(f'ALTER TABLE "{pg_schema}".a ALTER COLUMN amount TYPE text')
    _pg(f"UPDATE \"{pg_schema}\".a SET amount = 'n/a'")
    _pg(f'INSERT INTO "{pg_schema}".b VALUES (2)')
    result = workspace.sync()
    assert result.status == "failed"
    message = result.errors["a"]
    assert "column 'amount' changed from DECIMAL(10,2) to VARCHAR" in message
    assert "nothing committed" in message
    assert workspace.rows("SELECT * FROM bronze.a") == before
    # The other stream of the connection still committed.
    assert workspace.rows("SELECT count(*) FROM bronze.b") == [(2,)]


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        ("INTEGER", "INTEGER", "same"),
        ("BIGINT", "INTEGER", "same"),
        ("INTEGER", "BIGINT", "promote"),
        ("FLOAT", "DOUBLE", "promote"),
        ("DECIMAL(10,2)", "DECIMAL(12,4)", "rewrite"),
        ("DECIMAL(12,4)", "DECIMAL(10,2)", "same"),
        ("DATE", "TIMESTAMP", "rewrite"),
        ("VARCHAR", "INTEGER", "same"),
        ("INTEGER", "VARCHAR", "no"),
        ("TIMESTAMP", "BOOLEAN", "no"),
    ],
)
def test_absorb_rules(old: str, new: str, verdict: str) -> None:
    assert absorb(old, new)[0] == verdict


def test_postgres_types_are_kept(pg_schema: str, workspace: Workspace) -> None:
    _pg(
        f'CREATE TABLE "{pg_schema}".typed (n numeric(38,10), free numeric, wide numeric(50,5), '
        "ts timestamptz, doc jsonb, ints int[], id uuid, raw bytea, d date, flag boolean)"
    )
    key = uuid.uuid4()
    _pg(
        f'INSERT INTO "{pg_schema}".typed VALUES (12345.6789012345, '
        "1.234567890123456789012345678901, 123456789012345678901234567890123456789012345.12345, "
        "'2026-03-01 10:00:00+02', '{\"a\": {\"b\": [1, 2]}}', '{1,2,3}', "
        f"'{key}', '\\xdeadbeef', '2026-03-01', true)"
    )
    workspace.configure([connection(_source(pg_schema), [{"name": "typed", "table": "typed"}])])
    assert workspace.sync().status == "succeeded"
    types = dict(
        workspace.rows(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'typed' "
            "AND database_name = 'lake'"
        )
    )
    assert types["n"] == "DECIMAL(38,10)"
    assert types["free"] == types["wide"] == "VARCHAR"  # exact text, not a rounded DOUBLE
    assert types["ts"] == "TIMESTAMP WITH TIME ZONE"
    assert types["doc"] == "JSON" and types["ints"] == "INTEGER[]" and types["id"] == "UUID"
    assert types["raw"] == "BLOB" and types["d"] == "DATE" and types["flag"] == "BOOLEAN"
    row = workspace.rows(
        "SELECT n, free, wide, doc->>'$.a.b[1]', ints, id, raw, "
        "CAST(ts AT TIME ZONE 'UTC' AS VARCHAR) FROM bronze.typed"
    )[0]
    assert row[0] == Decimal("12345.6789012345")
    assert row[1] == "1.234567890123456789012345678901"
    assert row[2] == "123456789012345678901234567890123456789012345.12345"
    assert row[3:7] == ("2", [1, 2, 3], key, b"\xde\xad\xbe\xef")
    assert row[7] == "2026-03-01 08:00:00"


def test_mariadb_types_are_kept(workspace: Workspace) -> None:
    table = f"typed_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(**MYSQL, autocommit=True, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, price DECIMAL(12,3), "
                "big DECIMAL(50,4), seen_at DATETIME(6), doc JSON, ok TINYINT(1), name VARCHAR(50)) "
                "CHARACTER SET utf8mb4"
            )
            cur.execute(
                f"INSERT INTO {table} VALUES (1, 1234.567, 12345678901234567890123456789012345678901.1234, "
                "'2026-03-01 10:00:00.123456', '{\"k\": [1, 2]}', 1, '李小龙')"
            )
        src = {"type": "mysql", **MYSQL}
        workspace.configure([connection(src, [{"name": "typed", "table": table}])])
        result = workspace.sync()
        assert result.status == "succeeded", result.error
        row = workspace.rows(
            "SELECT price, big, seen_at, doc->>'$.k[0]', ok, name FROM bronze.typed"
        )[0]
        assert row[0] == Decimal("1234.567")
        assert row[1] == "12345678901234567890123456789012345678901.1234"
        assert str(row[2]) == "2026-03-01 10:00:00.123456"
        assert row[3:] == ("1", True, "李小龙")
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()
