"""Change data capture: sustained changes per second, commit-to-visible latency, and the memory
and WAL held while one huge transaction streams.

Runs against a private PostgreSQL (wal_level=logical) or MariaDB (ROW binlog) started for the
run, with `run_continuous` landing micro-batches in a project's lake in this process:

    .venv/bin/python bench/cdc.py [--source postgres|mariadb] [--changes 400000] [--huge 1000000]

Targets (issue 19): >= 20,000 row changes/s sustained, p95 latency <= 5 s from the source's
commit to the change visible through the lake, peak RSS < 1 GB while a 1M-row transaction
streams, WAL retained by the slot bounded.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleuve.ingest.cdc import run_continuous, sync_cdc
from fleuve.project import Project, init_project
from tests.ingest.cdc.servers import MariaDBServer, PostgresServer


def _rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Source:
    """The benchmark's table on a private server, written through plain client sessions."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.server: Any = (PostgresServer() if kind == "postgres" else MariaDBServer()).start()
        if kind == "postgres":
            self.server.execute("CREATE DATABASE bench")
            self.execute("CREATE TABLE items (id bigint PRIMARY KEY, v int, note text)")
        else:
            self.server.execute("CREATE DATABASE bench")
            self.execute("CREATE TABLE items (id BIGINT PRIMARY KEY, v INT, note TEXT)")

    def execute(self, sql: str) -> list[tuple]:
        return self.server.execute(sql, database="bench")

    def config(self) -> dict[str, Any]:
        if self.kind == "postgres":
            return {"type": "postgres", "dsn": self.server.dsn("bench")}
        return {"type": "mysql", "dsn": f"mysql://root@127.0.0.1:{self.server.port}/bench"}

    def series(self, start: int, count: int) -> str:
        if self.kind == "postgres":
            return (
                f"SELECT i, i % 1000, 'n' || i FROM generate_series({start}, {start + count - 1}) i"
            )
        return f"SELECT seq, seq % 1000, CONCAT('n', seq) FROM seq_{start}_to_{start + count - 1}"

    def wal_retained(self) -> int | None:
        if self.kind != "postgres":
            return None
        rows = self.execute(
            "SELECT pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots "
            "WHERE slot_name = 'fleuve_bench'"
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def stop(self) -> None:
        self.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["postgres", "mariadb"], default="postgres")
    parser.add_argument("--changes", type=int, default=400_000)
    parser.add_argument("--huge", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=40)
    args = parser.parse_args()

    source = Source(args.source)
    folder = Path(tempfile.mkdtemp(prefix="fleuve-bench-cdc-"))
    init_project(folder / "proj", "bench")
    config = folder / "proj" / "fleuve.yml"
    import yaml

    data = yaml.safe_load(config.read_text())
    data["connections"] = [
        {
            "name": "bench",
            "source": source.config(),
            "streams": [{"name": "items", "sync_mode": "cdc"}],
        }
    ]
    config.write_text(yaml.safe_dump(data))
    project = Project.open(folder / "proj")
    try:
        sync_cdc(project.settings, project.lake, project.db, "bench")
        stop = threading.Event()
        runner = threading.Thread(target=run_continuous, args=(project, "bench", stop), daemon=True)
        runner.start()

        def landed() -> int:
            with project.lake.session() as con:
                return con.execute("SELECT count(*) FROM bronze.items_changes").fetchone()[0]

        # 1. Throughput: inserts then updates in transactions of 5,000 rows.
        batch, wal = 5_000, []
        started = time.monotonic()
        for start in range(1, args.changes // 2 + 1, batch):
            source.execute(f"INSERT INTO items {source.series(start, batch)}")
        for start in range(1, args.changes // 2 + 1, batch):
            source.execute(
                f"UPDATE items SET v = v + 1 WHERE id BETWEEN {start} AND {start + batch - 1}"
            )
            wal.append(source.wal_retained())
        written = time.monotonic() - started
        while landed() < args.changes:
            time.sleep(0.05)
        seconds = time.monotonic() - started
        print(f"throughput: {args.changes:,} changes written in {written:.1f}s, landed in "
              f"{seconds:.1f}s: {args.changes / seconds:,.0f} changes/s")  # fmt: skip

        # 2. Latency: one committed update at a time, until the view shows it.
        latencies = []
        for probe in range(args.probes):
            source.execute(f"UPDATE items SET note = 'probe {probe}' WHERE id = 1")
            committed = time.monotonic()
            while True:
                with project.lake.session() as con:
                    row = con.execute("SELECT note FROM bronze.items WHERE id = 1").fetchone()
                if row and row[0] == f"probe {probe}":
                    break
                time.sleep(0.02)
            latencies.append(time.monotonic() - committed)
        cuts = statistics.quantiles(latencies, n=20)
        print(f"latency: p50 {statistics.median(latencies):.2f}s, p95 {cuts[18]:.2f}s, "
              f"max {max(latencies):.2f}s over {len(latencies)} changes")  # fmt: skip

        # 3. One huge transaction.
        before = landed()
        started = time.monotonic()
        rss_before = _rss_mb()
        first = args.changes + 1
        source.execute(f"INSERT INTO items {source.series(first, args.huge)}")
        while landed() < before + args.huge:
            wal.append(source.wal_retained())
            time.sleep(0.2)
        print(f"huge transaction: {args.huge:,} rows landed {time.monotonic() - started:.1f}s "
              f"after its commit; peak RSS {_rss_mb():,.0f} MB (before it {rss_before:,.0f} MB)")  # fmt: skip
        kept = [w for w in wal if w is not None]
        if kept:
            print(f"WAL retained by the slot: max {max(kept) / 1e6:,.0f} MB")
        stop.set()
        runner.join(60)
    finally:
        project.close()
        source.stop()


if __name__ == "__main__":
    main()
