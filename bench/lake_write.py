"""Rows per second writing generated rows into the bronze layer, on a local folder and on S3.

Each target is measured next to a plain DuckDB `COPY ... TO parquet` of the same rows to the
same place, so the ratio shows what the lake (catalog commit, partitioning, layer options) costs.

    python bench/lake_write.py [--rows 10000000]

S3 is moto's S3 server on loopback, started by this program: it measures the lake's S3 path,
not a production object store.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import socket
import tempfile
import time
from pathlib import Path

import yaml

from fleuve.lake import connect_duckdb, quote_literal
from fleuve.project import Project, init_project

ROWS_SQL = """
SELECT range AS order_id,
       1 + hash(range, 'c') % 2000000 AS customer_id,
       (hash(range, 'a') % 100000 / 100.0)::DECIMAL(12, 2) AS amount,
       ['completed', 'shipped', 'pending', 'cancelled'][1 + (hash(range, 's') % 4)::INT] AS status,
       TIMESTAMP '2026-01-01' + to_seconds((hash(range, 't') % 31536000)::BIGINT) AS order_date,
       ['Léa Martin', 'محمد العلوي', '王伟', '佐藤 翔太'][1 + (hash(range, 'n') % 4)::INT] AS customer_name,
       now() AS _fleuve_extracted_at,
       'bench' AS _fleuve_sync_id
FROM range({rows})
"""


def _start_s3() -> tuple[object, str, str]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per S3 request otherwise

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=f"http://{endpoint}",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).create_bucket(Bucket="fleuve-bench")
    return server, endpoint, "fleuve-bench"


def _project(folder: Path, s3: dict | None) -> Project:
    folder.mkdir(parents=True)
    if s3:
        (folder / "fleuve.yml").write_text(yaml.safe_dump({"lake": s3}))
    init_project(folder, "bench")
    return Project.open(folder)


def bench_lake(project: Project, rows: int) -> float:
    """Seconds to write `rows` into a new partitioned bronze table in one commit."""
    lake = project.lake
    lake.commit(
        lambda c: c.execute(f"CREATE TABLE bronze.orders AS {ROWS_SQL.format(rows=0)} LIMIT 0")
    )
    lake.partition_for_layer("bronze.orders", "_fleuve_extracted_at")
    started = time.perf_counter()
    lake.commit(lambda c: c.execute(f"INSERT INTO bronze.orders {ROWS_SQL.format(rows=rows)}"))
    seconds = time.perf_counter() - started
    assert lake.query("SELECT count(*) AS n FROM bronze.orders")["n"][0].as_py() == rows
    return seconds


def bench_parquet(target: str, rows: int, secret_sql: str | None) -> float:
    """Seconds for plain DuckDB to write the same rows as one snappy Parquet file."""
    con = connect_duckdb()
    if secret_sql:
        con.execute(secret_sql)
    started = time.perf_counter()
    con.execute(
        f"COPY ({ROWS_SQL.format(rows=rows)}) TO {quote_literal(target)} (FORMAT parquet, COMPRESSION snappy)"
    )
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def main() -> None:
    """Run both targets and print rows/s and the ratio to plain Parquet writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    rows = args.rows
    work = Path(tempfile.mkdtemp(prefix="fleuve-bench-"))
    results = []
    try:
        project = _project(work / "local", None)
        lake_s = bench_lake(project, rows)
        project.close()
        plain_s = bench_parquet(str(work / "plain.parquet"), rows, None)
        results.append(("local folder", lake_s, plain_s))

        server, endpoint, bucket = _start_s3()
        try:
            s3 = {
                "data_path": f"s3://{bucket}/lake/",
                "s3": {
                    "endpoint": endpoint,
                    "access_key_id": "bench",
                    "secret_access_key": "bench",
                    "use_ssl": False,
                    "url_style": "path",
                },
            }
            project = _project(work / "s3", s3)
            lake_s = bench_lake(project, rows)
            project.close()
            secret = (
                f"CREATE SECRET (TYPE s3, KEY_ID 'bench', SECRET 'bench', ENDPOINT '{endpoint}', "
                "URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
            )
            plain_s = bench_parquet(f"s3://{bucket}/plain/orders.parquet", rows, secret)
            results.append(("S3 (moto on loopback)", lake_s, plain_s))
        finally:
            server.stop()  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"\nWriting {rows:,} generated rows into bronze (partitioned by ingestion date, snappy)\n"
    )
    print(
        f"{'target':<24}{'lake s':>9}{'lake rows/s':>14}{'plain parquet s':>17}{'lake / plain':>14}"
    )
    for name, lake_s, plain_s in results:
        print(
            f"{name:<24}{lake_s:>9.2f}{rows / lake_s:>14,.0f}{plain_s:>17.2f}{plain_s / lake_s:>13.2f}x"
        )


if __name__ == "__main__":
    main()
