"""Incremental models merge only what landed since the last run, and equal a full rebuild."""

from __future__ import annotations

import duckdb

from fleuve.lake import quote_ident
from fleuve.project import Project
from fleuve.transform import run_transform
from tests.transform.conftest import append_events, append_orders

INCREMENTAL = [
    "silver.stg_customers",
    "silver.stg_orders",
    "silver.stg_web_events",
    "silver.int_customer_orders",
    "gold.fct_orders",
    "gold.fct_customer_lifetime_value",
    "gold.fct_daily_revenue",
]


def _build(project: Project, *args: str) -> None:
    run = run_transform(project.settings, list(args), db=project.db)
    assert run.success, run.summary()


def _changed_rows(project: Project, table: str, since: int) -> int:
    """Rows DuckLake says were inserted or updated in `table` after snapshot `since`."""
    schema, name = table.split(".")
    now = project.lake.current_snapshot()
    return project.lake.query(
        f"SELECT count(*) AS n FROM ducklake_table_changes('lake', '{schema}', '{name}', {since + 1}, {now}) "
        "WHERE change_type IN ('insert', 'update_postimage')"
    )["n"][0].as_py()


def _differences(project: Project, table: str, version: int) -> int:
    """Rows that differ (both ways) between `table` at snapshot `version` and now."""
    then = f"SELECT * FROM {table} AT (VERSION => {version})"
    now = f"SELECT * FROM {table}"
    return project.lake.query(
        f"SELECT count(*) AS n FROM (({then} EXCEPT ALL {now}) UNION ALL ({now} EXCEPT ALL {then}))"
    )["n"][0].as_py()


def test_incremental_run_merges_only_new_rows_and_equals_a_full_rebuild(shop: Project) -> None:
    lake = shop.lake
    _build(shop, "run")
    first = {t: lake.query(f"SELECT count(*) AS n FROM {t}")["n"][0].as_py() for t in INCREMENTAL}

    before = lake.current_snapshot()
    append_orders(lake, first=3001, count=200)
    append_events(lake, first=6000, count=150)
    # A customer whose completed orders all get cancelled must leave the lifetime-value mart,
    # and a day whose orders all go back to pending must leave the daily revenue.
    gone_customer = lake.query(
        "SELECT min(customer_id) AS c FROM gold.fct_customer_lifetime_value WHERE customer_id "
        "NOT IN (SELECT customer_id FROM bronze.raw_orders WHERE order_id > 3000)"
    )["c"][0].as_py()
    gone_day = lake.query(
        "SELECT min(order_date) AS d FROM gold.fct_daily_revenue WHERE order_date NOT IN "
        "(SELECT CAST(order_date AS DATE) FROM bronze.raw_orders WHERE order_id > 3000)"
    )["d"][0].as_py()
    renamed = 7

    def changes(con: duckdb.DuckDBPyConnection) -> None:
        bump = "updated_at = updated_at + INTERVAL 2 DAY, _fleuve_extracted_at = now()"
        con.execute(
            f"UPDATE bronze.raw_orders SET status = 'cancelled', {bump} WHERE customer_id = ?",
            [gone_customer],
        )
        con.execute(
            f"UPDATE bronze.raw_orders SET status = 'pending', {bump} "
            "WHERE CAST(order_date AS DATE) = ?",
            [gone_day],
        )
        con.execute(
            f"UPDATE bronze.raw_orders SET amount = amount + 10, {bump} WHERE order_id % 97 = 0"
        )
        con.execute(
            f"UPDATE bronze.raw_customers SET full_name = 'Zoé Lefèvre-Nakamura', {bump} "
            "WHERE customer_id = ?",
            [renamed],
        )

    lake.commit(changes, what="update bronze")
    touched = lake.query(
        "SELECT count(*) AS n FROM bronze.raw_orders WHERE _fleuve_extracted_at > "
        "(SELECT min(_fleuve_extracted_at) + INTERVAL 1 SECOND FROM bronze.raw_orders)"
    )["n"][0].as_py()
    assert 200 < touched < 600

    _build(shop, "run")
    # Only the new and changed orders were merged into the incremental models.
    assert _changed_rows(shop, "silver.stg_orders", before) == touched
    assert _changed_rows(shop, "silver.stg_customers", before) == 1
    assert _changed_rows(shop, "silver.stg_web_events", before) == 150
    # The renamed customer's orders are re-derived, not only the changed orders.
    assert (
        _changed_rows(shop, "silver.int_customer_orders", before)
        < first["silver.int_customer_orders"] // 4
    )
    assert lake.query("SELECT count(*) AS n FROM silver.stg_orders")["n"][0].as_py() == 3200
    assert (
        lake.query(
            "SELECT count(*) AS n FROM gold.fct_customer_lifetime_value WHERE customer_id = ?",
            [gone_customer],
        )["n"][0].as_py()
        == 0
    )
    assert (
        lake.query(
            "SELECT count(*) AS n FROM gold.fct_daily_revenue WHERE order_date = ?", [gone_day]
        )["n"][0].as_py()
        == 0
    )
    names = lake.query(
        "SELECT DISTINCT customer_name FROM gold.fct_customer_lifetime_value WHERE customer_id = ?",
        [renamed],
    )["customer_name"].to_pylist()
    assert names == ["ZOÉ LEFÈVRE-NAKAMURA"]

    incremental = lake.current_snapshot()
    _build(shop, "run", "--full-refresh")
    for table in INCREMENTAL:
        assert _differences(shop, table, incremental) == 0, f"{table} differs from a full rebuild"


def test_a_new_column_reaches_an_incremental_model_without_a_rebuild(shop: Project) -> None:
    _build(shop, "run", "--select", "stg_orders")
    model = shop.settings.path("transform") / "models" / "staging" / "stg_orders.sql"
    line = "    LOWER(channel) AS channel,\n"
    text = model.read_text(encoding="utf-8")
    assert line in text
    model.write_text(
        text.replace(line, line + "    length(channel) AS channel_length,\n"), encoding="utf-8"
    )
    append_orders(shop.lake, first=3001, count=10)
    _build(shop, "run", "--select", "stg_orders")
    columns = [
        r[0]
        for r in shop.lake.connect()
        .execute(f"DESCRIBE silver.{quote_ident('stg_orders')}")
        .fetchall()
    ]
    assert "channel_length" in columns  # on_schema_change='sync_all_columns'
    filled = shop.lake.query(
        "SELECT count(channel_length) AS n, count(*) AS total FROM silver.stg_orders"
    )
    assert filled["n"][0].as_py() == 10 and filled["total"][0].as_py() == 3010
