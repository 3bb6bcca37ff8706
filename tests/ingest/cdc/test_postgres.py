"""PostgreSQL change capture into bronze, against a private server with wal_level=logical."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fleuve.ingest.cdc import PositionLost, sync_cdc
from tests.ingest.cdc.servers import PostgresServer
from tests.ingest.conftest import Workspace, connection


class Source:
    """One database of the private server, its slots dropped with it."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self.db = f"cdc_{uuid.uuid4().hex[:10]}"
        server.execute(f"CREATE DATABASE {self.db}")

    def __call__(self, sql: str, params: Any = None) -> list[tuple]:
        return self.server.execute(sql, params, database=self.db)

    def config(self, **more: Any) -> dict[str, Any]:
        return {"type": "postgres", "dsn": self.server.dsn(self.db), **more}

    def drop(self) -> None:
        self.server.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = %s AND NOT active",
            [self.db],
        )
        self.server.execute(f"DROP DATABASE {self.db} WITH (FORCE)")


@pytest.fixture
def pg(cdc_postgres: PostgresServer) -> Iterator[Source]:
    src = Source(cdc_postgres)
    try:
        yield src
    finally:
        src.drop()


def _stream(name: str = "items", **more: Any) -> dict[str, Any]:
    return {"name": name, "table": name, "sync_mode": "cdc", **more}


def _sync(ws: Workspace, **kw: Any) -> Any:
    p = ws.project
    assert p is not None
    return sync_cdc(p.settings, p.lake, p.db, "src", flush_seconds=0.2, **kw)[1]


def _norm(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    return value


def _same(pg: Source, ws: Workspace, table: str, columns: str) -> None:
    source = [tuple(map(_norm, r)) for r in pg(f"SELECT {columns} FROM {table} ORDER BY id")]
    lake = [
        tuple(map(_norm, r)) for r in ws.rows(f"SELECT {columns} FROM bronze.{table} ORDER BY id")
    ]
    assert lake == source


def test_snapshot_then_inserts_updates_deletes_land_in_bronze(
    pg: Source, workspace: Workspace
) -> None:
    pg(
        "CREATE TABLE items (id int PRIMARY KEY, name text, amount numeric(12,2), "
        "stamp timestamptz, tags int[], doc jsonb, raw bytea, flag boolean)"
    )
    pg(
        "INSERT INTO items SELECT i, 'Élodie 李 ' || i, i / 4.0, "
        "timestamptz '2026-01-01 12:00+00' + i * interval '1 minute', ARRAY[i, i + 1], "
        "jsonb_build_object('k', i), decode('00ff', 'hex'), i % 2 = 0 FROM generate_series(1, 500) i"
    )
    workspace.configure([connection(pg.config(), [_stream()])])
    stats = _sync(workspace)
    assert stats.snapshot_rows == 500
    cols = "id, name, amount, stamp, tags, doc, raw, flag"
    _same(pg, workspace, "items", cols)

    pg(
        "INSERT INTO items VALUES (1001, 'محمد', 1.5, now(), '{7,NULL}', '{\"a\": [1]}', NULL, NULL)"
    )
    pg("UPDATE items SET name = 'changed', amount = amount + 1 WHERE id % 10 = 0")
    pg("DELETE FROM items WHERE id % 7 = 0")
    pg("UPDATE items SET id = 5000 WHERE id = 1")  # the key itself changes
    stats = _sync(workspace)
    assert stats.snapshot_rows == 0 and stats.changes > 0
    _same(pg, workspace, "items", cols)
    ops = dict(workspace.rows("SELECT _fleuve_op, count(*) FROM bronze.items_changes GROUP BY 1"))
    assert ops["snapshot"] == 500 and ops["insert"] == 1 and ops["delete"] == 72 + 1
    assert workspace.rows(
        "SELECT typeof(amount), typeof(tags), typeof(raw) FROM bronze.items LIMIT 1"
    ) == [("DECIMAL(12,2)", "INTEGER[]", "BLOB")]

    again = _sync(workspace)  # nothing new: nothing landed twice
    assert again.changes == 0
    assert again.lag_bytes is not None and again.lag_bytes < 1_000_000
    _same(pg, workspace, "items", cols)


def test_truncate_add_and_drop_columns_and_unchanged_toast(
    pg: Source, workspace: Workspace
) -> None:
    pg("CREATE TABLE items (id int PRIMARY KEY, name text, big text)")
    # Above 2 kB and not compressible: stored out of line, not resent by updates that skip it.
    pg(
        "INSERT INTO items SELECT i, 'n' || i, (SELECT string_agg(md5(random()::text), '') "
        "FROM generate_series(1, 200)) FROM generate_series(1, 20) i"
    )
    workspace.configure([connection(pg.config(), [_stream()])])
    _sync(workspace)
    pg("UPDATE items SET name = 'renamed ' || id WHERE id <= 10")
    pg("UPDATE items SET name = name || '!' WHERE id <= 5")
    _sync(workspace)
    _same(pg, workspace, "items", "id, name, big")

    pg("ALTER TABLE items ADD COLUMN qty int")
    pg("UPDATE items SET qty = id * 2 WHERE id > 15")
    pg("ALTER TABLE items DROP COLUMN name")
    pg("INSERT INTO items VALUES (100, 'x', 3)")
    _sync(workspace)
    _same(pg, workspace, "items", "id, big, qty")

    pg("TRUNCATE items")
    pg("INSERT INTO items VALUES (7, 'after', 1)")
    _sync(workspace)
    _same(pg, workspace, "items", "id, big, qty")


def test_a_lost_slot_is_an_error_naming_the_new_snapshot(pg: Source, workspace: Workspace) -> None:
    pg("CREATE TABLE items (id int PRIMARY KEY, v int)")
    pg("INSERT INTO items VALUES (1, 1)")
    workspace.configure([connection(pg.config(), [_stream()])])
    _sync(workspace)
    pg("SELECT pg_drop_replication_slot('fleuve_src')")
    pg("INSERT INTO items VALUES (2, 2)")
    with pytest.raises(PositionLost) as err:
        _sync(workspace)
    assert "is gone" in err.value.message and "--full-refresh" in (err.value.fix or "")
    _sync(workspace, full_refresh=True)
    _same(pg, workspace, "items", "id, v")


def test_fleuve_sync_captures_cdc_streams_and_syncs_the_others(
    pg: Source, workspace: Workspace
) -> None:
    from click.testing import CliRunner

    from fleuve.cli import cli

    pg("CREATE TABLE items (id int PRIMARY KEY, v int)")
    pg("CREATE TABLE prices (id int PRIMARY KEY, p int)")
    pg("INSERT INTO items VALUES (1, 1), (2, 2)")
    pg("INSERT INTO prices VALUES (1, 10)")
    workspace.configure(
        [connection(pg.config(), [_stream(), {"name": "prices", "table": "prices"}])]
    )

    def sync(*args: str) -> str:
        result = CliRunner().invoke(
            cli, ["-p", str(workspace.folder), "sync", "src", *args], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.output

    assert "2 snapshot rows" in sync()
    pg("UPDATE items SET v = 20 WHERE id = 2")
    assert "1 changes" in sync("--stream", "items")
    _same(pg, workspace, "items", "id, v")
    assert workspace.rows("SELECT id, p FROM bronze.prices") == [(1, 10)]


def test_source_check_tells_what_change_capture_lacks(pg: Source, workspace: Workspace) -> None:
    from fleuve.ingest.discover import check_connection
    from fleuve.ingest.errors import IngestError

    pg("CREATE TABLE items (id int PRIMARY KEY, v int)")
    pg("CREATE TABLE notes (body text)")
    p = workspace.configure([connection(pg.config(), [_stream()])])
    assert check_connection(p.settings, p.lake, "src").endswith("ready for change data capture")
    p = workspace.configure([connection(pg.config(), [_stream(), _stream("notes")])])
    with pytest.raises(IngestError) as err:
        check_connection(p.settings, p.lake, "src")
    assert "notes has no primary key" in err.value.message
    assert "REPLICA IDENTITY FULL" in (err.value.fix or "")


def test_replica_identity_full_without_a_primary_key_and_more_types(
    pg: Source, workspace: Workspace
) -> None:
    pg(
        "CREATE TABLE items (code uuid NOT NULL, n numeric, span interval, note text, "
        "names text[], big text)"
    )
    pg("ALTER TABLE items REPLICA IDENTITY FULL")
    pg(
        "INSERT INTO items SELECT gen_random_uuid(), 12345678901234567890.123456789, "
        "interval '-1 day 02:03:04.5', 'a', ARRAY['x, \"y\"', NULL], "
        "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200)) "
        "FROM generate_series(1, 5)"
    )
    stream = _stream(primary_key=["code"])
    workspace.configure([connection(pg.config(), [stream])])
    _sync(workspace)
    pg("UPDATE items SET note = 'b'")  # the TOASTed big is not resent; the old row has it
    pg("DELETE FROM items WHERE code = (SELECT code FROM items ORDER BY code LIMIT 1)")
    _sync(workspace)
    source = pg("SELECT code, n::text, span, note, names, md5(big) FROM items ORDER BY code")
    lake = workspace.rows(
        "SELECT code, n, span, note, names, md5(big) FROM bronze.items ORDER BY code"
    )
    assert lake == [tuple(r) for r in source]
