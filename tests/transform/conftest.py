"""A shop's bronze layer landed straight into a fresh project's lake, as ingestion lands it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from fleuve.lake import Lake
from fleuve.project import Project, init_project

# Names in the scripts the demo uses, so every layer handles real text.
NAMES = [
    ("Léa", "Dubois", "fr", "FR", "Lyon"),
    ("François", "Müller-Hélie", "fr", "FR", "Paris"),
    ("محمد", "العلوي", "ar", "MA", "الدار البيضاء"),
    ("فاطمة", "بنعلي", "ar", "MA", "فاس"),
    ("伟", "王", "zh", "CN", "上海"),
    ("秀英", "李", "zh", "CN", "北京"),
    ("さくら", "中村", "ja", "JP", "神戸"),
    ("翔太", "佐藤", "ja", "JP", "東京"),
]
STATUSES = ["completed", "completed", "completed", "shipped", "pending", "cancelled", "returned"]
ANCHOR = "TIMESTAMP '2026-06-01 00:00:00'"


def _values() -> str:
    return ", ".join(
        "(" + ", ".join(f"'{v}'" for v in row) + f", {i})" for i, row in enumerate(NAMES)
    )


def land_shop(lake: Lake, *, customers: int = 400, orders: int = 3000, start: int = 1) -> None:
    """Create the five bronze tables (the demo's columns) holding a small deterministic shop."""
    names = f"(VALUES {_values()}) AS n(first_name, last_name, locale, country_code, city, k)"
    sync = "'test-sync-1'"

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"""
            CREATE TABLE bronze.raw_customers AS
            SELECT range AS customer_id, n.first_name, n.last_name,
                   CASE WHEN n.locale IN ('zh', 'ja') THEN n.last_name || ' ' || n.first_name
                        ELSE n.first_name || ' ' || n.last_name END AS full_name,
                   'client' || range || '@example.' || lower(n.country_code) AS email,
                   '+33 6' || lpad(range::VARCHAR, 8, '0') AS phone,
                   range || ' rue de la Paix' AS address, n.city, n.city AS region,
                   lpad((range * 7919 % 100000)::VARCHAR, 5, '0') AS postal_code,
                   n.country_code, n.locale,
                   {ANCHOR} - INTERVAL (range % 700) DAY AS created_at,
                   {ANCHOR} - INTERVAL (range % 300) DAY AS updated_at,
                   now() AS _fleuve_extracted_at, {sync} AS _fleuve_sync_id
            FROM range({start}, {start + customers}) JOIN {names} ON n.k = range % {len(NAMES)}
        """)
        con.execute(f"""
            CREATE TABLE bronze.raw_products AS
            SELECT range AS product_id, 'SKU-' || lpad(range::VARCHAR, 6, '0') AS sku,
                   'Produit n°' || range AS name, ['Maison', 'Épicerie fine', 'Livres'][range % 3 + 1] AS category,
                   (5 + range % 40)::DOUBLE AS unit_price, 'EUR' AS currency,
                   '2024-06-08T00:00:00Z' AS created_at, '2026-05-01T10:00:00Z' AS updated_at,
                   now() AS _fleuve_extracted_at, {sync} AS _fleuve_sync_id
            FROM range(1, 51)
        """)
        con.execute("CREATE TABLE bronze.raw_orders AS " + _orders_sql(start, orders, customers))
        con.execute("CREATE TABLE bronze.raw_order_lines AS " + _lines_sql(start, orders))
        con.execute(
            "CREATE TABLE bronze.raw_web_events AS " + _events_sql(1, orders * 2 - 1, customers)
        )

    lake.commit(work, what="land the test shop")


def _orders_sql(first: int, count: int, customers: int) -> str:
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    return f"""
        SELECT range AS order_id, 1 + range * 31 % {customers} AS customer_id,
               {ANCHOR} - INTERVAL (range % 400) DAY + INTERVAL (range % 86400) SECOND AS order_date,
               [{statuses}][range % {len(STATUSES)} + 1] AS status,
               ((range % 50 + 1) * 2 + (range % 5 + 1) * 3)::DOUBLE AS amount,
               'EUR' AS currency, ['web', 'mobile', 'marketplace'][range % 3 + 1] AS channel,
               {ANCHOR} - INTERVAL (range % 400) DAY + INTERVAL 1 DAY AS updated_at,
               now() AS _fleuve_extracted_at, 'test-sync-' || {first} AS _fleuve_sync_id
        FROM range({first}, {first + count})
    """


def _lines_sql(first: int, count: int) -> str:
    # Two lines per order whose amounts add up to the order's amount.
    return f"""
        SELECT o * 2 + l AS order_line_id, o AS order_id, (o + l) % 50 + 1 AS product_id,
               CASE l WHEN 0 THEN o % 5 + 1 ELSE 1 END AS quantity,
               CASE l WHEN 0 THEN 3.0 ELSE ((o % 50 + 1) * 2)::DOUBLE END AS unit_price,
               CASE l WHEN 0 THEN ((o % 5 + 1) * 3)::DOUBLE ELSE ((o % 50 + 1) * 2)::DOUBLE END
                   AS line_amount,
               now() AS _fleuve_extracted_at, 'test-sync-' || {first} AS _fleuve_sync_id
        FROM range({first}, {first + count}) r(o), range(2) s(l)
    """


def _events_sql(first: int, count: int, customers: int) -> str:
    return f"""
        SELECT range AS event_id, 's' || (range // 4) AS session_id,
               CASE WHEN range % 5 = 0 THEN NULL ELSE 1 + range % {customers} END AS customer_id,
               ['page_view', 'search', 'add_to_cart', 'checkout'][range % 4 + 1] AS event_type,
               '/produits/' || (range % 50 + 1) AS page_url, range % 50 + 1 AS product_id,
               {ANCHOR} - INTERVAL (range % 10000) MINUTE AS occurred_at,
               ['mobile', 'desktop'][range % 2 + 1] AS device,
               ['FR', 'MA', 'CN', 'JP'][range % 4 + 1] AS country_code,
               now() AS _fleuve_extracted_at, 'test-sync-' || {first} AS _fleuve_sync_id
        FROM range({first}, {first + count})
    """


def append_events(lake: Lake, first: int, count: int, customers: int = 400) -> None:
    """Land `count` new web events (ids from `first`), as a new file drop would."""
    lake.commit(
        lambda con: con.execute(
            "INSERT INTO bronze.raw_web_events " + _events_sql(first, count, customers)
        ),
        what="land new web events",
    )


def append_orders(lake: Lake, first: int, count: int, customers: int = 400) -> None:
    """Land `count` new orders (ids from `first`) and their lines, as an incremental sync would."""

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("INSERT INTO bronze.raw_orders " + _orders_sql(first, count, customers))
        con.execute("INSERT INTO bronze.raw_order_lines " + _lines_sql(first, count))

    lake.commit(work, what="land new orders")


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Project]:
    """A fresh project (SQLite catalog, local data) whose bronze layer holds the test shop."""
    init_project(tmp_path / "shop", "shop")
    project = Project.open(tmp_path / "shop")
    land_shop(project.lake)
    try:
        yield project
    finally:
        project.close()
