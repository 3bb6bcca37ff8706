"""MariaDB change capture into bronze, against a private server writing a ROW binlog."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fleuve.ingest.cdc import PositionLost, sync_cdc
from tests.ingest.cdc.servers import MariaDBServer
from tests.ingest.conftest import Workspace, connection


class Source:
    """One database of the private MariaDB server."""

    def __init__(self, server: MariaDBServer) -> None:
        self.server = server
        self.db = f"cdc_{uuid.uuid4().hex[:10]}"
        server.execute(f"CREATE DATABASE {self.db}")

    def __call__(self, sql: str, params: Any = None) -> list[tuple]:
        return self.server.execute(sql, params, database=self.db)

    def config(self, **more: Any) -> dict[str, Any]:
        return {
            "type": "mysql",
            "dsn": f"mysql://root@127.0.0.1:{self.server.port}/{self.db}",
            **more,
        }

    def drop(self) -> None:
        self.server.execute(f"DROP DATABASE {self.db}")


@pytest.fixture
def maria(cdc_mariadb: MariaDBServer) -> Iterator[Source]:
    src = Source(cdc_mariadb)
    try:
        yield src
    finally:
        src.drop()


def _sync(ws: Workspace, **kw: Any) -> Any:
    p = ws.project
    assert p is not None
    return sync_cdc(p.settings, p.lake, p.db, "src", flush_seconds=0.2, **kw)[1]


def _norm(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    if hasattr(value, "tzinfo") and getattr(value, "tzinfo", None) is not None:
        return value.replace(tzinfo=None)
    return value


def _same(src: Source, ws: Workspace, table: str, columns: str) -> None:
    source = [tuple(map(_norm, r)) for r in src(f"SELECT {columns} FROM {table} ORDER BY id")]
    lake = [
        tuple(map(_norm, r)) for r in ws.rows(f"SELECT {columns} FROM bronze.{table} ORDER BY id")
    ]
    assert lake == source


def test_snapshot_then_inserts_updates_deletes_truncate_and_new_columns(
    maria: Source, workspace: Workspace
) -> None:
    maria("SET SESSION time_zone = '+00:00'")
    maria(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100), amount DECIMAL(12,2), "
        "stamp DATETIME(6), flag TINYINT(1), doc JSON, raw VARBINARY(10), big BIGINT UNSIGNED)"
    )
    maria(
        "INSERT INTO items SELECT seq, CONCAT('Élodie 李 ', seq), seq / 4, "
        "'2026-01-01 12:00:00' + INTERVAL seq MINUTE, seq % 2, JSON_OBJECT('k', seq), "
        "UNHEX('00FF'), 18446744073709551615 FROM seq_1_to_300"
    )
    workspace.configure([connection(maria.config(), [{"name": "items", "sync_mode": "cdc"}])])
    stats = _sync(workspace)
    assert stats.snapshot_rows == 300
    cols = "id, name, amount, stamp, flag, raw, big"
    _same(maria, workspace, "items", cols)

    maria("INSERT INTO items VALUES (1001, 'محمد', 1.5, NOW(6), 1, '{\"a\": [1]}', NULL, 7)")
    maria("UPDATE items SET name = 'changed', amount = amount + 1 WHERE id % 10 = 0")
    maria("DELETE FROM items WHERE id % 7 = 0")
    maria("UPDATE items SET id = 5000 WHERE id = 1")
    stats = _sync(workspace)
    assert stats.changes > 0
    _same(maria, workspace, "items", cols)
    again = _sync(workspace)
    assert again.changes == 0 and again.lag_bytes is not None and again.lag_bytes < 100_000

    maria("ALTER TABLE items ADD COLUMN qty INT")
    maria("UPDATE items SET qty = id * 2 WHERE id > 250")
    _sync(workspace)
    _same(maria, workspace, "items", cols + ", qty")

    maria("TRUNCATE TABLE items")
    maria("INSERT INTO items (id, name, qty) VALUES (7, 'after', 1)")
    _sync(workspace)
    _same(maria, workspace, "items", cols + ", qty")
    ops = dict(workspace.rows("SELECT _fleuve_op, count(*) FROM bronze.items_changes GROUP BY 1"))
    assert ops["truncate"] == 1 and ops["snapshot"] == 300


def test_a_purged_binlog_is_an_error_naming_the_new_snapshot(
    maria: Source, workspace: Workspace
) -> None:
    maria("CREATE TABLE items (id INT PRIMARY KEY, v INT)")
    maria("INSERT INTO items VALUES (1, 1)")
    workspace.configure([connection(maria.config(), [{"name": "items", "sync_mode": "cdc"}])])
    _sync(workspace)
    maria("FLUSH BINARY LOGS")
    maria("INSERT INTO items VALUES (2, 2)")
    maria("FLUSH BINARY LOGS")
    (current,) = maria("SHOW MASTER STATUS")[0][:1]
    # The server keeps a log a binlog reader still has open: the last sync's reader may take a
    # moment to be gone on the server's side, so purge until only the current log is left.
    deadline = time.monotonic() + 15
    while True:
        maria(f"PURGE BINARY LOGS TO '{current}'")
        if [r[0] for r in maria("SHOW BINARY LOGS")] == [current] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    with pytest.raises(PositionLost) as err:
        _sync(workspace)
    assert "--full-refresh" in (err.value.fix or "")
    _sync(workspace, full_refresh=True)
    _same(maria, workspace, "items", "id, v")


class Load(threading.Thread):
    """Steady inserts, updates and deletes; now and then one transaction of thousands of rows."""

    def __init__(self, src: Source, seed: int) -> None:
        super().__init__(daemon=True)
        self.src, self.rng, self.stop = src, random.Random(seed), threading.Event()
        self.transactions = 0

    def run(self) -> None:
        conn = self.src.server.connect(self.src.db)
        conn.autocommit(False)
        try:
            with conn.cursor() as cur:
                while not self.stop.is_set():
                    if self.rng.random() < 0.05:
                        cur.execute(
                            "INSERT INTO items (v, note) SELECT seq, 'big' FROM seq_1_to_3000"
                        )
                    else:
                        cur.execute("INSERT INTO items (v, note) SELECT seq, 'n' FROM seq_1_to_20")
                        cur.execute(
                            "UPDATE items SET v = v + 1, note = CONCAT(note, 'u') "
                            "ORDER BY rand() LIMIT 10"
                        )
                        cur.execute("DELETE FROM items ORDER BY rand() LIMIT 8")
                    conn.commit()
                    self.transactions += 1
                    time.sleep(0.01)
        finally:
            conn.close()


_SUM = (
    "SELECT count(*), coalesce(sum(id), 0), md5(coalesce(group_concat(concat(id, ':', v, ':', "
    "note) ORDER BY id SEPARATOR ','), '')) FROM items"
)
_SUM_LAKE = (
    "SELECT count(*), coalesce(sum(id), 0), md5(coalesce(string_agg(id || ':' || v || ':' || "
    "note, ',' ORDER BY id), '')) FROM bronze.items"
)
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
    maria: Source, workspace: Workspace
) -> None:
    maria("SET SESSION group_concat_max_len = 100000000")
    maria("CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, v INT, note TEXT)")
    maria("INSERT INTO items (v, note) SELECT seq, 'n' FROM seq_1_to_20000")
    p = workspace.configure([connection(maria.config(), [{"name": "items", "sync_mode": "cdc"}])])
    sync_cdc(p.settings, p.lake, p.db, "src")
    rng = random.Random(20261208)
    load = Load(maria, 7)
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
            started = time.monotonic()
            while position() == before and proc.poll() is None:
                assert time.monotonic() - started < 120, "the capture landed nothing"
                time.sleep(0.1)
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
    conn = maria.server.connect(maria.db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION group_concat_max_len = 100000000")
            cur.execute(_SUM)
            source = cur.fetchone()
    finally:
        conn.close()
    assert workspace.rows(_SUM_LAKE)[0] == tuple(source)
    assert (
        workspace.rows(
            "SELECT _fleuve_lsn, _fleuve_seq, count(*) FROM bronze.items_changes "
            "WHERE _fleuve_op <> 'snapshot' GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5"
        )
        == []
    )
