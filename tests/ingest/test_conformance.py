"""The suite every connector passes: check, discover, and each sync mode on real sources."""

from __future__ import annotations

from typing import Any

import pytest

from fleuve.ingest.connectors import CONNECTORS
from fleuve.ingest.discover import check_connection, discover_connection
from tests.ingest.conftest import Harness, Row, Workspace, connection, rows

MODES = [
    ("full_refresh", "overwrite"),
    ("full_refresh", "append"),
    ("incremental", "append"),
    ("incremental", "append_dedup"),
]
READ = (
    "SELECT id, name, round(CAST(amount AS DOUBLE), 2), "
    "CAST(CAST(updated_at AS TIMESTAMP) AS VARCHAR) FROM bronze.items ORDER BY ALL"
)


def _expect(data: list[Row]) -> list[tuple[Any, ...]]:
    return sorted(
        (r.id, r.name, round(float(r.amount), 2), r.updated_at.isoformat(" ")) for r in data
    )


def _stream(h: Harness, sync_mode: str, dest: str) -> dict[str, Any]:
    stream: dict[str, Any] = {
        "name": "items",
        **h.stream(),
        "sync_mode": sync_mode,
        "destination_sync_mode": dest,
        "primary_key": ["id"],
    }
    if sync_mode == "incremental":
        stream["cursor_field"] = "updated_at"
    return stream


def test_every_connector_is_in_the_suite() -> None:
    covered = {"postgres", "mysql", "sqlite", "files", "rest"}
    assert set(CONNECTORS) == covered


def test_check_and_discover(harness: Harness, workspace: Workspace) -> None:
    harness.load(rows(range(1, 11)))
    p = workspace.configure(
        [connection(harness.source, [_stream(harness, "full_refresh", "overwrite")])]
    )
    assert "reached" in check_connection(p.settings, p.lake, "src")
    catalog = discover_connection(p.settings, p.lake, "src")
    assert list(catalog["capabilities"]["sync_modes"]) == ["full_refresh", "incremental"]
    found = {s["name"].rsplit(".", 1)[-1]: s for s in catalog["streams"]}
    items = (
        found["items"]
        if "items" in found
        else next(s for s in catalog["streams"] if s["name"].startswith("items"))
    )
    assert [c["name"] for c in items["columns"]][:4] == ["id", "name", "amount", "updated_at"]
    assert "updated_at" in items["cursor_candidates"]
    if harness.kind in ("postgres", "mysql", "sqlite"):
        assert items["primary_key"] == ["id"]


@pytest.mark.parametrize(("sync_mode", "dest"), MODES, ids=["-".join(m) for m in MODES])
def test_sync_modes(harness: Harness, workspace: Workspace, sync_mode: str, dest: str) -> None:
    first = rows(range(1, 101))
    harness.load(first)
    workspace.configure([connection(harness.source, [_stream(harness, sync_mode, dest)])])

    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert workspace.rows(READ) == _expect(first)

    # New rows, two of them at the last cursor value already synced, and changed rows.
    added = rows([101, 102]) + rows(range(103, 106), minute=5)
    changed = rows(range(1, 6), minute=10, tag=" v2")
    harness.add(added)
    harness.change(changed)
    result = workspace.sync()
    assert result.status == "succeeded", result.error

    by_id = {r.id: r for r in first + added}
    by_id.update({r.id: r for r in changed})
    latest = list(by_id.values())
    files = harness.kind in ("files", "s3")
    every_version = first + added + changed  # what a full read of a drop folder returns
    expected = {
        ("full_refresh", "overwrite"): every_version if files else latest,
        ("full_refresh", "append"): first + (every_version if files else latest),
        ("incremental", "append"): first + added + changed,
        ("incremental", "append_dedup"): latest,
    }[(sync_mode, dest)]
    assert workspace.rows(READ) == _expect(expected)

    # Nothing new: the bronze table does not change (incremental) or is rebuilt the same.
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    again = expected + (every_version if files else latest) * (
        dest == "append" and sync_mode == "full_refresh"
    )
    assert workspace.rows(READ) == _expect(again)

    meta = workspace.rows(
        "SELECT count(*), count(DISTINCT _fleuve_sync_id), min(_fleuve_extracted_at) IS NOT NULL "
        "FROM bronze.items"
    )[0]
    assert meta[0] == len(again) and meta[1] >= 1 and meta[2]
    if files:
        names = workspace.rows("SELECT DISTINCT _fleuve_source_file FROM bronze.items")
        assert all(f.startswith(str(harness.source["path"])) for (f,) in names), names
    state = workspace.rows("SELECT stream, cursor_value FROM bronze._fleuve_state")
    assert [s[0] for s in state] == ["items"]
    if sync_mode == "incremental" and not files:
        assert state[0][1] is not None and "12:10:05" in state[0][1].replace("T", " ")


def test_values_keep_the_columns_established_types(harness: Harness, workspace: Workspace) -> None:
    """A value of another kind than the rest of its column keeps its text when the column is
    text, and otherwise sends its row to bronze._rejected, once; no value is stored changed."""
    harness.load(rows(range(1, 101)))
    stream = _stream(harness, "incremental", "append")
    workspace.configure([connection(harness.source, [stream], max_rejected_ratio=0.5)])
    assert workspace.sync().status == "succeeded"
    types = workspace.rows("SELECT column_name, column_type FROM (DESCRIBE bronze.items)")

    odd = rows([101, 102, 103], minute=5)
    kept = harness.add_odd(odd)
    if kept is None:
        pytest.skip(f"{harness.kind} refuses a value of another kind than its column's type")
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    items = result.streams["items"]
    assert (items.records_committed, items.records_rejected) == (2, 1)
    assert workspace.rows("SELECT id, name FROM bronze.items WHERE id > 100 ORDER BY id") == sorted(
        kept.items()
    )
    assert workspace.rows("SELECT column_name, column_type FROM (DESCRIBE bronze.items)") == types
    rejected = workspace.rows(
        "SELECT location, reason, raw FROM bronze._rejected WHERE _fleuve_sync_id LIKE ?",
        [f"{result.job_id}-%"],
    )
    assert len(rejected) == 1, rejected
    assert "amount" in rejected[0][1] and "n/a" in rejected[0][2]


def test_each_malformed_record_is_rejected_once(harness: Harness, workspace: Workspace) -> None:
    """Every record the source cannot hand over as a row is one row of bronze._rejected and
    counted once; the stream's other rows, in every script, are committed unchanged."""
    data = rows(range(1, 13))
    harness.load(data[:1])
    bad = harness.add_malformed(data[1:])
    if bad is None:
        pytest.skip(f"{harness.kind} hands over typed rows only: no record can be malformed")
    stream = _stream(harness, "full_refresh", "overwrite")
    workspace.configure([connection(harness.source, [stream], max_rejected_ratio=0.5)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    items = result.streams["items"]
    assert items.records_rejected == bad == result.rejected
    rejected = workspace.rows(
        "SELECT location, reason FROM bronze._rejected WHERE _fleuve_sync_id LIKE ?",
        [f"{result.job_id}-%"],
    )
    assert len(rejected) == bad and len({r[0] for r in rejected}) == bad, rejected
    assert all(r[1] for r in rejected)
    assert workspace.rows(READ) == _expect(data)
    if harness.kind in ("files", "s3"):
        # Rows and rejected lines name the files where the source has them (s3://...).
        base = str(harness.source["path"])
        files = workspace.rows("SELECT DISTINCT _fleuve_source_file FROM bronze.items")
        assert all(r[0].startswith(base) for r in rejected), rejected
        assert files and all(f.startswith(base) for (f,) in files), files
