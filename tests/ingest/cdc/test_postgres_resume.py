"""PostgreSQL change capture resumes exactly: after a stop, after SIGKILLs at random moments,
and through transactions larger than a micro-batch."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fleuve.ingest.cdc import run_continuous, sync_cdc
from tests.ingest.cdc.servers import PostgresServer
from tests.ingest.cdc.test_postgres import Source
from tests.ingest.conftest import Workspace, connection


@pytest.fixture
def pg(cdc_postgres: PostgresServer) -> Iterator[Source]:
    src = Source(cdc_postgres)
    try:
        yield src
    finally:
        src.drop()


def _checksum_source(pg: Source) -> tuple[int, int, str]:
    return pg("SELECT count(*), coalesce(sum(id), 0), md5(coalesce(string_agg(id || ':' || v || ':' "
              "|| note, ',' ORDER BY id), '')) FROM items")[0]  # fmt: skip


def _checksum_lake(ws: Workspace) -> tuple[int, int, str]:
    return ws.rows("SELECT count(*), coalesce(sum(id), 0), md5(coalesce(string_agg(id || ':' || v "
                   "|| ':' || note, ',' ORDER BY id), '')) FROM bronze.items")[0]  # fmt: skip


def _no_change_twice(ws: Workspace) -> None:
    assert (
        ws.rows(
            "SELECT _fleuve_lsn, _fleuve_seq, count(*) FROM bronze.items_changes "
            "WHERE _fleuve_op <> 'snapshot' GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5"
        )
        == []
    )


class Load(threading.Thread):
    """Steady inserts, updates and deletes; now and then one transaction of thousands of rows."""

    def __init__(self, pg: Source, seed: int) -> None:
        super().__init__(daemon=True)
        self.pg, self.rng, self.stop = pg, random.Random(seed), threading.Event()
        self.transactions = 0

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.pg.server.dsn(self.pg.db), autocommit=False) as conn:
            while not self.stop.is_set():
                r = self.rng.random()
                with conn.transaction():
                    if r < 0.05:
                        conn.execute(
                            "INSERT INTO items (v, note) SELECT i, 'big' FROM generate_series(1, 3000) i"
                        )
                    else:
                        conn.execute(
                            "INSERT INTO items (v, note) SELECT i, 'n' FROM generate_series(1, 20) i"
                        )
                        conn.execute(
                            "UPDATE items SET v = v + 1, note = note || 'u' "
                            "WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 10)"
                        )
                        conn.execute(
                            "DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 8)"
                        )
                self.transactions += 1
                time.sleep(0.01)


def _continuous(project: Any, stop: threading.Event, **tuning: Any) -> threading.Thread:
    thread = threading.Thread(
        target=run_continuous, args=(project, "src", stop), kwargs=tuning, daemon=True
    )
    thread.start()
    return thread


def _wait_for(check: Any, seconds: float) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, "not landed in time"
        time.sleep(0.1)
    return time.monotonic() - started


def test_continuous_capture_shows_a_change_within_seconds_and_resumes_after_a_stop(
    pg: Source, workspace: Workspace
) -> None:
    pg("CREATE TABLE items (id serial PRIMARY KEY, v int, note text)")
    pg("INSERT INTO items (v, note) SELECT i, 'n' FROM generate_series(1, 100) i")
    p = workspace.configure([connection(pg.config(), [{"name": "items", "sync_mode": "cdc"}])])
    stop = threading.Event()
    thread = _continuous(p, stop, flush_seconds=0.5)
    _wait_for(lambda: p.lake.table_exists("bronze.items_changes"), 60)
    pg("UPDATE items SET note = 'live' WHERE id = 7")
    seconds = _wait_for(
        lambda: workspace.rows("SELECT note FROM bronze.items WHERE id = 7") == [("live",)], 30
    )
    assert seconds < 10
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    pg("DELETE FROM items WHERE id <= 10")
    pg("INSERT INTO items (v, note) VALUES (1, 'after the stop')")
    sync_cdc(p.settings, p.lake, p.db, "src", flush_seconds=0.2)
    assert _checksum_lake(workspace) == _checksum_source(pg)
    _no_change_twice(workspace)


def test_a_transaction_larger_than_a_batch_lands_in_parts_and_shows_whole(
    pg: Source, workspace: Workspace
) -> None:
    pg("CREATE TABLE items (id serial PRIMARY KEY, v int, note text)")
    p = workspace.configure([connection(pg.config(), [{"name": "items", "sync_mode": "cdc"}])])
    sync_cdc(p.settings, p.lake, p.db, "src")
    pg("INSERT INTO items (v, note) SELECT i, 'bulk' FROM generate_series(1, 5000) i")
    _, stats = sync_cdc(p.settings, p.lake, p.db, "src", flush_rows=1000, flush_seconds=60)
    assert stats.changes == 5000 and stats.commits >= 5
    assert _checksum_lake(workspace) == _checksum_source(pg)
    assert workspace.rows(
        "SELECT partial_lsn FROM bronze._fleuve_cdc_positions WHERE connection = 'src'"
    ) == [(None,)]


_CHILD = (
    "import sys, threading\n"
    "from fleuve.project import Project\n"
    "from fleuve.ingest.cdc import run_continuous\n"
    "run_continuous(Project.open(sys.argv[1]), 'src', threading.Event(), "
    "flush_rows=700, flush_seconds=0.3)\n"
)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_sigkill_at_random_moments_under_load_never_loses_or_doubles_a_change(
    pg: Source, workspace: Workspace
) -> None:
    pg("CREATE TABLE items (id serial PRIMARY KEY, v int, note text)")
    pg("INSERT INTO items (v, note) SELECT i, 'n' FROM generate_series(1, 20000) i")
    p = workspace.configure([connection(pg.config(), [{"name": "items", "sync_mode": "cdc"}])])
    sync_cdc(p.settings, p.lake, p.db, "src")  # the snapshot; kills then hit the stream
    rng = random.Random(20261208)
    load = Load(pg, 7)
    load.start()
    kills = 0

    def position() -> Any:
        return workspace.rows(
            "SELECT lsn, partial_seq FROM bronze._fleuve_cdc_positions WHERE connection = 'src'"
        )

    try:
        for run in range(22):
            before = position()
            proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(workspace.folder)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            # Killed at a random moment once it streams: mid-batch, mid-commit or in between.
            _wait_for(lambda b=before, p=proc: position() != b or p.poll() is not None, 120)
            time.sleep(rng.uniform(0.0, 2.5))
            print(f"run {run}: {time.strftime('%X')} position {position()}", flush=True)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
    finally:
        load.stop.set()
        load.join(30)
    assert kills >= 20 and load.transactions > 100
    sync_cdc(p.settings, p.lake, p.db, "src")
    assert _checksum_lake(workspace) == _checksum_source(pg)
    _no_change_twice(workspace)
    stats = workspace.rows(
        "SELECT count(*) FILTER (_fleuve_op = 'update'), count(*) FILTER (_fleuve_op = 'delete') "
        "FROM bronze.items_changes"
    )[0]
    assert min(stats) > 0
