"""Files: encodings, delimiters, compression, JSON shapes, Parquet, changed files, bad rows."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest

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


def _reader(workspace: Workspace, stream: str, *, scan: bool = True) -> tuple[str, int, int]:
    """The reader the files connector picks for `stream` ('arrow' or 'duckdb'), and the rows
    and bytes it reports as read while its relation is scanned once (if `scan`)."""
    import threading

    from fleuve.ingest.connectors import ExtractContext, connector_for

    project = workspace.project
    assert project is not None
    conn = project.settings.connection("src")
    settings = next(s for s in conn.streams if s.name == stream)
    connector = connector_for(conn, project.settings)
    seen = [0, 0]

    def on_rows(rows: int, nbytes: int) -> None:
        seen[0] += rows
        seen[1] += nbytes

    ctx = ExtractContext(
        scratch=workspace.folder / "scratch", cancelled=threading.Event(), on_rows=on_rows
    )
    with project.lake.session() as con:
        extract = connector.extract(con, settings, None, None, ctx)
        if scan:
            extract.scannable(con)
            con.execute(f"SELECT count(*) FROM ({extract.relation})").fetchall()
            if extract.describe:  # the columns Arrow's streams give, known before reading
                assert (
                    con.execute(f"DESCRIBE {extract.describe}").fetchall()
                    == con.execute(f"DESCRIBE {extract.relation}").fetchall()
                )
    return "arrow" if extract.arrow else "duckdb", seen[0], seen[1]


def test_clean_csv_is_read_by_arrow_as_duckdb_reads_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    # Quoted delimiters, quotes and line breaks, empty fields, ISO timestamps with and without
    # a zone, booleans, dates, a byte-order mark and a gzip file of the same shape.
    body = (
        "id;label;price;paid;day;local_time;utc_time\n"
        '1;"a;b";1.5;true;2026-01-02;2026-01-02 10:00:00;2026-01-02 10:00:00+02\n'
        '2;"say ""hi""";;false;2026-01-03;2026-01-03T11:30:00.25;2026-01-03 11:30:00Z\n'
        '3;"two\nlines";2.25;;;;\n'
        "4;;-7e2;true;2026-01-05;2026-01-05 00:00:00;2026-01-05 00:00:00-05:30\n"
    )
    (drops / "a.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    with gzip.open(drops / "b.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(body.replace("\n1;", "\n11;").replace("\n2;", "\n12;"))
    (drops / "latin.csv").write_bytes("id;nom\n1;Jérôme\n".encode("latin-1"))
    workspace.configure(
        [
            _files(
                drops,
                [
                    {"name": "clean", "path": "*.csv*"},
                    {"name": "typed", "path": "a.csv", "options": {"types": {"price": "DOUBLE"}}},
                    {"name": "latin", "path": "latin.csv"},
                ],
            )
        ]
    )
    (drops / "latin.csv").rename(drops / "latin.txt")
    # Arrow reports rows and file bytes as it reads (a.csv whole, the gzip file by blocks).
    size = sum(f.stat().st_size for f in drops.glob("*.csv*"))
    assert _reader(workspace, "clean") == ("arrow", 8, size)
    assert _reader(workspace, "typed")[0] == "duckdb"
    (drops / "latin.txt").rename(drops / "latin.csv")
    assert _reader(workspace, "latin")[0] == "duckdb"
    (drops / "latin.csv").unlink()
    result = workspace.sync(streams=["clean", "typed"])
    assert result.status == "succeeded", result.error
    assert result.streams["clean"].records_committed == 8
    cols = "id, label, price, paid, day, local_time, utc_time"
    con = connect_duckdb()
    files = [str(drops / "a.csv"), str(drops / "b.csv.gz")]
    expected = con.execute(f"SELECT {cols} FROM read_csv({files}) ORDER BY id").fetchall()
    assert workspace.rows(f"SELECT {cols} FROM bronze.clean ORDER BY id") == expected
    assert (
        workspace.rows(f"SELECT {cols} FROM bronze.typed ORDER BY id")
        == con.execute(f"SELECT {cols} FROM read_csv({files[:1]}) ORDER BY id").fetchall()
    )
    types = workspace.rows(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'bronze' AND table_name IN ('clean', 'typed') "
        f"AND column_name IN ({', '.join(repr(c) for c in cols.split(', '))}) "
        "ORDER BY table_name, ordinal_position"
    )
    assert types[:7] == types[7:]
    assert workspace.rows("SELECT count(DISTINCT _fleuve_source_file) FROM bronze.clean") == [(2,)]


def test_a_bad_row_sends_arrow_read_csv_back_to_duckdb_reader(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    good = "\n".join(f"{i},item {i}" for i in range(1, 101))
    # A row with an extra field: Arrow's reader stops at it, DuckDB's sets it apart.
    (drops / "items.csv").write_text(f"id,label\n{good}\n101,extra,field\n102,last\n")
    workspace.configure([_files(drops, [{"name": "items", "path": "items.csv"}])])
    assert _reader(workspace, "items", scan=False)[0] == "arrow"
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert result.attempts == 1
    items = result.streams["items"]
    assert (items.records_committed, items.records_rejected) == (101, 1)
    assert workspace.rows("SELECT count(*), max(id) FROM bronze.items") == [(101, 102)]
    rejected = workspace.rows("SELECT location, raw FROM bronze._rejected")
    assert [(r[0].rsplit("/", 1)[-1], r[1]) for r in rejected] == [
        ("items.csv:102", "101,extra,field")
    ]
    logs = "".join(f.read_text() for f in workspace.folder.rglob("fleuve.log"))
    assert "read again with the tolerant reader" in logs and "Expected 2 columns" in logs


def test_line_breaks_in_quoted_values_at_arrow_block_edges(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleuve.ingest.connectors import files

    drops = tmp_path / "drops"
    drops.mkdir()
    rows = "".join(f'{i:06d},"first line of {i:06d}\nsecond, line",{i}.5\n' for i in range(40_000))
    data = ("id,note,price\n" + rows).encode()
    # Arrow's first 1 MiB block ends at a line end inside a quoted value: read as single-line
    # values, a row would be cut in two there, silently.
    edge = data.rfind(b"\n", 0, 1 << 20)
    assert data[:edge].count(b'"') % 2 == 1
    (drops / "whole.csv").write_bytes(data)
    (drops / "blocks.csv").write_bytes(data + b'040000,"last\nrow",0.5\n')
    # whole.csv is parsed whole, blocks.csv (larger) block by block.
    monkeypatch.setattr(files, "_ARROW_WHOLE_FILE", len(data))
    workspace.configure([_files(drops, [{"name": "notes", "path": "*.csv"}])])
    assert _reader(workspace, "notes", scan=False)[0] == "arrow"
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert result.streams["notes"].records_committed == 80_001
    logs = "".join(f.read_text() for f in workspace.folder.rglob("fleuve.log"))
    assert "read again with the tolerant reader" not in logs  # all read by Arrow
    expected = connect_duckdb().execute(
        f"SELECT id, note, price FROM read_csv('{drops}/*.csv') ORDER BY ALL"
    )
    assert workspace.rows("SELECT id, note, price FROM bronze.notes ORDER BY ALL") == (
        expected.fetchall()
    )
    multiline = "SELECT count(*) FROM bronze.notes WHERE note = 'first line of ' || id || "
    assert workspace.rows(multiline + "chr(10) || 'second, line'") == [(80_000,)]
    assert workspace.rows("SELECT note FROM bronze.notes WHERE id = '040000'") == [("last\nrow",)]


def _rejected(workspace: Workspace) -> list[tuple[str, str, str]]:
    """(file:line, reason, raw) of the rejected rows, by line, with the file's name only."""
    found = workspace.rows("SELECT location, reason, raw FROM bronze._rejected")
    return sorted(
        ((loc.rsplit("/", 1)[-1], reason, raw) for loc, reason, raw in found),
        key=lambda r: int(r[0].rsplit(":", 1)[1]),
    )


def test_an_invalid_utf8_line_is_rejected_and_the_others_stay_utf8(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    good = "".join(f"{i},été {i},Noël\n" for i in range(3, 200)).encode()
    (drops / "a.csv").write_bytes(
        b"id,saison,fete\n1,\xc3\xa9t\xc3\xa9,No\xc3\xabl\n2,b\xffad,x\n" + good
    )
    workspace.configure([_files(drops, [{"name": "a", "path": "a.csv"}])])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    a = result.streams["a"]
    assert (a.records_committed, a.records_rejected) == (198, 1)
    assert workspace.rows("SELECT DISTINCT saison[:3], fete FROM bronze.a ORDER BY 1") == [
        ("été", "Noël")
    ]
    [(location, reason, raw)] = _rejected(workspace)
    assert location == "a.csv:3" and "invalid UTF-8" in reason and "0xFF" in reason
    assert raw == "2,b\ufffdad,x"
    logs = "".join(f.read_text() for f in workspace.folder.rglob("fleuve.log"))
    assert "lines set apart before parsing" in logs and '"invalid UTF-8": 1' in logs


def test_malformed_lines_are_rejected_once_each(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    good = "".join(f'{i},"item {i}"\n' for i in range(1, 301))
    # Two fields too many (DuckDB's reader reports that line twice), one too many, and a quote
    # left open on the last line.
    text = f'id,label\n{good}301,a,b,c\n302,d,e\n303,"unterminated\n'
    (drops / "items.csv").write_text(text, encoding="utf-8")
    workspace.configure([_files(drops, [{"name": "items", "path": "items.csv"}])])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    items = result.streams["items"]
    assert (items.records_committed, items.records_rejected, result.rejected) == (300, 3, 3)
    assert workspace.rows("SELECT count(*), max(id) FROM bronze.items") == [(300, 300)]
    found = _rejected(workspace)
    assert [(r[0], r[2]) for r in found] == [
        ("items.csv:302", "301,a,b,c"),
        ("items.csv:303", "302,d,e"),
        ("items.csv:304", '303,"unterminated'),
    ]
    assert "TOO MANY COLUMNS" in found[0][1] and "unterminated quote" in found[2][1]


def test_a_line_above_max_line_size_is_rejected_with_its_line(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    field = "x" * (3 << 20)
    (drops / "big.csv").write_text(f"id,txt\n1,hello\n2,{field}\n3,bye\n", encoding="utf-8")
    stream = {"name": "big", "path": "big.csv"}
    workspace.configure([_files(drops, [stream], max_rejected_ratio=0.5)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert workspace.rows("SELECT id, txt FROM bronze.big ORDER BY id") == [
        (1, "hello"),
        (3, "bye"),
    ]
    [(location, reason, raw)] = _rejected(workspace)
    assert location == "big.csv:3"
    assert "line too long: 3,145,731 bytes, above max_line_size (2,097,152 bytes)" in reason
    assert raw.startswith("2,xxx") and len(raw) < 2000

    # Raised, the limit lets the line through.
    stream["options"] = {"max_line_size": 4 << 20}
    workspace.configure([_files(drops, [stream])])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert workspace.rows("SELECT id, length(txt) FROM bronze.big ORDER BY id") == [
        (1, 5),
        (2, 3 << 20),
        (3, 3),
    ]

    stream["options"] = {"max_line_size": "big"}
    workspace.configure([_files(drops, [stream], max_retries=0)])
    result = workspace.sync()
    assert result.status == "failed" and "max_line_size" in result.errors["big"]


@pytest.mark.parametrize("at", [2, 100, 5000])
def test_a_line_above_max_line_size_anywhere_in_a_file_is_rejected(
    workspace: Workspace, tmp_path: Path, at: int
) -> None:
    """Not only in a file's first lines: a long line far on is set apart before any reader
    parses it (a reader would store it, or take minutes over a line of tens of MB)."""
    drops = tmp_path / "drops"
    drops.mkdir()
    lines = [f"{i},item {i}\n" for i in range(1, 6001)]
    lines[at - 2] = f"{at - 1}," + "y" * 9000 + "\n"
    (drops / "far.csv").write_text("id,txt\n" + "".join(lines), encoding="utf-8")
    stream = {"name": "far", "path": "far.csv", "options": {"max_line_size": 4096}}
    workspace.configure([_files(drops, [stream])])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    far = result.streams["far"]
    assert (far.records_committed, far.records_rejected) == (5999, 1)
    assert workspace.rows("SELECT count(*) FROM bronze.far WHERE length(txt) > 4096") == [(0,)]
    [(location, reason, _)] = _rejected(workspace)
    assert location == f"far.csv:{at}" and f"line too long: {len(lines[at - 2]):,} bytes" in reason


@pytest.mark.parametrize("size", [1024, 4096, 1 << 20])
def test_the_long_line_scan_finds_exactly_the_lines_above_the_limit(
    tmp_path: Path, size: int
) -> None:
    from fleuve.ingest.connectors.files import has_long_line

    file = tmp_path / "lines.csv"
    for length in (size - 1, size, size + 1, 2 * size, 3 * size + 7):
        for where in (0, 1, 500):
            body = [b"a,b\n"] * 1000
            body.insert(where, b"x" * length + b"\n")
            file.write_bytes(b"".join(body))
            assert has_long_line(str(file), size) == (length > size), (length, where)
        file.write_bytes(b"a\n" * 10 + b"x" * length)  # the last line, without a newline
        assert has_long_line(str(file), size) == (length > size), length


def test_a_new_file_is_read_with_the_streams_established_types(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "d1.csv").write_text(
        "id,code,ts\n1,A7,2026-01-01 10:00:00\n2,B8,2026-01-02 10:00:00\n", encoding="utf-8"
    )
    stream = {
        "name": "days",
        "path": "*.csv",
        "sync_mode": "incremental",
        "destination_sync_mode": "append",
    }
    workspace.configure([_files(drops, [stream], max_rejected_ratio=0.5)])
    assert workspace.sync().status == "succeeded"
    # Read alone, this file's codes are numbers (without their zeros) and its ts text.
    (drops / "d2.csv").write_text(
        "id,code,ts\n3,0042,2026-01-03 10:00:00\n4,0043,not a date\n5,0044,2026-01-05 10:00:00\n",
        encoding="utf-8",
    )
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    days = result.streams["days"]
    assert (days.records_committed, days.records_rejected, days.schema_changes) == (2, 1, [])
    assert workspace.rows("SELECT id, code, CAST(ts AS VARCHAR) FROM bronze.days ORDER BY id") == [
        (1, "A7", "2026-01-01 10:00:00"),
        (2, "B8", "2026-01-02 10:00:00"),
        (3, "0042", "2026-01-03 10:00:00"),
        (5, "0044", "2026-01-05 10:00:00"),
    ]
    [(location, reason, raw)] = _rejected(workspace)
    assert location == "d2.csv:3" and "ts" in reason and raw == "4,0043,not a date"


def test_json_values_of_mixed_kinds_keep_one_type_per_column(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    docs = [
        {"id": 1, "code": "n1", "qty": 1},
        {"id": 2, "code": 5, "qty": 2},
        {"id": 3, "code": "n3", "qty": "n/a"},
        {"id": 4, "code": "n4", "qty": 4},
    ]
    (drops / "a.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    workspace.configure([_files(drops, [{"name": "a", "path": "a.jsonl"}], max_rejected_ratio=0.5)])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    a = result.streams["a"]
    assert (a.records_committed, a.records_rejected) == (3, 1)
    assert workspace.rows("SELECT id, code, qty FROM bronze.a ORDER BY id") == [
        (1, "n1", 1),
        (2, "5", 2),
        (4, "n4", 4),
    ]
    [(location, reason, raw)] = _rejected_rows(workspace)
    assert location == "a.jsonl, row 3" and 'column qty: "n/a" is not a BIGINT' in reason
    assert json.loads(raw)["id"] == 3


def _rejected_rows(workspace: Workspace) -> list[tuple[str, str, str]]:
    """(location with the file's name only, reason, raw) of the rejected rows."""
    found = workspace.rows("SELECT location, reason, raw FROM bronze._rejected")
    return [(loc.rsplit("/", 1)[-1], reason, raw) for loc, reason, raw in found]


def test_discover_describes_files_with_bad_lines(workspace: Workspace, tmp_path: Path) -> None:
    from fleuve.ingest.discover import discover_connection

    drops = tmp_path / "drops"
    drops.mkdir()
    field = "x" * (3 << 20)
    (drops / "big.csv").write_text(f"id,txt\n1,hello\n2,{field}\n3,bye\n", encoding="utf-8")
    (drops / "open.csv").write_text('id,label\n1,a\n2,"never closed\n', encoding="utf-8")
    streams = [{"name": "big", "path": "big.csv"}, {"name": "open", "path": "open.csv"}]
    project = workspace.configure([_files(drops, streams)])
    catalog = discover_connection(project.settings, project.lake, "src")
    found = {s["name"]: [(c["name"], c["type"]) for c in s["columns"]] for s in catalog["streams"]}
    assert found == {
        "big": [("id", "BIGINT"), ("txt", "VARCHAR")],
        "open": [("id", "BIGINT"), ("label", "VARCHAR")],
    }
    assert not list(Path(tempfile.gettempdir()).glob("fleuve-discover-*"))
