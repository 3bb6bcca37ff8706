"""Plain scans of lake tables read by Arrow from the table's files, and every case that must not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from fleuve.engine import Engine, core, scan
from fleuve.engine.errors import QueryCanceled
from fleuve.project import Project

ITEMS = """
CREATE TABLE gold.items AS
SELECT i AS id, 'item ' || i AS label, (i / 4)::DECIMAL(12, 2) AS price,
       DATE '2026-01-01' + (i % 300)::INT AS day,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS seen_at,
       i % 3 = 0 AS flag, CASE WHEN i % 7 = 0 THEN NULL ELSE i * 1.5 END AS score
FROM range(20000) t(i)
"""


@pytest.fixture
def arrow_scans(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Lets every table take the Arrow path; records, per query, whether it did."""
    monkeypatch.setattr(scan, "MIN_BYTES", 0)
    taken: list[bool] = []
    real: Callable[..., Any] = scan.open_scan

    def spy(*args: Any) -> Any:
        reader = real(*args)
        taken.append(reader is not None)
        return reader

    monkeypatch.setattr(core, "open_scan", spy)
    with engine.project.lake.session() as con:
        con.execute(ITEMS)
    return taken


def _duckdb(project: Project, sql: str) -> pa.Table:
    with project.lake.session() as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).to_arrow_table()


def test_a_plain_scan_is_read_by_arrow_with_duckdbs_schema_and_rows(
    engine: Engine, arrow_scans: list[bool]
) -> None:
    for sql, direct in [
        ("SELECT * FROM gold.items", "SELECT * FROM lake.gold.items"),
        (
            "SELECT label AS name, id FROM gold.items",
            "SELECT label AS name, id FROM lake.gold.items",
        ),
        (
            "SELECT i.seen_at, i.flag FROM gold.items AS i",
            "SELECT seen_at, flag FROM lake.gold.items",
        ),
    ]:
        got = engine.execute(sql, user="admin").read_all()
        want = _duckdb(engine.project, direct)
        assert got.schema == want.schema
        order = [(n, "ascending") for n in got.schema.names]
        assert got.sort_by(order).equals(want.sort_by(order)), sql
    assert arrow_scans == [True, True, True]


def test_anything_but_a_plain_scan_goes_to_duckdb(engine: Engine, arrow_scans: list[bool]) -> None:
    for sql in [
        "SELECT * FROM gold.items WHERE id < 10",
        "SELECT * FROM gold.items LIMIT 10",
        "SELECT id + 1 AS next FROM gold.items",
        "SELECT DISTINCT flag FROM gold.items",
        "SELECT * FROM gold.items ORDER BY id",
        "SELECT i.id FROM gold.items i JOIN gold.items j ON i.id = j.id",
    ]:
        assert engine.execute(sql, user="admin").read_all().num_rows > 0
    assert arrow_scans and not any(arrow_scans)


@pytest.mark.parametrize(
    "change",
    [
        "DELETE FROM gold.items WHERE id % 10 = 0",  # a deletion file
        "INSERT INTO gold.items (id, label) VALUES (-1, 'inlined')",  # rows kept in the catalog
        "ALTER TABLE gold.items RENAME COLUMN label TO title",  # files name the old column
        "ALTER TABLE gold.items DROP COLUMN flag; ALTER TABLE gold.items ADD COLUMN flag BOOLEAN",
        "ALTER TABLE gold.items ADD COLUMN extra INTEGER DEFAULT 7",  # not in the files
    ],
)
def test_files_that_do_not_hold_exactly_the_table_go_to_duckdb(
    engine: Engine, arrow_scans: list[bool], change: str
) -> None:
    assert engine.execute("SELECT * FROM gold.items", user="admin").read_all().num_rows == 20000
    with engine.project.lake.session() as con:
        con.execute("CALL lake.set_option('data_inlining_row_limit', 10)")
        con.execute(change)
    got = engine.execute("SELECT * FROM gold.items", user="admin").read_all()
    want = _duckdb(engine.project, "SELECT * FROM lake.gold.items")
    assert got.schema == want.schema
    assert got.sort_by("id").equals(want.sort_by("id"))
    assert arrow_scans == [True, False]


def test_types_arrow_reads_otherwise_go_to_duckdb(engine: Engine, arrow_scans: list[bool]) -> None:
    with engine.project.lake.session() as con:
        con.execute("CREATE TABLE gold.keys AS SELECT uuid() AS id, i FROM range(100) t(i)")
    got = engine.execute("SELECT * FROM gold.keys", user="admin").read_all()
    assert got.schema.field("id").type == pa.string()  # as DuckDB gives a UUID
    assert got.num_rows == 100
    assert arrow_scans == [False]


def test_a_cancelled_arrow_scan_stops(engine: Engine, arrow_scans: list[bool]) -> None:
    result = engine.execute("SELECT * FROM gold.items", user="admin", batch_rows=1000)
    batches = iter(result.batches)
    next(batches)
    engine.cancel(result.job_id)
    with pytest.raises(QueryCanceled):
        for _ in batches:
            pass
    assert engine.job(result.job_id).state == "CANCELED"
    assert arrow_scans == [True]
