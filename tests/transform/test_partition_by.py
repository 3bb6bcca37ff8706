"""BigQuery-style partition_by and cluster_by, as models copied from the platform's spec write
them, partition and sort gold's files under real dbt."""

from __future__ import annotations

from pathlib import Path

import duckdb

from fleuve.project import Project
from fleuve.transform import run_transform

# As the platform's specification writes them.
DAILY = """
{{ config(
    materialized='table',
    partition_by={'field': 'order_date', 'data_type': 'date', 'granularity': 'day'},
    cluster_by=['customer_id']
) }}
select order_id, customer_id, cast(order_date as date) as order_date, amount
from {{ source('bronze', 'raw_orders') }}
"""
MONTHLY = """
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key='order_id',
    partition_by={'field': 'order_date', 'data_type': 'timestamp', 'granularity': 'month'}
) }}
select order_id, customer_id, order_date, amount from {{ source('bronze', 'raw_orders') }}
{% if is_incremental() %}
where order_id > (select max(order_id) from {{ this }})
{% endif %}
"""
RANGE = """
{{ config(partition_by={'field': 'order_id', 'data_type': 'int64',
                        'range': {'start': 0, 'end': 100000, 'interval': 1000}}) }}
select order_id from {{ source('bronze', 'raw_orders') }}
"""


def _files(project: Project, table: str) -> list[str]:
    rows = project.lake.query(
        f"SELECT data_file FROM ducklake_list_files('lake', '{table}', schema => 'gold')"
    )
    return rows["data_file"].to_pylist()


def _write_models(project: Project, **models: str) -> None:
    folder = project.settings.path("transform") / "models" / "marts"
    for name, sql in models.items():
        (folder / f"{name}.sql").write_text(sql, encoding="utf-8")


def test_bigquery_partition_by_and_cluster_by_partition_and_sort_the_files(shop: Project) -> None:
    _write_models(shop, spec_daily_orders=DAILY, spec_monthly_orders=MONTHLY)
    run = run_transform(
        shop.settings, ["run", "--select", "spec_daily_orders", "spec_monthly_orders"], db=shop.db
    )
    assert run.success, run.summary()

    daily = _files(shop, "spec_daily_orders")
    days = shop.lake.query(
        "SELECT count(DISTINCT CAST(order_date AS DATE)) AS n FROM gold.spec_daily_orders"
    )
    assert len(daily) == days["n"][0].as_py() > 300  # one file per day
    assert all("/year=" in f and "/month=" in f and "/day=" in f for f in daily)
    # cluster_by: the rows of each file are written in customer_id order.
    for path in daily:
        ids = [r[0] for r in duckdb.sql(f"SELECT customer_id FROM '{path}'").fetchall()]
        assert ids == sorted(ids), Path(path).name

    monthly = _files(shop, "spec_monthly_orders")
    assert monthly and all("/month=" in f and "/day=" not in f for f in monthly)
    # The incremental run keeps the partitioning for what it adds.
    shop.lake.commit(
        lambda c: c.execute(
            "INSERT INTO bronze.raw_orders SELECT order_id + 100000, customer_id, "
            "TIMESTAMP '2031-07-14 10:00:00', status, amount, currency, channel, updated_at, "
            "_fleuve_extracted_at, _fleuve_sync_id FROM bronze.raw_orders LIMIT 5"
        ),
        what="late orders",
    )
    again = run_transform(shop.settings, ["run", "--select", "spec_monthly_orders"], db=shop.db)
    assert again.success, again.summary()
    added = [f for f in _files(shop, "spec_monthly_orders") if f not in monthly]
    assert added and all("/year=2031/month=7/" in f for f in added)


def test_an_integer_range_partition_by_is_refused_with_the_equivalent(shop: Project) -> None:
    _write_models(shop, spec_range=RANGE)
    run = run_transform(shop.settings, ["run", "--select", "spec_range"], db=shop.db)
    assert not run.success
    text = run.summary() + " ".join(n.message or "" for n in run.nodes) + (run.error or "")
    assert "partitioned_by=['order_id']" in text, text
