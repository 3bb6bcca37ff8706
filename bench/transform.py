"""The demo's dbt transformations on 1M orders: Fleuve against plain dbt-duckdb, in one run.

    python bench/transform.py [--scale 1000000] [--rounds 3] [--dir DIR]

Builds the demo shop (generate, `fleuve init`, ingest into bronze), then times four ways of
building silver and gold from that same bronze, each from an empty silver/gold and in its own
process, as a user would start it:

- plain `dbt build` with the generated profile (one dbt process);
- `fleuve transform build` (the same command through Fleuve: run history, failing rows kept);
- plain dbt, the seed's six commands (`dbt run --select staging`, `dbt test --select staging`,
  ... marts), one process each;
- the dbt part of `fleuve run`: the same six layer steps with quality gates, in one process.

Then the daily case: after a full build, 1% of the orders change and 1% more web events land
in bronze, and plain `dbt build` and Fleuve's six steps each run again, incrementally.

Each project's dbt folder is parsed once beforehand, as any project's is after its first run.
Wall time is what a user waits; CPU time (user + system of the processes) is printed too, as it
moves less than wall time when other work shares the machine.
Targets: Fleuve's pipeline ≤ 10 s on 1M orders (the seed quotes 30 s for dbt on 1M rows) and
Fleuve's overhead ≤ 10% over plain dbt doing the same thing.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleuve.demo import demo_sources, prepare
from fleuve.lake import quote_ident
from fleuve.pipeline import STEPS, run_pipeline
from fleuve.project import Project, init_project
from tests.conftest import free_port

LAYERS = ("staging", "intermediate", "marts")
BIN = Path(sys.executable).parent
ENV = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
FLEUVE_PIPELINE = """
import sys
from fleuve.pipeline import STEPS, run_pipeline
from fleuve.project import Project
project = Project.open(sys.argv[1])
steps = [s for s in STEPS if s.name.endswith(("staging", "intermediate", "marts"))]
report = run_pipeline(project, steps=steps)
project.close()
sys.exit(0 if report.status == "succeeded" else f"pipeline failed: {report.error}")
"""


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _children_cpu() -> float:
    """CPU seconds used so far by finished child processes (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seed_commands(dbt: list[str], dbt_dir: Path) -> None:
    """The seed's "Flux d'Exécution dbt": run then test each layer, one dbt process each."""
    for layer in LAYERS:
        for command in ("run", "test"):
            _run([*dbt, command, "--select", layer, "--profiles-dir", "."], cwd=dbt_dir)


def _reset(project_dir: Path) -> None:
    """Drop every silver, gold and test_failures relation so that the next contender builds from bronze."""
    project = Project.open(project_dir)
    try:
        con = project.lake.connect()
        relations = con.execute(
            "SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() "
            "WHERE database_name = 'lake' AND schema_name IN ('silver', 'gold', 'test_failures') "
            "UNION ALL SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() "
            "WHERE database_name = 'lake' AND schema_name IN ('silver', 'gold', 'test_failures')"
        ).fetchall()
        con.close()

        def drop(c: duckdb.DuckDBPyConnection) -> None:
            for schema, name, kind in relations:
                c.execute(f"DROP {kind} IF EXISTS {schema}.{quote_ident(name)}")

        project.lake.commit(drop, what="bench reset")
        # Every run leaves snapshots behind, and DuckLake commits slow down as they pile up;
        # each contender starts from the same compact catalog.
        con = project.lake.connect()
        con.execute("CALL ducklake_expire_snapshots('lake', older_than => now())").fetchall()
        con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)").fetchall()
        con.close()
    finally:
        project.close()


def _land_a_day(project_dir: Path) -> int:
    """Change 1% of the orders and append 1% more web events in bronze, as a daily sync would."""
    project = Project.open(project_dir)
    try:

        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(
                "UPDATE bronze.raw_orders SET status = 'completed', "
                "updated_at = updated_at + INTERVAL 1 DAY, _fleuve_extracted_at = now() "
                "WHERE order_id % 100 = 7"
            )
            con.execute(
                "INSERT INTO bronze.raw_web_events "
                "SELECT * REPLACE (event_id + (SELECT max(event_id) FROM bronze.raw_web_events) "
                "AS event_id, now() AS _fleuve_extracted_at) "
                "FROM bronze.raw_web_events WHERE event_id % 100 = 7"
            )

        project.lake.commit(work, what="bench: land a day")
        return project.lake.query(
            "SELECT count(*) AS n FROM bronze.raw_orders WHERE order_id % 100 = 7"
        )["n"][0].as_py()
    finally:
        project.close()


def _gold_rows(project_dir: Path) -> dict[str, int]:
    project = Project.open(project_dir)
    try:
        return {
            t: project.lake.query(f"SELECT count(*) AS n FROM gold.{quote_ident(t)}")["n"][
                0
            ].as_py()
            for _, t in project.lake.tables("gold")
        }
    finally:
        project.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="orders to generate")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each contender")
    parser.add_argument("--dir", type=Path, help="keep the demo project in DIR")
    parser.add_argument(
        "--reuse", action="store_true", help="use the bronze layer already in DIR as it is"
    )
    args = parser.parse_args()

    folder = args.dir or Path(tempfile.mkdtemp(prefix="fleuve-bench-transform-"))
    started = time.monotonic()
    if not args.reuse:
        prepare(folder, args.scale, free_port())
        init_project(folder, "fleuve-demo")
    project = Project.open(folder)
    if not args.reuse:
        with demo_sources(project.settings):
            report = run_pipeline(
                project, steps=[s for s in STEPS if s.name in ("ingest", "load_bronze")]
            )
        if report.status != "succeeded":
            raise SystemExit(f"ingestion failed: {report.error}")
    dbt_dir = project.settings.path(project.settings.transform.project_dir)
    sizes = {
        t: project.lake.query(f"SELECT count(*) AS n FROM bronze.{t}")["n"][0].as_py()
        for t in ("raw_orders", "raw_order_lines", "raw_customers", "raw_web_events")
    }
    project.close()
    print(
        "bronze: "
        + ", ".join(f"{t} {n:,}" for t, n in sizes.items())
        + f" ({time.monotonic() - started:.0f}s)"
    )

    dbt = [str(BIN / "dbt")]
    fleuve = [str(BIN / "fleuve"), "--project", str(folder)]
    contenders: dict[str, Callable[[], None]] = {
        "plain dbt build": lambda: _run([*dbt, "build", "--profiles-dir", "."], cwd=dbt_dir),
        "fleuve transform build": lambda: _run([*fleuve, "transform", "build"]),
        "plain dbt, the seed's six commands": lambda: _seed_commands(dbt, dbt_dir),
        "fleuve run, its six dbt steps": lambda: _run(
            [sys.executable, "-c", FLEUVE_PIPELINE, str(folder)]
        ),
    }
    # Parse both dbt folders once (plain dbt's target/ and Fleuve's own), as after a first run.
    _run([*dbt, "parse", "--profiles-dir", "."], cwd=dbt_dir)
    _run([*fleuve, "transform", "run", "--select", "stg_products"])

    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    reference: dict[str, int] | None = None
    for round_ in range(args.rounds):
        for name, contender in contenders.items():
            _reset(folder)
            load = os.getloadavg()[0]
            cpu0, t0 = _children_cpu(), time.monotonic()
            contender()
            times[name].append(time.monotonic() - t0)
            cpu[name].append(_children_cpu() - cpu0)
            rows = _gold_rows(folder)
            reference = reference or rows
            if rows != reference:
                raise SystemExit(f"{name} built different gold tables: {rows} != {reference}")
            print(
                f"round {round_ + 1}  {name:<36} {times[name][-1]:6.2f}s  "
                f"cpu {cpu[name][-1]:6.2f}s  (load {load:.1f})"
            )

    wall = {name: statistics.median(t) for name, t in times.items()}
    busy = {name: statistics.median(t) for name, t in cpu.items()}
    print(f"\n{'contender':<36} {'median':>8} {'min':>8} {'cpu':>8}")
    for name, t in times.items():
        print(f"{name:<36} {wall[name]:7.2f}s {min(t):7.2f}s {busy[name]:7.2f}s")
    pipeline, seed = "fleuve run, its six dbt steps", "plain dbt, the seed's six commands"
    for label, m in (("wall", wall), ("cpu", busy)):
        print(
            f"Fleuve overhead ({label}): transform build "
            f"{m['fleuve transform build'] / m['plain dbt build'] - 1:+.0%} vs dbt build; "
            f"pipeline {m[pipeline] / m[seed] - 1:+.0%} vs the seed's six commands, "
            f"{m[pipeline] / m['plain dbt build'] - 1:+.0%} vs one dbt build"
        )
    print(f"gold rows: {reference}")

    print("\nthe daily re-run: 1% of the orders changed, 1% more web events")
    for name in ("plain dbt build", "fleuve run, its six dbt steps"):
        _reset(folder)
        contenders[name]()
        changed = _land_a_day(folder)
        load = os.getloadavg()[0]
        cpu0, t0 = _children_cpu(), time.monotonic()
        contenders[name]()
        print(
            f"{name:<36} {time.monotonic() - t0:6.2f}s  cpu {_children_cpu() - cpu0:6.2f}s  "
            f"({changed:,} orders merged; load {load:.1f})"
        )
    print(f"machine: {os.cpu_count()} cores, load average now {os.getloadavg()[0]:.1f}")
    if args.dir is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
