"""Jobs: the JobInfoRead shape, retries with backoff, timeouts, dead processes, atomic swaps."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pyarrow as pa

from fleuve.ingest import job_info, recent_jobs
from fleuve.ingest.sync_jobs import start_job
from fleuve.metadata import Job
from tests.conftest import PG_ADMIN
from tests.ingest.conftest import FilesHarness, Harness, TestAPI, Workspace, connection, rows

RECORDS = [{"id": i, "v": f"value {i}"} for i in range(1, 51)]


def _rest(api: TestAPI, **extra: object) -> dict:
    return {
        "type": "rest",
        "url": api.url,
        "api_key": api.state.api_key,
        "pagination": {"type": "page", "size": 10},
        **extra,
    }


def test_job_info_has_the_jobinforead_shape(api: TestAPI, workspace: Workspace) -> None:
    api.state.records["things"] = list(RECORDS)
    workspace.configure([connection(_rest(api), [{"name": "things", "path": "/page/things"}])])
    seen: list[tuple[str, int, int]] = []
    result = workspace.sync(
        on_progress=lambda states: seen.extend((s.phase, s.rows, s.bytes) for s in states)
    )
    assert result.status == "succeeded"
    # The progress callback saw the rows and bytes that the sync committed.
    assert seen[-1][0] == "committed" and seen[-1][1] == 50 and seen[-1][2] > 0
    p = workspace.project
    assert p is not None
    info = job_info(p.db, result.job_id)
    assert info is not None
    job = info["job"]
    assert set(job) == {"id", "configType", "configId", "createdAt", "updatedAt", "status"}
    assert (job["id"], job["configType"], job["configId"], job["status"]) == (
        result.job_id,
        "sync",
        "src",
        "succeeded",
    )
    assert isinstance(job["createdAt"], int) and job["updatedAt"] >= job["createdAt"]
    attempt = info["attempts"][0]["attempt"]
    required = {
        "id",
        "status",
        "createdAt",
        "updatedAt",
        "endedAt",
        "recordsSynced",
        "bytesSynced",
        "failureSummary",
    }
    assert required <= set(attempt)
    assert attempt["status"] == "succeeded" and attempt["recordsSynced"] == 50
    assert attempt["bytesSynced"] > 0 and attempt["failureSummary"] is None
    assert attempt["streamStats"][0]["streamName"] == "things"
    assert recent_jobs(p.db, 5)[0]["job"]["id"] == result.job_id
    assert job_info(p.db, 10_000) is None


def test_transient_failures_are_retried_with_backoff(api: TestAPI, workspace: Workspace) -> None:
    api.state.records["things"] = list(RECORDS)
    api.state.fail_next = 1  # the first request answers 503; the API then recovers
    source = _rest(api, http_retries=0)
    conn = connection(
        source,
        [{"name": "things", "path": "/page/things"}],
        max_retries=2,
        retry_backoff_seconds=0.2,
    )
    workspace.configure([conn])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    assert result.attempts == 2
    p = workspace.project
    assert p is not None
    attempts = [a["attempt"] for a in job_info(p.db, result.job_id)["attempts"]]
    assert [a["status"] for a in attempts] == ["failed", "succeeded"]
    failure = attempts[0]["failureSummary"]["failures"][0]
    assert failure["failureType"] == "transient_error" and failure["stream"] == "things"
    assert "503" in failure["externalMessage"]
    assert attempts[1]["recordsSynced"] == 50


def test_timeout_stops_the_sync_cleanly(api: TestAPI, workspace: Workspace) -> None:
    api.state.records["things"] = list(RECORDS)
    api.state.delay = 0.4  # five pages take two seconds; the timeout is one
    conn = connection(
        _rest(api),
        [{"name": "things", "path": "/page/things"}],
        timeout_minutes=1 / 60,
        max_retries=3,
    )
    workspace.configure([conn])
    started = time.monotonic()
    result = workspace.sync()
    assert time.monotonic() - started < 5
    assert result.status == "failed" and result.attempts == 1
    assert "timeout of" in result.errors["things"] and "timeout_minutes" in result.errors["things"]
    assert workspace.rows("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'things'") == [
        (0,)
    ]


def test_jobs_of_a_killed_process_are_marked_incomplete(api: TestAPI, workspace: Workspace) -> None:
    api.state.records["things"] = list(RECORDS)
    workspace.configure([connection(_rest(api), [{"name": "things", "path": "/page/things"}])])
    p = workspace.project
    assert p is not None
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = start_job(p.db, "src")
    with p.db.session() as s:
        s.get(Job, orphan).detail = {**s.get(Job, orphan).detail, "pid": gone.pid}
    assert workspace.sync().status == "succeeded"
    info = job_info(p.db, orphan)
    assert info is not None and info["job"]["status"] == "incomplete"


def test_wrong_password_is_explained_without_the_password(workspace: Workspace) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS fleuve_reader_t")
        conn.execute("CREATE ROLE fleuve_reader_t LOGIN PASSWORD 'right-secret'")
    try:
        source = {
            "type": "postgres",
            "host": "127.0.0.1",
            "database": "test",
            "user": "fleuve_reader_t",
            "password": "s3cr3t-w0rd",
        }
        workspace.configure([connection(source, [{"name": "t", "table": "t"}], max_retries=0)])
        result = workspace.sync()
        # The machine's PostgreSQL trusts local logins, so the login itself may pass; either
        # way the message names the problem and never the password.
        assert result.status == "failed"
        assert "s3cr3t-w0rd" not in str(result.errors)
        p = workspace.project
        assert p is not None
        assert "s3cr3t-w0rd" not in str(job_info(p.db, result.job_id))
        log = (p.settings.state_dir / "logs" / "fleuve.log").read_text(encoding="utf-8")
        assert "s3cr3t-w0rd" not in log
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS fleuve_reader_t")


def test_overwrite_swaps_atomically_for_readers(workspace: Workspace, tmp_path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    data = "id,v\n" + "".join(f"{i},{i}\n" for i in range(20_000))
    (drops / "big.csv").write_text(data, encoding="utf-8")
    workspace.configure(
        [connection({"type": "files", "path": str(drops)}, [{"name": "big", "path": "big.csv"}])]
    )
    assert workspace.sync().status == "succeeded"
    seen: set[int] = set()
    stop = threading.Event()
    p = workspace.project
    assert p is not None

    def read() -> None:
        while not stop.is_set():
            cur = p.lake.connect()
            try:
                seen.add(cur.execute("SELECT count(*) FROM bronze.big").fetchone()[0])
            finally:
                cur.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in (25_000, 20_000, 30_000):
            (drops / "big.csv").write_text(
                "id,v\n" + "".join(f"{i},{i}\n" for i in range(n)), encoding="utf-8"
            )
            assert workspace.sync().status == "succeeded"
        # On a loaded machine the reader may not have run between the syncs: it must at least
        # see the last one's rows.
        deadline = time.monotonic() + 30
        while 30_000 not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        reader.join()
    assert seen <= {20_000, 25_000, 30_000} and len(seen) >= 2, f"readers saw {sorted(seen)}"


def test_streams_creating_their_tables_at_once_land_in_one_attempt(
    workspace: Workspace, tmp_path: Path
) -> None:
    db = tmp_path / "shop.sqlite"
    src = sqlite3.connect(db)
    for t in "abcd":
        src.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, v TEXT)")
        src.executemany(f"INSERT INTO {t} VALUES (?, ?)", [(i, f"v{i}") for i in range(5000)])
    src.commit()
    src.close()
    # The four streams of each of eight connections create their bronze tables from four
    # threads at once. Tables created by concurrent transactions of one DuckDB instance make
    # DuckLake fail commits, lose a table or crash, unless those run one at a time
    # (`Lake.commit(creates=True)`); without it, a table was missing in one run of two here.
    workspace.configure(
        [
            {
                **connection(
                    {"type": "sqlite", "path": str(db)},
                    [{"name": f"{t}_{n}", "table": t} for t in "abcd"],
                    threads=4,
                    max_retries=0,
                ),
                "name": f"shop{n}",
            }
            for n in range(8)
        ]
    )
    for n in range(8):
        result = workspace.sync(f"shop{n}")
        assert result.status == "succeeded", result.error
        assert result.attempts == 1
    tables = [
        name
        for (name,) in workspace.rows(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' "
            "AND schema_name = 'bronze' AND NOT starts_with(table_name, '_') ORDER BY 1"
        )
    ]
    assert tables == sorted(f"{t}_{n}" for t in "abcd" for n in range(8))
    for name in tables:
        assert workspace.rows(f"SELECT count(*), count(DISTINCT id) FROM bronze.{name}") == [
            (5000, 5000)
        ]


def test_retry_on_failure_false_makes_one_attempt(api: TestAPI, workspace: Workspace) -> None:
    api.state.records["things"] = list(RECORDS)
    api.state.fail_next = 1  # the first request answers 503: retried by default, not here
    conn = connection(
        _rest(api, http_retries=0),
        [{"name": "things", "path": "/page/things"}],
        retry_on_failure=False,
        retry_backoff_seconds=0,
    )
    p = workspace.configure([conn])
    assert p.settings.connection("src").max_retries == 0
    result = workspace.sync()
    assert result.status == "failed" and result.attempts == 1
    assert "503" in (result.error or "")


def test_bytes_synced_for_every_connector_type(harness: Harness, workspace: Workspace) -> None:
    """bytesSynced: files and API bytes read from the source, database rows' Arrow size."""
    harness.load(rows(range(1, 11)))
    stream = {"name": "items", **harness.stream(), "primary_key": ["id"]}
    p = workspace.configure([connection(harness.source, [stream])])
    result = workspace.sync()
    assert result.status == "succeeded", result.error
    attempt = job_info(p.db, result.job_id)["attempts"][0]["attempt"]
    assert attempt["recordsSynced"] == 10
    synced = attempt["bytesSynced"]
    assert synced == result.bytes == attempt["totalStats"]["bytesEmitted"]
    if isinstance(harness, FilesHarness) and not harness.source["path"].startswith("s3://"):
        assert synced == sum(f.stat().st_size for f in harness.folder.rglob("*.csv"))
    elif harness.kind in ("postgres", "mysql", "sqlite"):
        arrow = pa.table(
            {
                "id": pa.array(range(1, 11), pa.int64()),
                "name": [r.name for r in rows(range(1, 11))],
                "amount": pa.array([1.0] * 10),
                "updated_at": pa.array([r.updated_at for r in rows(range(1, 11))]),
            }
        ).nbytes
        # The rows' Arrow size: within the spread of the sources' types (decimals, widths).
        assert arrow / 2 <= synced <= arrow * 3, (synced, arrow)
    else:
        assert synced > 10 * 24  # ten records of four fields, as read
