"""Files: encodings, delimiters, compression, JSON shapes, Parquet, changed files, bad rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from fleuve.lake import connect_duckdb
from tests.ingest.conftest import Workspace, connection


def _files(folder: Path, streams: list[dict], **settings: object) -> dict:
    return connection({"type": "files", "path": str(folder)}, streams, **settings)


def test_encodings_delimiters_and_compression(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    (drops / "clients").mkdir(parents=True)
    # UTF-8 with a byte-order mark, semicolons; Latin-1 with tabs; gzip; zstd.
    (drops / "clients" / "a.csv").write_bytes(
        "\ufeffid;nom;ville\n1;Élodie;Orléans\n2;Zoë;Besançon\n".encode()
    )
    (drops / "clients" / "b.csv").write_bytes("id;nom;ville\n3;Jérôme;Châlons\n".encode("latin-1"))
    with gzip.open(drops / "clients" / "c.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write("id;nom;ville\n4;李小龙;北京\n")
    con = connect_duckdb()
    con.execute(
        "COPY (SELECT 5 AS id, 'محمد' AS nom, 'الرباط' AS ville) TO "
        f"'{drops / 'clients' / 'd.csv.zst'}' (HEADER, DELIMITER ';', COMPRESSION zstd)"
    )
    (drops / "events.tsv").write_text("event_id\tkind\n1\tview\n2\tclick\n", encoding="utf-8")
    workspace.configure(
        [
            _files(
                drops,
                [
                    {"name": "clients", "path": "clients/*"},
                    {"name": "events", "path": "events.tsv"},
                ],
            )
        ]
    )
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert workspace.rows("SELECT id, nom, ville FROM bronze.clients ORDER BY id") == [
        (1, "Élodie", "Orléans"),
        (2, "Zoë", "Besançon"),
        (3, "Jérôme", "Châlons"),
        (4, "李小龙", "北京"),
        (5, "محمد", "الرباط"),
    ]
    assert workspace.rows("SELECT event_id, kind FROM bronze.events ORDER BY 1") == [
        (1, "view"),
        (2, "click"),
    ]
    files = workspace.rows("SELECT count(DISTINCT _fleuve_source_file) FROM bronze.clients")
    assert files == [(4,)]


def test_json_nested_kept_or_flattened_and_parquet(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    docs = [
        {"Order ID": 1, "customer": {"name": "Élodie", "address": {"city": "Lyon"}}, "tags": ["a"]},
        {"Order ID": 2, "customer": {"name": "佐藤", "address": {"city": "東京"}}, "tags": []},
    ]
    (drops / "orders.json").write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    (drops / "orders.jsonl").write_text(
        "\n".join(json.dumps(d, ensure_ascii=False) for d in docs) + "\n", encoding="utf-8"
    )
    con = connect_duckdb()
    con.execute(
        f"COPY (SELECT range AS id, 'p' || range AS label FROM range(1000)) TO "
        f"'{drops / 'products.parquet'}' (FORMAT parquet)"
    )
    workspace.configure(
        [
            _files(
                drops,
                [
                    {"name": "kept", "path": "orders.json"},
                    {"name": "flat", "path": "orders.jsonl", "flatten": True},
                    {"name": "products", "path": "*.parquet"},
                ],
            )
        ]
    )
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    kept = workspace.rows(
        "SELECT order_id, typeof(customer), customer->>'$.address.city' FROM bronze.kept ORDER BY 1"
    )
    assert kept == [(1, "JSON", "Lyon"), (2, "JSON", "東京")]
    flat = workspace.rows(
        "SELECT order_id, customer_name, customer_address_city, typeof(tags) "
        "FROM bronze.flat ORDER BY 1"
    )
    assert flat == [(1, "Élodie", "Lyon", "JSON"), (2, "佐藤", "東京", "JSON")]
    assert workspace.rows("SELECT count(*), sum(id) FROM bronze.products") == [(1000, 499500)]


def test_incremental_reads_only_new_or_changed_files(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "day1.csv").write_text("id,v\n1,a\n2,b\n", encoding="utf-8")
    (drops / "day2.csv").write_text("id,v\n3,c\n", encoding="utf-8")
    stream = {
        "name": "days",
        "path": "*.csv",
        "sync_mode": "incremental",
        "destination_sync_mode": "append",
    }
    workspace.configure([_files(drops, [stream])])
    assert workspace.sync().streams["days"].records_committed == 3
    # Nothing new: nothing read.
    second = workspace.sync().streams["days"]
    assert (second.records_committed, second.bytes_read) == (0, 0)
    # A new file and a corrected one: the corrected file's rows replace its earlier rows.
    (drops / "day3.csv").write_text("id,v\n4,d\n", encoding="utf-8")
    (drops / "day1.csv").write_text("id,v\n1,A\n2,B\n5,E\n", encoding="utf-8")
    third = workspace.sync().streams["days"]
    assert third.records_committed == 4
    assert workspace.rows("SELECT id, v FROM bronze.days ORDER BY id") == [
        (1, "A"),
        (2, "B"),
        (3, "c"),
        (4, "d"),
        (5, "E"),
    ]


def test_bad_rows_go_to_rejected(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    good = "\n".join(f"{i},item {i},{i}.5" for i in range(1, 201))
    (drops / "items.csv").write_text(
        f"id,label,price\n{good}\n201,broken,not-a-number\n202,short\n", encoding="utf-8"
    )
    (drops / "events.jsonl").write_text(
        '{"id": 1, "kind": "view"}\n{"id": 2, "kind": \n{"id": 3, "kind": "click"}\n',
        encoding="utf-8",
    )
    streams = [
        {"name": "items", "path": "items.csv", "options": {"types": {"price": "DOUBLE"}}},
        {"name": "events", "path": "events.jsonl", "max_rejected_ratio": 0.5},
    ]
    workspace.configure([_files(drops, streams, max_rejected_ratio=0.02)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert result.streams["items"].records_committed == 200
    assert result.streams["items"].records_rejected == 2
    assert result.rejected == 3
    rejected = workspace.rows(
        "SELECT stream, location, reason, raw FROM bronze._rejected ORDER BY stream, location"
    )
    assert [(r[0], r[1].rsplit("/", 1)[-1]) for r in rejected] == [
        ("events", "events.jsonl:2"),
        ("items", "items.csv:202"),
        ("items", "items.csv:203"),
    ]
    assert "price" in rejected[1][2] and rejected[1][3] == "201,broken,not-a-number"
    assert "MISSING COLUMNS" in rejected[2][2]
    assert workspace.rows("SELECT count(*) FROM bronze.events") == [(2,)]


def test_rejected_threshold_fails_the_stream_and_commits_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "items.csv").write_text("id,price\n1,1.5\n2,oops\n3,2.5\n4,nope\n", encoding="utf-8")
    stream = {"name": "items", "path": "items.csv", "options": {"types": {"price": "DOUBLE"}}}
    workspace.configure([_files(drops, [stream], max_retries=0)])
    result = workspace.sync()
    assert result.status == "failed"
    assert "2 of 4 rows rejected" in result.errors["items"]
    assert "max_rejected_ratio" in result.errors["items"]
    # No data, no cursor; the rejected rows are kept to be looked at.
    assert workspace.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'items'") == [
        (0,)
    ]
    assert workspace.rows("SELECT count(*) FROM bronze._fleuve_state") == [(0,)]
    assert workspace.rows("SELECT count(*) FROM bronze._rejected WHERE stream = 'items'") == [(2,)]
