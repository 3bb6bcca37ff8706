"""Exactly-once: a sync killed with SIGKILL at random moments, then resumed, equals the source."""

from __future__ import annotations

import random

import psycopg
import pytest

from tests.conftest import PG_ADMIN
from tests.ingest.conftest import Workspace, connection, sync_killed_after

RUNS = 20


def _pg(sql: str) -> list[tuple]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_duplicates(
    pg_schema: str, workspace: Workspace
) -> None:
    s = f'"{pg_schema}"'
    _pg(
        f"CREATE TABLE {s}.orders AS SELECT i AS id, (i % 997) * 1.25 AS amount, "
        "timestamp '2026-01-01' + (i % 5000) * interval '1 second' AS updated_at "
        "FROM generate_series(1, 80000) i"
    )
    _pg(f"CREATE TABLE {s}.lines AS SELECT i AS id, i % 13 AS qty FROM generate_series(1, 80000) i")
    _pg(
        f"CREATE TABLE {s}.prices AS SELECT i AS id, i * 2 AS price FROM generate_series(1, 50000) i"
    )
    source = {
        "type": "postgres",
        "dsn": "postgresql://postgres@127.0.0.1/test",
        "schema": pg_schema,
    }
    streams = [
        {
            "name": "orders",
            "table": "orders",
            "sync_mode": "incremental",
            "destination_sync_mode": "append_dedup",
            "cursor_field": "updated_at",
            "primary_key": ["id"],
        },
        {
            "name": "lines",
            "table": "lines",
            "sync_mode": "incremental",
            "destination_sync_mode": "append",
            "cursor_field": "id",
        },
        {"name": "prices", "table": "prices"},
    ]
    workspace.configure([connection(source, streams, max_retries=0)])
    rng = random.Random(20261125)
    killed = 0
    for run in range(RUNS):
        # The source moves on between runs: new rows, updates sharing one cursor value.
        _pg(
            f"INSERT INTO {s}.orders SELECT i, i * 0.5, timestamp '2026-02-01' + {run} * interval '1 hour' "
            f"FROM generate_series((SELECT max(id) + 1 FROM {s}.orders), "
            f"(SELECT max(id) + 3000 FROM {s}.orders)) i"
        )
        _pg(
            f"UPDATE {s}.orders SET amount = amount + 1, "
            f"updated_at = timestamp '2026-02-01' + {run} * interval '1 hour' "
            f"WHERE id % 50 = {run}"
        )
        _pg(
            f"INSERT INTO {s}.lines SELECT i, i % 13 FROM generate_series("
            f"(SELECT max(id) + 1 FROM {s}.lines), (SELECT max(id) + 5000 FROM {s}.lines)) i"
        )
        _pg(f"UPDATE {s}.prices SET price = price + 1 WHERE id % 7 = {run % 7}")

        killed += sync_killed_after(workspace.folder, rng.uniform(0.2, 2.8))

        result = workspace.sync()
        assert result.status == "succeeded", f"run {run}: {result.error}"
        for table, cols in (
            ("orders", "id, amount, updated_at"),
            ("lines", "id, qty"),
            ("prices", "id, price"),
        ):
            checksum = f"count(*), count(DISTINCT id), sum(hash({cols}) % 1000000007)"
            if table == "orders":
                checksum = (
                    "count(*), count(DISTINCT id), "
                    "sum(hash(id, CAST(amount AS DECIMAL(18,2)), CAST(updated_at AS VARCHAR)) "
                    "% 1000000007)"
                )
            source_side = _lake_checksum(workspace, pg_schema, table, checksum)
            bronze_side = workspace.rows(f"SELECT {checksum} FROM bronze.{table}")[0]
            assert bronze_side == source_side, f"run {run}, {table}"
    assert killed >= RUNS // 2, f"only {killed} of {RUNS} runs were killed mid-way"


def _lake_checksum(workspace: Workspace, schema: str, table: str, checksum: str) -> tuple:
    """The same checksum computed by DuckDB over the PostgreSQL table itself."""
    cur = workspace.project.lake.connect()  # type: ignore[union-attr]
    try:
        cur.execute(
            "ATTACH IF NOT EXISTS 'host=127.0.0.1 user=postgres dbname=test' AS kill_src "
            "(TYPE postgres, READ_ONLY)"
        )
        cur.execute("CALL pg_clear_cache()")
        return cur.execute(f'SELECT {checksum} FROM kill_src."{schema}".{table}').fetchone()
    finally:
        cur.close()
