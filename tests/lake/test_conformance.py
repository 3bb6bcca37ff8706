"""The lake conformance suite, run against both backends.

- embedded: SQLite catalog + local folder
- production: PostgreSQL catalog (the machine's server) + S3 bucket (moto's server on loopback)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fleuve.errors import FleuveError
from fleuve.lake import Lake
from fleuve.project import Project, init_project
from tests.conftest import PG_ADMIN


@pytest.fixture(params=["sqlite-local", "postgres-s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lake]:
    """An initialized lake on each backend."""
    folder = tmp_path / "proj"
    folder.mkdir()
    if request.param == "postgres-s3":
        s3 = request.getfixturevalue("s3_server")
        schema = request.getfixturevalue("pg_schema")
        settings = s3.settings(
            s3.bucket(), **{"lake.catalog": PG_ADMIN, "lake.catalog_schema": schema}
        )
        (folder / "fleuve.yml").write_text(yaml.safe_dump(settings))
    init_project(folder, "conformance")
    project = Project.open(folder)
    try:
        yield project.lake
    finally:
        project.close()


def _count(lake: Lake, table: str) -> int:
    return lake.connect().execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_layers_exist(lake: Lake) -> None:
    schemas = {
        r[0]
        for r in lake.connect()
        .execute("SELECT schema_name FROM information_schema.schemata WHERE catalog_name = 'lake'")
        .fetchall()
    }
    assert {"bronze", "silver", "gold", "logs"} <= schemas


def test_create_replace_append_merge(lake: Lake) -> None:
    lake.commit(
        lambda c: c.execute(
            "CREATE TABLE silver.customers AS SELECT range AS id, 'v1' AS name FROM range(100)"
        )
    )
    assert _count(lake, "silver.customers") == 100
    lake.commit(
        lambda c: c.execute("INSERT INTO silver.customers SELECT range + 100, 'v1' FROM range(50)")
    )
    assert _count(lake, "silver.customers") == 150
    lake.commit(
        lambda c: c.execute("""
        MERGE INTO silver.customers AS t
        USING (SELECT range * 2 AS id, 'v2' AS name FROM range(100)) AS s ON t.id = s.id
        WHEN MATCHED THEN UPDATE SET name = s.name
        WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.name)""")
    )
    con = lake.connect()
    # ids 0..149 existed; even ids 0..198 merged: 75 updated (0..148), 25 inserted (150..198).
    assert _count(lake, "silver.customers") == 175
    assert (
        con.execute("SELECT count(*) FROM silver.customers WHERE name = 'v2'").fetchone()[0] == 100
    )
    lake.commit(
        lambda c: c.execute(
            "CREATE OR REPLACE TABLE silver.customers AS SELECT 1 AS id, 'x' AS name"
        )
    )
    assert _count(lake, "silver.customers") == 1


def test_failed_commit_leaves_nothing(lake: Lake) -> None:
    lake.commit(lambda c: c.execute("CREATE TABLE bronze.t AS SELECT range AS id FROM range(10)"))
    before = lake.current_snapshot()

    def half_then_fail(c):  # type: ignore[no-untyped-def]
        c.execute("INSERT INTO bronze.t SELECT range FROM range(1000)")
        c.execute("CREATE TABLE bronze.half AS SELECT 1 AS x")
        raise RuntimeError("boom in the middle")

    with pytest.raises(RuntimeError):
        lake.commit(half_then_fail)
    assert _count(lake, "bronze.t") == 10
    assert not lake.table_exists("bronze.half")
    assert lake.current_snapshot() == before


def test_schema_evolution(lake: Lake) -> None:
    lake.commit(
        lambda c: c.execute("CREATE TABLE silver.evo AS SELECT range::INTEGER AS id FROM range(3)")
    )
    v1 = lake.current_snapshot()
    lake.commit(
        lambda c: c.execute("ALTER TABLE silver.evo ADD COLUMN label VARCHAR DEFAULT 'new'")
    )
    lake.commit(lambda c: c.execute("ALTER TABLE silver.evo ALTER COLUMN id SET DATA TYPE BIGINT"))
    lake.commit(lambda c: c.execute("INSERT INTO silver.evo VALUES (10000000000, 'wide')"))
    lake.commit(lambda c: c.execute("ALTER TABLE silver.evo RENAME COLUMN label TO tag"))
    con = lake.connect()
    cols = con.execute("DESCRIBE silver.evo").fetchall()
    assert [(c[0], c[1]) for c in cols] == [("id", "BIGINT"), ("tag", "VARCHAR")]
    assert con.execute("SELECT tag FROM silver.evo WHERE id = 10000000000").fetchone()[0] == "wide"
    old = lake.read_at("silver.evo", v1)
    assert old.column_names == ["id"] and old.num_rows == 3


def test_time_travel_and_snapshots(lake: Lake) -> None:
    lake.commit(lambda c: c.execute("CREATE TABLE gold.tt AS SELECT 1 AS v"))
    first = lake.current_snapshot()
    lake.commit(lambda c: c.execute("INSERT INTO gold.tt VALUES (2)"))
    lake.commit(lambda c: c.execute("DELETE FROM gold.tt WHERE v = 1"))
    ids = [s.snapshot_id for s in lake.snapshots()]
    assert ids == sorted(ids) and ids[-3] == first
    assert sorted(lake.read_at("gold.tt", first)["v"].to_pylist()) == [1]
    assert sorted(lake.read_at("gold.tt", first + 1)["v"].to_pylist()) == [1, 2]
    assert lake.query("SELECT v FROM gold.tt")["v"].to_pylist() == [2]
    with pytest.raises(FleuveError, match="cannot be read at snapshot"):
        lake.read_at("gold.tt", first - 1)


def _files(lake: Lake, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        r[0]
        for r in lake.connect()
        .execute(
            "SELECT data_file FROM ducklake_list_files('lake', ?, schema => ?)", [name, schema]
        )
        .fetchall()
    ]


def _parquet_values(lake: Lake, table: str, column: str) -> set[str]:
    """The distinct values of a `parquet_metadata` column over the files of `table`."""
    con = lake.connect()
    try:
        query = f"SELECT DISTINCT {column} FROM parquet_metadata({[*_files(lake, table)]!r})"
        return {r[0] for r in con.execute(query).fetchall()}
    finally:
        con.close()


def test_layer_compression_and_partitioning(lake: Lake) -> None:
    lake.commit(
        lambda c: c.execute(
            "CREATE TABLE bronze.events (id BIGINT, _fleuve_extracted_at TIMESTAMPTZ)"
        )
    )
    lake.partition_for_layer("bronze.events", "_fleuve_extracted_at")
    lake.commit(
        lambda c: c.execute(
            "INSERT INTO bronze.events SELECT range, TIMESTAMPTZ '2026-11-24 10:00:00+00' + range * INTERVAL 1 HOUR "
            "FROM range(48)"
        )
    )
    lake.commit(lambda c: c.execute("CREATE TABLE gold.revenue (order_date DATE, revenue DOUBLE)"))
    lake.partition_for_layer("gold.revenue", "order_date")
    lake.commit(
        lambda c: c.execute(
            "INSERT INTO gold.revenue SELECT DATE '2026-01-01' + range::INTEGER, range FROM range(59)"
        )
    )
    bronze_files = _files(lake, "bronze.events")
    # 48 hours from 10:00 on the 24th span three ingestion days.
    assert len(bronze_files) == 3
    assert all("year=2026" in f and "month=11" in f and "day=2" in f for f in bronze_files)
    gold_files = _files(lake, "gold.revenue")
    assert len(gold_files) == 2 and all("year=2026" in f for f in gold_files)
    codecs = {t: _parquet_values(lake, t, "compression") for t in ("bronze.events", "gold.revenue")}
    assert codecs == {"bronze.events": {"SNAPPY"}, "gold.revenue": {"ZSTD"}}


def test_bronze_files_hold_65536_row_groups_in_parquet_2_others_duckdb_defaults(lake: Lake) -> None:
    for table in ("bronze.wide", "gold.wide"):
        lake.commit(
            lambda c, t=table: c.execute(
                f"CREATE TABLE {t} AS SELECT range AS v FROM range(300000)"
            )
        )
    con = lake.connect()
    groups = {
        table: [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT row_group_num_rows FROM parquet_metadata("
                f"{[*_files(lake, table)]!r}) ORDER BY 1 DESC"
            ).fetchall()
        ]
        for table in ("bronze.wide", "gold.wide")
    }
    assert groups["bronze.wide"][0] == 65_536
    assert groups["gold.wide"][0] == 122_880
    # Bronze is written in Parquet 2: its integers delta-encoded.
    encodings = {t: _parquet_values(lake, t, "encodings") for t in ("bronze.wide", "gold.wide")}
    assert encodings["bronze.wide"] == {"DELTA_BINARY_PACKED"}, encodings
    assert "DELTA_BINARY_PACKED" not in encodings["gold.wide"], encodings


def test_layer_sizes(lake: Lake) -> None:
    lake.commit(
        lambda c: c.execute("CREATE TABLE gold.big AS SELECT range AS v FROM range(100000)")
    )
    sizes = lake.layer_sizes()
    assert sizes["gold"] > 0 and set(sizes) >= {"bronze", "silver", "gold", "logs"}


def test_bootstrap_is_idempotent(lake: Lake) -> None:
    before = lake.current_snapshot()
    lake.bootstrap()
    assert lake.current_snapshot() == before


def test_maintenance_expires_old_snapshots_and_keeps_data(lake: Lake) -> None:
    lake.commit(lambda c: c.execute("CREATE TABLE silver.m AS SELECT 1 AS v"))
    for v in range(2, 6):
        lake.commit(lambda c, v=v: c.execute(f"INSERT INTO silver.m VALUES ({v})"))
    ids = [s.snapshot_id for s in lake.snapshots()]
    keep = ids[-2]
    # Every snapshot is "old" with a retention of a millisecond; keep_from protects the last two.
    lake.settings.lake.snapshot_retention_days = 1e-8
    time.sleep(0.01)
    report = lake.maintain(keep_from=keep)
    after = [s.snapshot_id for s in lake.snapshots()]
    assert report.expired_snapshots == len([i for i in ids if i < keep])
    assert min(after) == keep and ids[-1] in after
    assert sorted(lake.query("SELECT v FROM silver.m")["v"].to_pylist()) == [1, 2, 3, 4, 5]
    assert sorted(lake.read_at("silver.m", keep)["v"].to_pylist()) == [1, 2, 3, 4]
    with pytest.raises(FleuveError):
        lake.read_at("silver.m", ids[1])


def test_maintenance_without_retention_keeps_every_snapshot(lake: Lake) -> None:
    lake.commit(lambda c: c.execute("CREATE TABLE silver.k AS SELECT 1 AS v"))
    before = [s.snapshot_id for s in lake.snapshots()]
    lake.settings.lake.snapshot_retention_days = None
    lake.maintain()
    assert [s.snapshot_id for s in lake.snapshots()][: len(before)] == before
