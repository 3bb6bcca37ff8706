"""Serving: a 10M-row result over Arrow Flight, over the REST pages, and psql COPY as reference;
then 32 concurrent Flight clients on the demo dashboard's queries, with and without reflections.

    fleuve demo DIR --scale 1000000 --no-serve
    python bench/serve.py DIR [--rows 10000000] [--clients 32] [--seconds 20] [--only PART ...]

Writes `gold.bench_rows` (--rows rows) into DIR's lake and the same rows into the machine's
PostgreSQL (`bench_serve.rows` in database `test`), starts `fleuve serve` on DIR (free ports),
and measures from this process, as a client would:

- Flight: `get_flight_info` + `do_get` of `SELECT *`, every batch read (Arrow bytes / s);
- REST: `POST /api/v3/sql`, wait for COMPLETED, then every page of 500 rows (rows / s);
- DuckDB: the same read in-process, without a server (what serving adds to);
- psql: `COPY bench_serve.rows TO STDOUT` read through a pipe (the PostgreSQL reference);
- dashboard: `--clients` threads, each with its own Flight connection, run the dashboard queries
  round-robin for `--seconds`; p50 / p99 latency of a whole query (info + every batch): with
  reflections (answers read from them kept, as served by default), with reflections and every
  query run again (`server.keep_answers=false`), and without reflections.

`--only dashboard` (or flight, duckdb, psql, rest) runs just those parts; by default, all.

Targets: Flight ≥ 1 GB/s and ≥ 20x REST; dashboard p99 ≤ 200 ms with reflections.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pyarrow.flight as flight

from fleuve.project import Project
from fleuve.security import auth

PG = "postgresql://postgres@127.0.0.1:5432/test"
DASHBOARD = {
    "daily revenue, last 30 days": (
        "SELECT order_date, SUM(amount) AS daily_revenue FROM gold.fct_daily_revenue "
        "WHERE order_date >= DATE '2025-06-01' GROUP BY order_date ORDER BY order_date"
    ),
    "orders by status": "SELECT status, COUNT(*) AS orders FROM gold.fct_orders GROUP BY status",
    "revenue by country": (
        "SELECT country_code, SUM(amount) AS revenue FROM gold.fct_orders GROUP BY country_code"
    ),
    "average basket": (
        "SELECT AVG(amount) AS basket FROM gold.fct_orders WHERE status IN ('completed', 'shipped')"
    ),
    "top customers by lifetime value": (
        "SELECT customer_id, customer_name, lifetime_value FROM gold.fct_customer_lifetime_value "
        "ORDER BY lifetime_value DESC LIMIT 15"
    ),
}
REFLECTIONS = [
    "CREATE REFLECTION bench_orders_agg ON gold.fct_orders USING DIMENSIONS (status, country_code) "
    "MEASURES (SUM(amount), COUNT(*), AVG(amount))",
    "CREATE REFLECTION bench_daily_agg ON gold.fct_daily_revenue USING DIMENSIONS (order_date) "
    "MEASURES (SUM(amount))",
    "CREATE REFLECTION bench_ltv_raw ON gold.fct_customer_lifetime_value USING DISPLAY "
    "(customer_id, customer_name, lifetime_value)",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(project: Project, rows: int, *, lake: bool, postgres: bool) -> None:
    """The same rows in the lake and in PostgreSQL, as asked (skipped when already there)."""
    select = (
        "SELECT i AS id, i % 100000 AS customer_id, round(i * 0.37 % 1000, 2)::DOUBLE AS amount, "
        "DATE '2020-01-01' + (i % 2000)::INT AS day, 'item-' || (i % 50000) AS label "
        f"FROM range({rows}) t(i)"
    )
    con = project.lake.connect()
    have = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' "
        "AND schema_name = 'gold' AND table_name = 'bench_rows'"
    ).fetchone()[0]
    if lake and (
        not have or con.execute("SELECT count(*) FROM gold.bench_rows").fetchone()[0] != rows
    ):
        print(f"writing {rows:,} rows to gold.bench_rows ...", flush=True)
        project.lake.commit(
            lambda c: c.execute(f"CREATE OR REPLACE TABLE gold.bench_rows AS {select}")
        )
    if postgres:
        con.execute(f"ATTACH '{PG}' AS pg (TYPE postgres)")
        con.execute("CALL postgres_execute('pg', 'CREATE SCHEMA IF NOT EXISTS bench_serve')")
        try:
            pg_rows = con.execute("SELECT count(*) FROM pg.bench_serve.rows").fetchone()[0]
        except Exception:
            pg_rows = -1
        if pg_rows != rows:
            print(f"writing {rows:,} rows to PostgreSQL bench_serve.rows ...", flush=True)
            con.execute("DROP TABLE IF EXISTS pg.bench_serve.rows")
            con.execute(f"CREATE TABLE pg.bench_serve.rows AS {select}")
        con.execute("DETACH pg")
    con.close()


def start_server(folder: Path, *settings: str) -> tuple[subprocess.Popen, str, str]:
    http, grpc = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleuve",
            "--project",
            str(folder),
            *(arg for setting in settings for arg in ("--set", setting)),
            "serve",
            "--port",
            str(http),
            "--flight-port",
            str(grpc),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http}/health").is_success:
                return proc, f"http://127.0.0.1:{http}", f"grpc://127.0.0.1:{grpc}"
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("fleuve serve did not start")


def flight_query(url: str, token: str, sql: str) -> tuple[int, int]:
    """Run one query over Flight; (rows, Arrow bytes) read."""
    client = flight.FlightClient(url)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    rows = size = 0
    for endpoint in info.endpoints:
        for chunk in client.do_get(endpoint.ticket, options):
            rows += chunk.data.num_rows
            size += chunk.data.nbytes
    client.close()
    return rows, size


def bench_flight(url: str, token: str, rows: int, runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        got, size = flight_query(url, token, "SELECT * FROM gold.bench_rows")
        times.append(time.perf_counter() - started)
        assert got == rows, f"Flight returned {got} rows"
    best = statistics.median(times)
    return {"seconds": best, "rows_per_s": rows / best, "bytes": size, "bytes_per_s": size / best}


def bench_duckdb(folder: Path, rows: int, runs: int) -> float:
    """Seconds to read the rows straight from the lake in this process: what Flight adds to."""
    project = Project.open(folder)
    con = project.lake.connect()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        got = sum(
            b.num_rows for b in con.execute("SELECT * FROM gold.bench_rows").to_arrow_reader(65_536)
        )
        times.append(time.perf_counter() - started)
        assert got == rows
    con.close()
    project.close()
    return statistics.median(times)


def bench_rest(base: str, token: str, rows: int) -> dict[str, float]:
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600)
    started = time.perf_counter()
    job = client.post("/api/v3/sql", json={"sql": "SELECT * FROM gold.bench_rows"}).json()["id"]
    while client.get(f"/api/v3/job/{job}").json()["jobState"] not in ("COMPLETED", "FAILED"):
        time.sleep(0.05)
    completed = time.perf_counter() - started
    got = size = 0
    for offset in range(0, rows, 500):
        resp = client.get(f"/api/v3/job/{job}/results", params={"offset": offset, "limit": 500})
        size += len(resp.content)
        got += len(resp.json()["rows"])
    seconds = time.perf_counter() - started
    assert got == rows, f"REST returned {got} rows"
    return {
        "seconds": seconds,
        "job_seconds": completed,
        "rows_per_s": rows / seconds,
        "bytes": size,
    }


def bench_psql(rows: int) -> dict[str, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["psql", PG, "-c", "COPY bench_serve.rows TO STDOUT"], stdout=subprocess.PIPE
    )
    size = lines = 0
    while chunk := proc.stdout.read(1 << 20):
        size += len(chunk)
        lines += chunk.count(b"\n")
    proc.wait()
    seconds = time.perf_counter() - started
    assert lines == rows, f"psql returned {lines} rows"
    return {
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "bytes": size,
        "bytes_per_s": size / seconds,
    }


def run_sql(url: str, token: str, sql: str) -> None:
    try:
        flight_query(url, token, sql)
    except flight.FlightError as exc:
        if "already exists" not in str(exc):
            raise


def client_threads(
    url: str, token: str, clients: int, seconds: float
) -> tuple[list[float], list[str]]:
    """`clients` threads, each with its own Flight connection, querying for `seconds`."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    queries = list(DASHBOARD.values())

    def worker(n: int) -> None:
        client = flight.FlightClient(url)
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
        mine, i = [], n
        while time.monotonic() < stop:
            sql = queries[i % len(queries)]
            i += 1
            started = time.perf_counter()
            try:
                info = client.get_flight_info(
                    flight.FlightDescriptor.for_command(sql.encode()), options
                )
                client.do_get(info.endpoints[0].ticket, options).read_all()
            except flight.FlightError as exc:
                with lock:
                    errors.append(str(exc).splitlines()[0])
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
        client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def bench_dashboard(url: str, token: str, clients: int, seconds: float) -> dict[str, float]:
    """p50 / p99 of `clients` concurrent clients."""
    latencies, errors = client_threads(url, token, clients, seconds)
    if errors:
        print(f"  {len(errors)} errors, e.g. {errors[0]}")
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "queries": len(latencies),
        "qps": len(latencies) / seconds,
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
    }


def reflections_chosen(base: str, token: str) -> dict[str, bool]:
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    out = {}
    for name, sql in DASHBOARD.items():
        job = client.post("/api/v3/sql", json={"sql": sql}).json()["id"]
        while (state := client.get(f"/api/v3/job/{job}").json())["jobState"] not in (
            "COMPLETED",
            "FAILED",
            "CANCELED",
        ):
            time.sleep(0.02)
        rel = state["acceleration"]["reflectionRelationships"]
        out[name] = any(r["relationship"] == "CHOSEN" for r in rel)
    return out


def reflection_names(url: str, token: str) -> list[str]:
    """Every enabled reflection (the bench's and the demo's own)."""
    client = flight.FlightClient(url)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    sql = b"SELECT reflection_name FROM sys.reflections WHERE enabled"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
    names = client.do_get(info.endpoints[0].ticket, options).read_all().column(0).to_pylist()
    client.close()
    return names


PARTS = ("flight", "duckdb", "psql", "rest", "dashboard")


def bench_transfer(args: argparse.Namespace, url: str, base: str, token: str) -> None:
    """The 10M-row result over Flight, in-process DuckDB, psql and REST (those asked for)."""
    print(f"{args.rows:,} rows, {os.cpu_count()} cores", flush=True)
    fl = rest = ps = None
    if "flight" in args.only:
        fl = bench_flight(url, token, args.rows, args.runs)
        print(
            f"Flight   {fl['seconds']:7.2f} s  {fl['rows_per_s'] / 1e6:7.2f} M rows/s  "
            f"{fl['bytes_per_s'] / 1e9:5.2f} GB/s ({fl['bytes'] / 1e6:,.0f} MB Arrow)",
            flush=True,
        )
    if "duckdb" in args.only:
        raw = bench_duckdb(args.project, args.rows, args.runs)
        arrow = f"  {fl['bytes'] / raw / 1e9:5.2f} GB/s" if fl else ""
        print(
            f"DuckDB   {raw:7.2f} s  {args.rows / raw / 1e6:7.2f} M rows/s{arrow} "
            "(the lake read in-process, no network)",
            flush=True,
        )
    if "psql" in args.only:
        ps = statistics.median_low([bench_psql(args.rows)["seconds"] for _ in range(args.runs)])
        print(
            f"psql     {ps:7.2f} s  {args.rows / ps / 1e6:7.2f} M rows/s  (COPY TO STDOUT, text)",
            flush=True,
        )
    if "rest" in args.only:
        rest = bench_rest(base, token, args.rows)
        print(
            f"REST     {rest['seconds']:7.2f} s  {rest['rows_per_s'] / 1e6:7.2f} M rows/s  "
            f"(job {rest['job_seconds']:.1f} s, {args.rows // 500:,} pages, "
            f"{rest['bytes'] / 1e6:,.0f} MB JSON)",
            flush=True,
        )
    if fl and rest:
        print(f"Flight / REST: {rest['seconds'] / fl['seconds']:.1f}x", flush=True)
    if fl and ps:
        print(f"Flight / psql: {ps / fl['seconds']:.1f}x", flush=True)


def run_dashboard(args: argparse.Namespace, url: str, base: str, token: str) -> None:
    """The dashboard queries from `--clients` clients: with reflections, kept answers or not,
    then without reflections."""
    for sql in REFLECTIONS:
        run_sql(url, token, sql)
    chosen = reflections_chosen(base, token)
    print(
        "reflection chosen: " + ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in chosen.items())
    )

    def measure(label: str, url: str) -> None:
        bench_dashboard(url, token, args.clients, 3)  # warm-up
        r = bench_dashboard(url, token, args.clients, args.seconds)
        print(
            f"dashboard, {args.clients} clients, {label}: p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  {r['qps']:6.0f} queries/s  "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )

    measure("reflections on", url)
    # The same, with every query run again: what reflections alone give.
    proc, _, url = start_server(args.project, "server.keep_answers=false")
    try:
        measure("reflections on, answers not kept", url)
        names = reflection_names(url, token)
        for name in names:
            run_sql(url, token, f"ALTER REFLECTION {name} SET ENABLED = FALSE")
        try:
            measure("reflections off", url)
        finally:
            for name in names:
                run_sql(url, token, f"ALTER REFLECTION {name} SET ENABLED = TRUE")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="a demo project (fleuve demo DIR --no-serve)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=3, help="Flight and psql runs (median)")
    parser.add_argument(
        "--only", nargs="+", choices=PARTS, default=list(PARTS), help="the parts to run"
    )
    args = parser.parse_args()

    project = Project.open(args.project)
    prepare(
        project,
        args.rows,
        lake=bool({"flight", "duckdb", "rest"} & set(args.only)),
        postgres="psql" in args.only,
    )
    token, _ = auth.create_personal_token(project.db, "admin", "bench-serve", days=1)
    project.close()
    proc, base, url = start_server(args.project)
    try:
        if set(args.only) - {"dashboard"}:
            bench_transfer(args, url, base, token)
        if "dashboard" in args.only:
            run_dashboard(args, url, base, token)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
