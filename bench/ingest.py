"""Ingestion benchmark: Fleuve against dlt (connectorx and pyarrow backends), side by side.

    python bench/ingest.py                 # 10M-row PostgreSQL table, everything
    python bench/ingest.py --rows 1000000  # a smaller table
    python bench/ingest.py --skip-dlt      # Fleuve only

The PostgreSQL table lives in the `fleuve_bench` schema of the local `test` database and is
created once (again with --rebuild). Each engine runs in its own process, so that its peak
memory (RSS) is its own. dlt is installed by the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "fleuve_bench"
TABLE = "orders"
CSV_ROWS = 4_000_000


def pg(sql: str) -> list[tuple[Any, ...]]:
    """Run one statement on the benchmark database."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def prepare_table(rows: int, rebuild: bool) -> None:
    """Create fleuve_bench.orders with `rows` rows unless it is already there."""
    pg(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    exists = pg(f"SELECT to_regclass('{SCHEMA}.{TABLE}') IS NOT NULL")[0][0]
    if exists and not rebuild and pg(f"SELECT max(order_id) FROM {SCHEMA}.{TABLE}")[0][0] == rows:
        return
    print(f"creating {SCHEMA}.{TABLE} with {rows:,} rows ...", flush=True)
    pg(f"DROP TABLE IF EXISTS {SCHEMA}.{TABLE}")
    pg(
        f"CREATE TABLE {SCHEMA}.{TABLE} AS SELECT i::bigint AS order_id, "
        "(i % 100000)::int AS customer_id, round((random() * 1000)::numeric, 2)::numeric(12,2) "
        "AS amount, (ARRAY['new','paid','shipped','cancelled'])[1 + i % 4] AS status, "
        "'note ' || md5(i::text) AS note, "
        "timestamptz '2025-01-01' + (i || ' seconds')::interval AS created_at, "
        "timestamptz '2025-01-01' + (i || ' seconds')::interval AS updated_at "
        f"FROM generate_series(1, {rows}) AS i"
    )
    pg(f"ALTER TABLE {SCHEMA}.{TABLE} ADD PRIMARY KEY (order_id)")
    pg(f"CREATE INDEX ON {SCHEMA}.{TABLE} (updated_at)")
    pg(f"ANALYZE {SCHEMA}.{TABLE}")


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


# -- one engine per process ------------------------------------------------------------------


def fleuve_project(folder: Path, csv_dir: Path | None = None) -> Any:
    """A Fleuve project with the benchmark connections."""
    import yaml

    from fleuve.ingest.state import ensure_tables
    from fleuve.project import Project, init_project

    init_project(folder, "bench")
    config = yaml.safe_load((folder / "fleuve.yml").read_text())
    streams = [
        {"name": "orders_full", "table": f"{SCHEMA}.{TABLE}"},
        {
            "name": "orders_inc",
            "table": f"{SCHEMA}.{TABLE}",
            "sync_mode": "incremental",
            "destination_sync_mode": "append_dedup",
            "cursor_field": "updated_at",
            "primary_key": ["order_id"],
        },
    ]
    config["connections"] = [
        {"name": "pg", "source": {"type": "postgres", "dsn": PG_URL}, "streams": streams}
    ]
    if csv_dir is not None:
        config["connections"].append(
            {
                "name": "csv",
                "source": {"type": "files", "path": str(csv_dir)},
                "streams": [{"name": "orders_csv", "path": "*.csv"}],
            }
        )
    (folder / "fleuve.yml").write_text(yaml.safe_dump(config))
    project = Project.open(folder)
    # Timed as the DuckDB yardstick is, after its ATTACH: the lake open and its ingestion
    # tables created (once per lake), as in a running `fleuve serve` or scheduler.
    project.lake.connect().close()
    ensure_tables(project.lake)
    return project


def run_fleuve(kind: str, workdir: Path, rows: int) -> dict[str, Any]:
    """Time one Fleuve sync; `kind` is full, incremental or csv."""
    from fleuve.ingest import sync_connection

    if kind == "csv":
        csv_dir = workdir / "csv"
        project = fleuve_project(workdir / "csv-project", csv_dir)
        size = sum(f.stat().st_size for f in csv_dir.glob("*.csv"))
        started = time.perf_counter()
        result = sync_connection(project.settings, project.lake, project.db, "csv")
        seconds = time.perf_counter() - started
        assert result.status == "succeeded", result.error
        return {
            "seconds": seconds,
            "rows": result.records,
            "mb": size / 1e6,
            "rss_mb": peak_rss_mb(),
        }
    project = fleuve_project(workdir / "project")
    if kind == "full":
        started = time.perf_counter()
        result = sync_connection(
            project.settings, project.lake, project.db, "pg", streams=["orders_full"]
        )
        seconds = time.perf_counter() - started
        assert result.status == "succeeded", result.error
        return {"seconds": seconds, "rows": result.records, "rss_mb": peak_rss_mb()}
    # Incremental: a first (full) sync, then 1% of the rows change and sync again.
    first = sync_connection(
        project.settings, project.lake, project.db, "pg", streams=["orders_inc"]
    )
    assert first.status == "succeeded", first.error
    changed = rows // 100
    # Each row gets the moment it changed (clock_timestamp), as rows changed one by one between
    # two syncs would: with now(), all 100,000 would share one cursor value, and the next run's
    # timed sync would start from that boundary (re-reading and comparing 100,000 rows).
    pg(
        f"UPDATE {SCHEMA}.{TABLE} SET amount = amount + 1, updated_at = clock_timestamp() "
        f"WHERE order_id % 100 = {int(time.time()) % 100}"
    )
    # As autovacuum would: fresh statistics let PostgreSQL plan the cursor range as a bitmap scan.
    pg(f"ANALYZE {SCHEMA}.{TABLE}")
    started = time.perf_counter()
    result = sync_connection(
        project.settings, project.lake, project.db, "pg", streams=["orders_inc"]
    )
    seconds = time.perf_counter() - started
    assert result.status == "succeeded", result.error
    con = project.lake.connect()
    total = con.execute("SELECT count(*) FROM bronze.orders_inc").fetchone()[0]
    con.close()
    assert total == rows, f"bronze has {total:,} rows, the source {rows:,}"
    return {
        "seconds": seconds,
        "rows": result.records,
        "changed": changed,
        "first_seconds": first.seconds,
        "rss_mb": peak_rss_mb(),
    }


def run_yardstick(kind: str, workdir: Path) -> dict[str, Any]:
    """DuckDB alone copying the same data into a fresh DuckLake: the machine's ceiling right now."""
    from fleuve.lake import connect_duckdb

    con = connect_duckdb()
    con.execute(
        f"ATTACH 'ducklake:sqlite:{workdir / 'raw.sqlite'}' AS raw (DATA_PATH '{workdir / 'raw'}/')"
    )
    if kind == "csv":
        files = sorted(str(f) for f in (workdir / "csv").glob("*.csv"))
        size = sum(Path(f).stat().st_size for f in files)
        started = time.perf_counter()
        con.execute(f"CREATE TABLE raw.t AS SELECT * FROM read_csv({files})")
        seconds = time.perf_counter() - started
        rows = con.execute("SELECT count(*) FROM raw.t").fetchone()[0]
        return {"seconds": seconds, "rows": rows, "mb": size / 1e6, "rss_mb": peak_rss_mb()}
    con.execute(
        "ATTACH 'host=127.0.0.1 user=postgres dbname=test' AS src (TYPE postgres, READ_ONLY)"
    )
    started = time.perf_counter()
    con.execute(f"CREATE TABLE raw.t AS SELECT * FROM src.{SCHEMA}.{TABLE}")
    seconds = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM raw.t").fetchone()[0]
    return {"seconds": seconds, "rows": rows, "rss_mb": peak_rss_mb()}


def run_dlt(backend: str, workdir: Path) -> dict[str, Any]:
    """Time a dlt pipeline copying the table into DuckDB with the given sql_database backend."""
    import dlt
    from dlt.sources.sql_database import sql_table

    os.environ["NORMALIZE__LOADER_FILE_FORMAT"] = "parquet"
    credentials = (
        PG_URL if backend == "connectorx" else PG_URL.replace("postgresql", "postgresql+psycopg")
    )
    source = sql_table(
        credentials=credentials,
        schema=SCHEMA,
        table=TABLE,
        backend=backend,
        chunk_size=100_000,
        reflection_level="full_with_precision",
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{backend}",
        pipelines_dir=str(workdir / "dlt"),
        destination=dlt.destinations.duckdb(str(workdir / f"dlt_{backend}.duckdb")),
        dataset_name="bronze",
    )
    started = time.perf_counter()
    pipeline.run(source, write_disposition="replace", loader_file_format="parquet")
    seconds = time.perf_counter() - started
    import duckdb

    con = duckdb.connect(str(workdir / f"dlt_{backend}.duckdb"), read_only=True)
    rows = con.execute(f"SELECT count(*) FROM bronze.{TABLE}").fetchone()[0]
    con.close()
    return {"seconds": seconds, "rows": rows, "rss_mb": peak_rss_mb()}


def make_csv(workdir: Path, rows: int) -> None:
    """CSV drops exported from the table: eight files, as an export job would write them."""
    from fleuve.lake import connect_duckdb

    folder = workdir / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    con = connect_duckdb()
    con.execute(
        f"ATTACH '{PG_URL.replace('postgresql://', 'postgres://')}' AS src (TYPE postgres, READ_ONLY)"
    )
    per = rows // 8
    for part in range(8):
        con.execute(
            f"COPY (SELECT * FROM src.{SCHEMA}.{TABLE} WHERE order_id > {part * per} "
            f"AND order_id <= {(part + 1) * per}) TO '{folder / f'part-{part}.csv'}' (HEADER)"
        )
    con.close()


def child(args: argparse.Namespace) -> None:
    """Run one measurement and print it as JSON on the last line."""
    workdir = Path(args.workdir)
    if args.child.startswith("fleuve-"):
        out = run_fleuve(args.child.removeprefix("fleuve-"), workdir, args.rows)
    elif args.child.startswith("duckdb-"):
        out = run_yardstick(args.child.removeprefix("duckdb-"), workdir)
    else:
        out = run_dlt(args.child.removeprefix("dlt-"), workdir)
    print(json.dumps(out))


def measure(name: str, workdir: Path, rows: int) -> dict[str, Any]:
    """Run `name` in a fresh Python process and read its result."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        name,
        "--workdir",
        str(workdir),
        "--rows",
        str(rows),
    ]
    # Each engine starts with the previous one's files on disk, not still being written out.
    os.sync()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rebuild", action="store_true", help="recreate the PostgreSQL table")
    parser.add_argument("--skip-dlt", action="store_true", help="measure Fleuve only")
    parser.add_argument(
        "--csv-runs", type=int, default=3, help="alternating CSV runs per engine (median kept)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    prepare_table(args.rows, args.rebuild)
    base = Path(tempfile.mkdtemp(prefix="fleuve-bench-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        print(
            f"PostgreSQL {SCHEMA}.{TABLE}: {args.rows:,} rows; work folder {base}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            flush=True,
        )
        plan = ["duckdb-full", "fleuve-full"]
        plan += [] if args.skip_dlt else ["dlt-connectorx", "dlt-pyarrow"]
        for name in plan:
            workdir = base / name
            workdir.mkdir()
            results[name] = r = measure(name, workdir, args.rows)
            print(
                f"  {name:<16} full refresh {r['rows']:>12,} rows  {r['seconds']:7.2f} s  "
                f"{r['rows'] / r['seconds'] / 1e6:5.2f} M rows/s  peak RSS {r['rss_mb']:7.0f} MB",
                flush=True,
            )
            shutil.rmtree(workdir, ignore_errors=True)
        workdir = base / "incremental"
        workdir.mkdir()
        results["fleuve-incremental"] = r = measure("fleuve-incremental", workdir, args.rows)
        print(
            f"  fleuve           incremental: {r['changed']:,} changed rows (1%) synced in "
            f"{r['seconds']:.2f} s (first sync {r['first_seconds']:.1f} s)",
            flush=True,
        )
        shutil.rmtree(workdir, ignore_errors=True)
        workdir = base / "csv"
        workdir.mkdir()
        make_csv(workdir, min(args.rows, CSV_ROWS))
        # Alternating runs, the median of each kept: one run apart can differ by a third here.
        csv_runs: dict[str, list[dict[str, Any]]] = {"duckdb-csv": [], "fleuve-csv": []}
        for _ in range(args.csv_runs):
            for name in csv_runs:
                for stale in ("raw", "raw.sqlite", "csv-project"):
                    target = workdir / stale
                    if target.is_dir():
                        shutil.rmtree(target)
                    else:
                        target.unlink(missing_ok=True)
                csv_runs[name].append(r := measure(name, workdir, args.rows))
                print(
                    f"  {name:<16} CSV: {r['mb']:,.0f} MB, {r['rows']:,} rows in {r['seconds']:.2f} s "
                    f"= {r['mb'] / r['seconds']:,.0f} MB/s",
                    flush=True,
                )
        for name, runs in csv_runs.items():
            results[name] = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    full = results["fleuve-full"]
    rate = full["rows"] / full["seconds"]
    print("\nsummary")
    raw = results["duckdb-full"]
    print(
        f"  full refresh: {rate / 1e6:.2f} M rows/s (target >= 2.0); DuckDB alone on the machine "
        f"as it is now: {raw['rows'] / raw['seconds'] / 1e6:.2f} M rows/s "
        f"(Fleuve at {raw['seconds'] / full['seconds']:.0%} of it)"
    )
    for peer in ("dlt-connectorx", "dlt-pyarrow"):
        if peer in results:
            print(f"  Fleuve vs {peer}: {results[peer]['seconds'] / full['seconds']:.1f}x faster")
    inc = results["fleuve-incremental"]
    print(f"  incremental 1%: {inc['seconds']:.2f} s (target < 3)")
    csv = results["fleuve-csv"]
    raw_csv = results["duckdb-csv"]
    print(
        f"  CSV (median of {args.csv_runs}): {csv['mb'] / csv['seconds']:.0f} MB/s (target >= 300); DuckDB alone: "
        f"{raw_csv['mb'] / raw_csv['seconds']:.0f} MB/s (Fleuve "
        f"{raw_csv['seconds'] / csv['seconds']:.2f}x its speed)"
    )
    print(f"  load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  peak RSS of the 10M-row full refresh: {full['rss_mb']:.0f} MB (limit 1500)")


if __name__ == "__main__":
    main()
