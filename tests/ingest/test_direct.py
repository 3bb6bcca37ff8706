"""Stream rows land as Parquet files written into their date's folder, added in the sync's transaction.

Clean CSV drops are written by Fleuve with pyarrow; other streams by the engine's COPY.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import re
import time
from pathlib import Path

import duckdb
import psycopg
import pyarrow.parquet as pq
import pytest
import yaml

from fleuve.ingest import direct
from fleuve.ingest.schema import stored_type
from fleuve.ingest.state import INGESTION_DATE
from fleuve.project import init_project
from tests.conftest import PG_ADMIN, S3Server
from tests.ingest.conftest import Workspace, connection, sync_killed_after

STATUSES = ("new", "paid", "shipped", "cancelled")


def _drop(folder: Path, name: str, first: int, count: int, *, tail: str = "") -> None:
    """A CSV file of `count` orders from id `first`, as an export job would write it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["order_id,status,amount,note,created_at"]
    lines += [
        f"{i},{STATUSES[i % 4]},{(i * 37) % 1000 / 4},note {i * 7919 % 100003},"
        f"2026-01-01 00:00:{i % 60:02d}+00"
        for i in range(first, first + count)
    ]
    (folder / name).write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")


def _table_files(ws: Workspace, table: str) -> list[tuple[str, list[tuple[int, str]]]]:
    """(absolute path, [(partition key index, value)]) of every live data file of bronze.<table>."""
    lake = ws.project.lake  # type: ignore[union-attr]
    md = lake.metadata_table
    rows = ws.rows(
        f"SELECT f.data_file_id, f.path, f.path_is_relative FROM {md('ducklake_data_file')} f "
        f"JOIN {md('ducklake_table')} t USING (table_id) "
        "WHERE t.table_name = ? AND t.end_snapshot IS NULL AND f.end_snapshot IS NULL",
        [table],
    )
    out = []
    for file_id, path, relative in rows:
        values = ws.rows(
            f"SELECT partition_key_index, partition_value FROM {md('ducklake_file_partition_value')} "
            "WHERE data_file_id = ? ORDER BY partition_key_index",
            [file_id],
        )
        full = f"{lake.settings.lake_data_path}bronze/{table}/{path}" if relative else path
        out.append((full, values))
    return out


def test_csv_lands_as_files_in_the_ingestion_date_partition(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    for part in range(3):
        _drop(drops, f"part-{part}.csv", part * 40_000 + 1, 40_000)
    workspace.configure(
        [connection({"type": "files", "path": str(drops)}, [{"name": "orders", "path": "*.csv"}])]
    )
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert result.streams["orders"].records_committed == 120_000

    assert workspace.rows(
        "SELECT count(*), count(DISTINCT order_id), sum(order_id), sum(amount), "
        "count(DISTINCT status), count(DISTINCT _fleuve_source_file), "
        f"count(*) FILTER ({INGESTION_DATE} = CAST(timezone('UTC', _fleuve_extracted_at) AS DATE)) "
        "FROM bronze.orders"
    ) == [
        (
            120_000,
            120_000,
            7_200_060_000,
            sum((i * 37) % 1000 / 4 for i in range(1, 120_001)),
            4,
            3,
            120_000,
        )
    ]
    assert workspace.rows(
        "SELECT typeof(order_id), typeof(amount), typeof(created_at), typeof(_fleuve_ingestion_date) "
        "FROM bronze.orders LIMIT 1"
    ) == [("BIGINT", "DOUBLE", "TIMESTAMP WITH TIME ZONE", "DATE")]

    today = dt.datetime.now(dt.UTC).date().isoformat()
    files = _table_files(workspace, "orders")
    # One file per writing thread, in the date's folder, its partition value in the catalog.
    assert 1 <= len(files) <= (os.cpu_count() or 1)
    for path, values in files:
        assert Path(path).parent.name == f"{INGESTION_DATE}={today}", path
        assert values == [(0, today)], path
        meta = pq.ParquetFile(path).metadata
        assert meta.created_by.startswith("parquet-cpp-arrow"), meta.created_by
        # Full row groups across the files a thread wrote; only each file's last one is shorter.
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert sizes[:-1] == [65_536] * (len(sizes) - 1) and sizes[-1] <= 65_536, sizes
        encodings = {
            meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings
            for i in range(meta.num_columns)
        }
        # Repeating values are dictionary-encoded, unique ones are not.
        assert "RLE_DICTIONARY" in encodings["status"]
        assert "RLE_DICTIONARY" in encodings["_fleuve_sync_id"]
        assert "RLE_DICTIONARY" not in encodings["order_id"]
        # Parquet 2 encodings for the others, as the engine writes bronze files.
        assert "DELTA_BINARY_PACKED" in encodings["order_id"]
        assert "DELTA_LENGTH_BYTE_ARRAY" in encodings["note"]
    lake = workspace.project.lake  # type: ignore[union-attr]
    con = lake.connect()
    try:
        assert direct.partition_keys(lake, con, "orders") == [(INGESTION_DATE, "identity")]
    finally:
        con.close()
    # Partition pruning: a day without data reads no file.
    assert workspace.rows(
        f"SELECT count(*) FROM bronze.orders WHERE {INGESTION_DATE} = DATE '2000-01-01'"
    ) == [(0,)]

    # A full refresh replaces the rows; an unchanged drop folder read again gives the same table.
    again = workspace.sync(full_refresh=True)
    assert again.status == "succeeded", again.error
    assert workspace.rows("SELECT count(*), sum(order_id) FROM bronze.orders") == [
        (120_000, 7_200_060_000)
    ]
    assert len(_table_files(workspace, "orders")) == len(files)


def test_new_and_dropped_source_columns(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()

    def drop(name: str, header: str, ids: range, row: str) -> None:
        lines = "".join(row.format(i=i) + "\n" for i in ids)
        (drops / name).write_text(header + "\n" + lines, encoding="utf-8")

    drop("a.csv", "id,name,qty", range(1, 20_001), "{i},n{i},7")
    streams = [
        {
            "name": "items",
            "path": "*.csv",
            "sync_mode": "incremental",
            "destination_sync_mode": "append",
        }
    ]
    workspace.configure([connection({"type": "files", "path": str(drops)}, streams)])
    assert workspace.sync().status == "succeeded"
    # `qty` dropped, `extra` new, of the same type and in the same place.
    drop("b.csv", "id,name,extra", range(20_001, 20_101), "{i},n{i},2")
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert result.streams["items"].schema_changes == ["added column extra BIGINT"]
    # Counts of values, which DuckLake may answer from file statistics, and the rows themselves.
    assert workspace.rows(
        "SELECT count(*), count(qty), sum(qty), count(extra), sum(extra) FROM bronze.items"
    ) == [(20_100, 20_000, 140_000, 100, 200)]
    assert workspace.rows("SELECT count(*) FROM bronze.items WHERE qty IS NOT NULL") == [(20_000,)]
    assert workspace.rows(
        "SELECT min(id), max(id) FROM bronze.items WHERE qty IS NULL AND extra = 2"
    ) == [(20_001, 20_100)]
    # Back to the first layout: `extra` stays, NULL in the new rows.
    drop("c.csv", "id,name,qty", range(20_101, 20_151), "{i},n{i},1")
    assert workspace.sync().status == "succeeded"
    assert workspace.rows("SELECT count(qty), count(extra), count(*) FROM bronze.items") == [
        (20_050, 100, 20_150)
    ]


def test_files_added_on_a_postgres_catalog(tmp_path: Path, pg_schema: str) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    settings = {"lake": {"catalog": PG_ADMIN, "catalog_schema": pg_schema}}
    (folder / "fleuve.yml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    init_project(folder, "direct-pg")
    workspace = Workspace(folder)
    drops = tmp_path / "drops"
    for part in range(2):
        _drop(drops, f"part-{part}.csv", part * 20_000 + 1, 20_000)
    workspace.configure(
        [connection({"type": "files", "path": str(drops)}, [{"name": "orders", "path": "*.csv"}])]
    )
    try:
        for _ in range(2):  # created, then found partitioned by the date in the catalog
            result = workspace.sync()
            assert result.status == "succeeded", result.error
            assert workspace.rows("SELECT count(*), sum(order_id) FROM bronze.orders") == [
                (40_000, 800_020_000)
            ]
            files = _table_files(workspace, "orders")
            assert files and all(values == [(0, values[0][1])] for _, values in files)
            assert all(
                pq.ParquetFile(path).metadata.created_by.startswith("parquet-cpp-arrow")
                for path, _ in files
            )
    finally:
        workspace.close()


def test_bad_row_read_again_by_the_tolerant_reader_leaves_no_stray_file(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    _drop(drops, "a.csv", 1, 30_000)
    # Far past the sniffer's sample: Arrow's reader fails there, DuckDB's sets the row apart.
    _drop(drops, "b.csv", 30_001, 30_000, tail="60001,paid,not-a-number,x,2026-01-01 00:00:00+00\n")
    workspace.configure(
        [
            connection(
                {"type": "files", "path": str(drops)},
                [{"name": "orders", "path": "*.csv"}],
                max_rejected_ratio=0.01,
            )
        ]
    )
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert result.streams["orders"].records_committed == 60_000
    assert result.streams["orders"].records_rejected == 1
    assert workspace.rows("SELECT count(*), sum(order_id) FROM bronze.orders") == [
        (60_000, 60_000 * 60_001 // 2)
    ]
    registered = {path for path, _ in _table_files(workspace, "orders")}
    on_disk = {
        str(p)
        for p in (Path(workspace.project.lake.settings.lake_data_path) / "bronze" / "orders").rglob(  # type: ignore[union-attr]
            "*.parquet"
        )
    }
    assert on_disk == registered


def test_files_of_a_transaction_that_does_not_commit_are_deleted(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drops = tmp_path / "drops"
    _drop(drops, "a.csv", 1, 50_000)
    workspace.configure(
        [
            connection(
                {"type": "files", "path": str(drops)},
                [{"name": "orders", "path": "*.csv"}],
                max_retries=0,
            )
        ]
    )
    # A catalog failing after the files were added, just before the commit, cannot be caused
    # on demand; the state write is made to fail in its place.
    from fleuve.ingest import load

    def failing(*args: object, **kwargs: object) -> None:
        raise duckdb.IOException("IO Error: the catalog went away")

    monkeypatch.setattr(load, "write_state", failing)
    result = workspace.sync()
    assert result.status == "failed" and "catalog went away" in (result.error or "")
    folder = Path(workspace.project.lake.settings.lake_data_path) / "bronze" / "orders"  # type: ignore[union-attr]
    assert not list(folder.rglob("*.parquet"))

    monkeypatch.undo()
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert workspace.rows("SELECT count(*) FROM bronze.orders") == [(50_000,)]
    assert {str(p) for p in folder.rglob("*.parquet")} == {
        path for path, _ in _table_files(workspace, "orders")
    }


def test_table_partitioned_otherwise_is_loaded_by_the_engine(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    _drop(drops, "a.csv", 1, 1_000)
    workspace.configure(
        [connection({"type": "files", "path": str(drops)}, [{"name": "orders", "path": "*.csv"}])]
    )
    lake = workspace.project.lake  # type: ignore[union-attr]

    # A table partitioned by year, month and day of the extraction time, without the date
    # column, as bronze tables were laid out before: it keeps its layout.
    def legacy(con):  # type: ignore[no-untyped-def]
        con.execute(
            "CREATE TABLE bronze.orders (order_id BIGINT, status VARCHAR, amount DOUBLE, note VARCHAR, "
            "created_at TIMESTAMPTZ, _fleuve_extracted_at TIMESTAMPTZ, _fleuve_sync_id VARCHAR, "
            "_fleuve_source_file VARCHAR)"
        )
        con.execute(
            "ALTER TABLE bronze.orders SET PARTITIONED BY (year(_fleuve_extracted_at), "
            "month(_fleuve_extracted_at), day(_fleuve_extracted_at))"
        )

    lake.commit(legacy)
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert workspace.rows("SELECT count(*), sum(order_id) FROM bronze.orders") == [(1_000, 500_500)]
    columns = [r[0] for r in workspace.rows("DESCRIBE bronze.orders")]
    assert INGESTION_DATE not in columns
    for path, values in _table_files(workspace, "orders"):
        assert [v[0] for v in values] == [0, 1, 2], path
        assert pq.ParquetFile(path).metadata.created_by.startswith("DuckDB"), path


def _encodings(meta: pq.FileMetaData) -> dict[str, tuple[str, ...]]:
    """Encodings of each column in the first row group of a Parquet file."""
    group = meta.row_group(0)
    return {
        group.column(i).path_in_schema: group.column(i).encodings for i in range(meta.num_columns)
    }


def _on_disk(ws: Workspace, table: str) -> set[str]:
    folder = Path(ws.project.lake.settings.lake_data_path) / "bronze" / table  # type: ignore[union-attr]
    return {str(p) for p in folder.rglob("*.parquet")}


def test_database_table_lands_as_files_copied_by_the_engine(
    workspace: Workspace, pg_schema: str
) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as pg:
        pg.execute(
            f"CREATE TABLE {pg_schema}.orders AS SELECT i::bigint AS id, "
            "((i * 37 % 1000) / 4.0)::numeric(12,2) AS amount, 'note ' || i AS note, "
            "timestamptz '2026-01-01 00:00+00' + i * interval '1 second' AS updated_at, "
            "jsonb_build_object('k', i % 7) AS doc, md5(i::text)::uuid AS ref, "
            "ARRAY[i, i + 1] AS pair, 'shop ' || i % 3000 AS shop, 'city ' || i % 6000 AS city "
            "FROM generate_series(1, 150000) AS i"
        )
        pg.execute(f"ALTER TABLE {pg_schema}.orders ADD PRIMARY KEY (id)")
    streams = [
        {"name": "orders", "table": f"{pg_schema}.orders"},
        {
            "name": "orders_latest",
            "table": f"{pg_schema}.orders",
            "sync_mode": "incremental",
            "destination_sync_mode": "append_dedup",
            "cursor_field": "updated_at",
            "primary_key": ["id"],
        },
    ]
    workspace.configure([connection({"type": "postgres", "dsn": PG_ADMIN}, streams)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    today = dt.datetime.now(dt.UTC).date().isoformat()
    expected = (150_000, 11_250_075_000, sum(i * 37 % 1000 / 4 for i in range(1, 150_001)))
    for table in ("orders", "orders_latest"):
        assert workspace.rows(
            f"SELECT count(*), sum(id), sum(amount)::DOUBLE FROM bronze.{table}"
        ) == [expected]
        assert workspace.rows(
            f"SELECT typeof(amount), typeof(updated_at), typeof(doc), typeof(ref), typeof(pair), "
            f"doc->>'k', replace(ref::VARCHAR, '-', ''), pair FROM bronze.{table} WHERE id = 10"
        ) == [
            (
                "DECIMAL(12,2)",
                "TIMESTAMP WITH TIME ZONE",
                "JSON",
                "UUID",
                "INTEGER[]",
                "3",
                hashlib.md5(b"10").hexdigest(),
                [10, 11],
            )
        ]
        files = _table_files(workspace, table)
        # One file per engine thread at most, named by the COPY of this sync, in the date's folder.
        assert 1 <= len(files) <= (os.cpu_count() or 1)
        for path, values in files:
            assert re.fullmatch(r"ducklake-[0-9a-f-]{36}_\d+\.parquet", Path(path).name), path
            assert Path(path).parent.name == f"{INGESTION_DATE}={today}", path
            assert values == [(0, today)], path
            meta = pq.ParquetFile(path).metadata
            assert meta.created_by.startswith("DuckDB"), meta.created_by
            sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            assert max(sizes) <= 65_536, sizes
            encodings = _encodings(meta)
            assert "DELTA_BINARY_PACKED" in encodings["id"]
            # A dictionary for columns repeating each value 16 times or more in a row group:
            # 3,000 values in 65,536 rows, not 6,000 (`direct._DICTIONARY_SHARE`).
            assert "RLE_DICTIONARY" in encodings["shop"]
            assert "DELTA_LENGTH_BYTE_ARRAY" in encodings["city"]
        assert _on_disk(workspace, table) == {path for path, _ in files}
    first_files = {path for path, _ in _table_files(workspace, "orders")}
    first_latest = {path for path, _ in _table_files(workspace, "orders_latest")}

    # Synced again: the full refresh replaces its files, the incremental stream merges the change.
    with psycopg.connect(PG_ADMIN, autocommit=True) as pg:
        pg.execute(
            f"UPDATE {pg_schema}.orders SET amount = amount + 1, "
            "updated_at = updated_at + interval '1 year' WHERE id <= 1000"
        )
    again = workspace.sync()
    assert again.status == "succeeded", again.error
    assert workspace.rows("SELECT count(*), sum(amount)::DOUBLE FROM bronze.orders") == [
        (150_000, expected[2] + 1_000)
    ]
    assert workspace.rows("SELECT count(*), sum(amount)::DOUBLE FROM bronze.orders_latest") == [
        (150_000, expected[2] + 1_000)
    ]
    # The merge's files are written by the engine's insert, in Parquet 2 as well.
    merged = {path for path, _ in _table_files(workspace, "orders_latest")} - first_latest
    assert merged and all(
        "DELTA_BINARY_PACKED" in _encodings(pq.ParquetFile(path).metadata)["id"] for path in merged
    )
    # The first sync's files are no longer the table's (earlier snapshots keep them).
    live = {path for path, _ in _table_files(workspace, "orders")}
    assert live and live.isdisjoint(first_files) and live <= _on_disk(workspace, "orders")


def _numbers_query(workspace: Workspace, query: str) -> None:
    """Declare one PostgreSQL query stream, `numbers`, tried once."""
    workspace.configure(
        [
            connection(
                {"type": "postgres", "dsn": PG_ADMIN},
                [{"name": "numbers", "query": query}],
                max_retries=0,
            )
        ]
    )


def test_copy_failing_midway_leaves_no_file_and_keeps_the_table(
    workspace: Workspace, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _numbers_query(
        workspace, "SELECT i::bigint AS n, 'row ' || i AS label FROM generate_series(1, 1000) AS i"
    )
    assert workspace.sync().status == "succeeded"
    # PostgreSQL fails on row 400,000, after the engine has written rows of this sync.
    _numbers_query(
        workspace,
        "SELECT i::bigint AS n, 'row ' || (i / (400000 - i)) AS label "
        "FROM generate_series(1, 500000) AS i",
    )
    discarded: list[str] = []
    discard = direct.discard
    monkeypatch.setattr(
        direct, "discard", lambda lake, paths: (discarded.extend(paths), discard(lake, paths))
    )
    result = workspace.sync()
    assert result.status == "failed" and "division by zero" in (result.error or "")
    assert discarded, "the failed COPY had written no file: the test must fail later in the copy"
    assert not any(Path(p).exists() for p in discarded)
    assert workspace.rows("SELECT count(*), sum(n) FROM bronze.numbers") == [(1_000, 500_500)]
    assert _on_disk(workspace, "numbers") == {
        path for path, _ in _table_files(workspace, "numbers")
    }


def test_rows_land_as_files_in_a_bucket_lake(
    tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    bucket = s3_server.bucket()
    settings = s3_server.settings(bucket)
    (folder / "fleuve.yml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    init_project(folder, "direct-s3")
    workspace = Workspace(folder)

    def objects() -> set[str]:
        pages = s3_server.client().get_paginator("list_objects_v2")
        return {
            f"s3://{bucket}/{o['Key']}"
            for page in pages.paginate(Bucket=bucket, Prefix="lake/bronze/numbers/")
            for o in page.get("Contents", [])
        }

    try:
        _numbers_query(
            workspace,
            "SELECT i::bigint AS n, 'row ' || i AS label FROM generate_series(1, 200000) AS i",
        )
        result = workspace.sync()
        assert result.status == "succeeded", result.error
        assert workspace.rows("SELECT count(*), sum(n) FROM bronze.numbers") == [
            (200_000, 20_000_100_000)
        ]
        today = dt.datetime.now(dt.UTC).date().isoformat()
        files = {path for path, _ in _table_files(workspace, "numbers")}
        assert files and files == objects()
        for path in files:
            assert f"/bronze/numbers/{INGESTION_DATE}={today}/" in path, path
            assert re.fullmatch(r"ducklake-[0-9a-f-]{36}_\d+\.parquet", path.rsplit("/", 1)[1])

        # PostgreSQL fails on row 150,000 of the next read: no object is left of it.
        _numbers_query(
            workspace,
            "SELECT i::bigint AS n, 'row ' || (i / (150000 - i)) AS label "
            "FROM generate_series(1, 200000) AS i",
        )
        result = workspace.sync(full_refresh=True)
        assert result.status == "failed" and "division by zero" in (result.error or "")
        assert objects() == files

        # A failure after the files were written and added (injected at the state write, as a
        # catalog failing at that point cannot be caused on demand): the objects stay in the
        # bucket, referenced by no snapshot, and go as orphans (`Lake.maintain` takes those a
        # day old; here, all of them).
        _numbers_query(
            workspace,
            "SELECT i::bigint AS n, 'row ' || i AS label FROM generate_series(1, 1000) AS i",
        )
        from fleuve.ingest import load

        def failing(*args: object, **kwargs: object) -> None:
            raise duckdb.IOException("IO Error: the catalog went away")

        monkeypatch.setattr(load, "write_state", failing)
        result = workspace.sync(full_refresh=True)
        assert result.status == "failed" and "catalog went away" in (result.error or "")
        assert objects() > files
        assert workspace.rows("SELECT count(*), sum(n) FROM bronze.numbers") == [
            (200_000, 20_000_100_000)
        ]
        workspace.rows("CALL ducklake_delete_orphaned_files('lake', older_than => now())")
        assert objects() == files
        assert workspace.rows("SELECT count(*), sum(n) FROM bronze.numbers") == [
            (200_000, 20_000_100_000)
        ]
    finally:
        workspace.close()


def test_128_bit_integers_are_stored_exactly(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    big = 2**100
    (drops / "a.jsonl").write_text(
        "".join(f'{{"id": {i}, "big": "{big + i}"}}\n' for i in range(1, 101)), encoding="utf-8"
    )
    streams = [{"name": "wide", "path": "*.jsonl", "options": {"types": {"big": "HUGEINT"}}}]
    workspace.configure([connection({"type": "files", "path": str(drops)}, streams)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    # DuckDB writes 128-bit integers to Parquet as DOUBLE: bronze keeps them as DECIMAL(38,0).
    assert workspace.rows(
        "SELECT count(*), sum(big)::VARCHAR, typeof(any_value(big)) FROM bronze.wide"
    ) == [(100, str(100 * big + 5050), "DECIMAL(38,0)")]
    assert stored_type("STRUCT(a UHUGEINT[], b HUGEINT)") == (
        "STRUCT(a DECIMAL(38,0)[], b DECIMAL(38,0))"
    )


def test_types_parquet_cannot_map_back_are_inserted_by_the_engine(
    workspace: Workspace, pg_schema: str
) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as pg:
        pg.execute(
            f"CREATE TABLE {pg_schema}.shifts AS SELECT i AS id, "
            "timetz '10:00:00+02' + i * interval '1 minute' AS starts "
            "FROM generate_series(1, 500) AS i"
        )
    streams = [{"name": "shifts", "table": f"{pg_schema}.shifts"}]
    workspace.configure([connection({"type": "postgres", "dsn": PG_ADMIN}, streams)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    # TIMETZ is kept as its UTC time (as Parquet stores it), whichever offset it came with.
    assert workspace.rows(
        "SELECT count(*), typeof(any_value(starts)), "
        "min(starts)::VARCHAR, max(starts)::VARCHAR FROM bronze.shifts"
    ) == [(500, "TIME WITH TIME ZONE", "08:01:00+00", "16:20:00+00")]
    for path, _ in _table_files(workspace, "shifts"):
        assert not re.fullmatch(r"ducklake-[0-9a-f-]{36}_\d+\.parquet", Path(path).name), path


@pytest.mark.slow
def test_sigkill_during_csv_syncs_never_loses_or_duplicates(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    streams = [
        # New files only, appended; and the whole folder again each time, swapped in.
        {
            "name": "orders",
            "path": "*.csv",
            "sync_mode": "incremental",
            "destination_sync_mode": "append",
        },
        {"name": "snapshot", "path": "*.csv"},
    ]
    workspace.configure([connection({"type": "files", "path": str(drops)}, streams, max_retries=0)])
    rng = random.Random(20261126)
    killed, next_id, runs = 0, 1, 20
    for run in range(runs):
        for part in range(2):
            _drop(drops, f"run-{run:02d}-{part}.csv", next_id, 40_000)
            next_id += 40_000
        killed += sync_killed_after(workspace.folder, rng.uniform(0.5, 3.0))

        result = workspace.sync()
        assert result.status == "succeeded", f"run {run}: {result.error}"
        total = next_id - 1
        for table in ("orders", "snapshot"):
            assert workspace.rows(
                f"SELECT count(*), count(DISTINCT order_id), sum(order_id) FROM bronze.{table}"
            ) == [(total, total, total * (total + 1) // 2)], f"run {run}, {table}"
    assert killed >= runs // 2, f"only {killed} of {runs} runs were killed mid-way"

    # Files of killed syncs are referenced by no snapshot; maintenance deletes those, once a
    # day old, and the tables read the same after it.
    lake = workspace.project.lake  # type: ignore[union-attr]
    md = lake.metadata_table
    referenced = {
        str(Path(lake.settings.lake_data_path) / "bronze" / table / path)
        for table, path in workspace.rows(
            f"SELECT t.table_name, f.path FROM {md('ducklake_data_file')} f "
            f"JOIN {md('ducklake_table')} t USING (table_id)"
        )
    }
    on_disk = {str(p) for p in (Path(lake.settings.lake_data_path) / "bronze").rglob("*.parquet")}
    orphans = on_disk - referenced - {p for p in on_disk if "_fleuve_state" in p}
    day_ago = time.time() - 2 * 86400
    for path in orphans:
        os.utime(path, (day_ago, day_ago))
    lake.maintain()
    left = {str(p) for p in (Path(lake.settings.lake_data_path) / "bronze").rglob("*.parquet")}
    assert not (left & orphans)
    for table in ("orders", "snapshot"):
        total = next_id - 1
        assert workspace.rows(f"SELECT count(*), sum(order_id) FROM bronze.{table}") == [
            (total, total * (total + 1) // 2)
        ]
