"""Generate the demo shop: an operational SQLite database, CSV drops and a catalog for the API.

Values come from hashing row numbers, so the same scale and day give the same data, and
DuckDB generates 10M orders as easily as 100k. Names and addresses are in French, Arabic,
Chinese and Japanese so every layer handles real text.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb

from fleuve.lake import connect_duckdb, quote_literal

LOCALES = {
    # locale: (country, first names, last names, cities, streets, name order)
    "fr": (
        "FR",
        [
            "Camille",
            "Léa",
            "Chloé",
            "Manon",
            "Inès",
            "Jade",
            "Louis",
            "Gabriel",
            "Raphaël",
            "Jules",
            "Hugo",
            "Arthur",
            "Éloïse",
            "Zoé",
            "Théo",
            "Noé",
            "Maëlys",
            "Anaïs",
            "François",
            "Hélène",
        ],
        [
            "Martin",
            "Bernard",
            "Dubois",
            "Thomas",
            "Robert",
            "Richard",
            "Petit",
            "Durand",
            "Leroy",
            "Moreau",
            "Simon",
            "Laurent",
            "Lefèvre",
            "Michel",
            "Garcia",
            "Fournier",
            "Girard",
            "Bonnet",
            "Dupont",
            "Lambert",
        ],
        [
            "Paris",
            "Lyon",
            "Marseille",
            "Toulouse",
            "Nice",
            "Nantes",
            "Strasbourg",
            "Montpellier",
            "Bordeaux",
            "Lille",
            "Rennes",
            "Saint-Étienne",
            "Besançon",
            "Orléans",
            "Aix-en-Provence",
        ],
        [
            "rue de la République",
            "avenue des Champs-Élysées",
            "boulevard Saint-Michel",
            "rue du Faubourg Saint-Honoré",
            "place Bellecour",
            "quai des Chartrons",
            "rue Sainte-Catherine",
            "cours Mirabeau",
        ],
        "first last",
    ),
    "ar": (
        "MA",
        [
            "محمد",
            "أحمد",
            "فاطمة",
            "عائشة",
            "يوسف",
            "مريم",
            "عمر",
            "خديجة",
            "علي",
            "ليلى",
            "حسن",
            "سارة",
            "إبراهيم",
            "نور",
            "خالد",
            "سلمى",
        ],
        [
            "العلوي",
            "بنعلي",
            "الإدريسي",
            "التازي",
            "الفاسي",
            "بنجلون",
            "الشرقاوي",
            "المنصوري",
            "الحسني",
            "القاسمي",
            "الزياني",
            "برادة",
        ],
        ["الدار البيضاء", "الرباط", "مراكش", "فاس", "طنجة", "أكادير", "مكناس", "وجدة", "تطوان"],
        [
            "شارع محمد الخامس",
            "شارع الحسن الثاني",
            "زنقة ابن بطوطة",
            "شارع الزرقطوني",
            "درب السلطان",
        ],
        "first last",
    ),
    "zh": (
        "CN",
        [
            "伟",
            "芳",
            "娜",
            "秀英",
            "敏",
            "静",
            "丽",
            "强",
            "磊",
            "军",
            "洋",
            "勇",
            "艳",
            "杰",
            "娟",
            "涛",
        ],
        ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙"],
        ["北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "南京", "西安", "重庆"],
        ["人民路", "中山路", "解放路", "建设路", "长安街", "南京东路"],
        "lastfirst",
    ),
    "ja": (
        "JP",
        [
            "翔太",
            "陽菜",
            "結衣",
            "蓮",
            "大翔",
            "さくら",
            "美咲",
            "悠真",
            "葵",
            "健太",
            "花子",
            "太郎",
        ],
        [
            "佐藤",
            "鈴木",
            "高橋",
            "田中",
            "伊藤",
            "渡辺",
            "山本",
            "中村",
            "小林",
            "加藤",
            "吉田",
            "山田",
        ],
        ["東京", "大阪", "横浜", "名古屋", "札幌", "福岡", "神戸", "京都", "川崎", "さいたま"],
        ["銀座", "本町", "中央通り", "栄町", "表参道", "道頓堀"],
        "last first",
    ),
}
# Share of customers per locale, in LOCALES order.
LOCALE_WEIGHTS = [0.4, 0.2, 0.2, 0.2]

CATEGORIES = [
    "Maison",
    "Beauté",
    "Mode",
    "Épicerie fine",
    "Livres",
    "Électronique",
    "Jardin",
    "Sport",
]
PRODUCT_WORDS = [
    "Classique",
    "Premium",
    "Bio",
    "Artisanal",
    "Édition limitée",
    "Essentiel",
    "Voyage",
]
STATUSES = [
    ("completed", 0.70),
    ("shipped", 0.12),
    ("pending", 0.08),
    ("cancelled", 0.06),
    ("returned", 0.04),
]
EVENT_TYPES = ["page_view", "page_view", "page_view", "search", "add_to_cart", "checkout"]
DEVICES = ["desktop", "mobile", "tablet"]


@dataclass(frozen=True)
class DemoSizes:
    """How many rows of each entity the demo generates for a number of orders."""

    orders: int

    @property
    def customers(self) -> int:
        return max(100, self.orders // 5)

    @property
    def products(self) -> int:
        return min(5000, max(200, self.orders // 200))

    @property
    def web_events(self) -> int:
        return self.orders * 3


@dataclass
class DemoData:
    """Where the generated sources are."""

    shop_db: Path
    drops: Path
    catalog: Path
    sizes: DemoSizes
    seconds: float


def generate(folder: Path, orders: int = 100_000, today: date | None = None) -> DemoData:
    """Write the shop's sources under `folder`: shop.sqlite, drops/web_events/*.csv, catalog.json."""
    started = time.monotonic()
    sizes = DemoSizes(orders)
    today = today or date.today()
    folder.mkdir(parents=True, exist_ok=True)
    shop_db = folder / "shop.sqlite"
    drops = folder / "drops" / "web_events"
    catalog = folder / "catalog.json"
    for stale in (shop_db, Path(f"{shop_db}-journal")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(drops, ignore_errors=True)
    drops.mkdir(parents=True)

    con = connect_duckdb()
    try:
        _macros(con, today)
        _build(con, sizes)
        _write_sqlite(con, shop_db)
        _write_csv_drops(con, drops)
        _write_catalog(con, catalog)
    finally:
        con.close()
    return DemoData(shop_db, drops.parent, catalog, sizes, time.monotonic() - started)


def _list(values: list[str]) -> str:
    return "[" + ", ".join(quote_literal(v) for v in values) + "]"


def _macros(con: duckdb.DuckDBPyConnection, today: date) -> None:
    # u(i, salt): a uniform number in [0, 1) from a row number; pick(list, i, salt): an element.
    con.execute("CREATE MACRO u(i, salt) AS (hash(i, salt) % 1000003) / 1000003.0")
    con.execute("CREATE MACRO pick(xs, i, salt) AS xs[1 + (hash(i, salt) % len(xs))::INT]")
    con.execute(f"CREATE MACRO anchor() AS DATE {quote_literal(today.isoformat())}")


def _locale_case(field: Literal[1, 2, 3, 4]) -> str:
    """A CASE expression choosing the locale-specific list number `field` for a customer."""
    parts = []
    for loc, spec in LOCALES.items():
        parts.append(
            f"WHEN locale = {quote_literal(loc)} THEN pick({_list(spec[field])}, customer_id, {quote_literal(loc + str(field))})"
        )
    return "CASE " + " ".join(parts) + " END"


def _build(con: duckdb.DuckDBPyConnection, sizes: DemoSizes) -> None:
    bounds, acc = [], 0.0
    for loc, weight in zip(LOCALES, LOCALE_WEIGHTS, strict=True):
        acc += weight
        bounds.append(f"WHEN u(i, 'loc') < {acc:.4f} THEN {quote_literal(loc)}")
    countries = " ".join(
        f"WHEN {quote_literal(k)} THEN {quote_literal(v[0])}" for k, v in LOCALES.items()
    )
    con.execute(f"""
        CREATE TABLE base_customers AS
        SELECT i AS customer_id, CASE {" ".join(bounds)} ELSE 'fr' END AS locale
        FROM range(1, {sizes.customers + 1}) t(i)""")
    name_order = " ".join(
        f"WHEN {quote_literal(k)} THEN "
        + {
            "first last": "first_name || ' ' || last_name",
            "last first": "last_name || ' ' || first_name",
            "lastfirst": "last_name || first_name",
        }[v[5]]
        for k, v in LOCALES.items()
    )
    con.execute(f"""
        CREATE TABLE customers AS
        WITH named AS (
            SELECT customer_id, locale,
                   {_locale_case(1)} AS first_name, {_locale_case(2)} AS last_name,
                   {_locale_case(3)} AS city, {_locale_case(4)} AS street
            FROM base_customers)
        SELECT customer_id, first_name, last_name,
               CASE locale {name_order} END AS full_name,
               'client' || customer_id || '@' || CASE locale WHEN 'fr' THEN 'exemple.fr'
                   WHEN 'ar' THEN 'example.ma' WHEN 'zh' THEN 'example.cn' ELSE 'example.jp' END AS email,
               '+' || (CASE locale WHEN 'fr' THEN '33' WHEN 'ar' THEN '212' WHEN 'zh' THEN '86' ELSE '81' END)
                   || ' ' || lpad((hash(customer_id, 'tel') % 1000000000)::VARCHAR, 9, '0') AS phone,
               (1 + hash(customer_id, 'no') % 180)::VARCHAR || ' ' || street AS address,
               city,
               city AS region,
               lpad((hash(customer_id, 'zip') % 99999)::VARCHAR, 5, '0') AS postal_code,
               CASE locale {countries} END AS country_code,
               locale,
               (anchor() - INTERVAL 730 DAY + to_seconds((u(customer_id, 'created') * 365 * 86400)::BIGINT))::TIMESTAMP AS created_at,
               (anchor() - INTERVAL 365 DAY + to_seconds((u(customer_id, 'updated') * 364 * 86400)::BIGINT))::TIMESTAMP AS updated_at
        FROM named""")
    con.execute(f"""
        CREATE TABLE products AS
        SELECT i AS product_id,
               'SKU-' || lpad(i::VARCHAR, 6, '0') AS sku,
               pick({_list(CATEGORIES)}, i, 'cat') || ' ' || pick({_list(PRODUCT_WORDS)}, i, 'word') || ' n°' || i AS name,
               pick({_list(CATEGORIES)}, i, 'cat') AS category,
               round(2 + u(i, 'price') * 198, 2)::DECIMAL(10, 2) AS unit_price,
               'EUR' AS currency,
               (anchor() - INTERVAL 900 DAY)::TIMESTAMP AS created_at,
               (anchor() - INTERVAL 30 DAY + to_seconds((u(i, 'pupd') * 29 * 86400)::BIGINT))::TIMESTAMP AS updated_at
        FROM range(1, {sizes.products + 1}) t(i)""")
    status_case, acc = [], 0.0
    for status, weight in STATUSES:
        acc += weight
        status_case.append(f"WHEN u(i, 'status') < {acc:.4f} THEN {quote_literal(status)}")
    con.execute(f"""
        CREATE TABLE order_heads AS
        SELECT i AS order_id,
               1 + (hash(i, 'cust') % {sizes.customers})::BIGINT AS customer_id,
               (anchor() - INTERVAL 365 DAY + to_seconds((u(i, 'date') * 365 * 86400)::BIGINT))::TIMESTAMP AS order_date,
               CASE {" ".join(status_case)} ELSE 'completed' END AS status,
               pick(['web', 'web', 'mobile', 'marketplace'], i, 'chan') AS channel,
               1 + (hash(i, 'nlines') % 4)::INT AS n_lines
        FROM range(1, {sizes.orders + 1}) t(i)""")
    con.execute(f"""
        CREATE TABLE order_lines AS
        SELECT row_number() OVER (ORDER BY o.order_id, l.n) AS order_line_id,
               o.order_id,
               1 + (hash(o.order_id, l.n, 'prod') % {sizes.products})::BIGINT AS product_id,
               1 + (hash(o.order_id, l.n, 'qty') % 3)::INT AS quantity
        FROM order_heads o JOIN range(4) l(n) ON l.n < o.n_lines""")
    con.execute("""
        CREATE OR REPLACE TABLE order_lines AS
        SELECT l.order_line_id, l.order_id, l.product_id, l.quantity, p.unit_price,
               (l.quantity * p.unit_price)::DECIMAL(12, 2) AS line_amount
        FROM order_lines l JOIN products p USING (product_id)
        ORDER BY l.order_line_id""")
    con.execute("""
        CREATE TABLE orders AS
        SELECT o.order_id, o.customer_id, o.order_date, o.status, s.amount, 'EUR' AS currency, o.channel,
               o.order_date + to_seconds((hash(o.order_id, 'upd') % 172800)::BIGINT) AS updated_at
        FROM order_heads o
        JOIN (SELECT order_id, sum(line_amount)::DECIMAL(12, 2) AS amount FROM order_lines GROUP BY 1) s
          USING (order_id)
        ORDER BY o.order_id""")
    con.execute(f"""
        CREATE TABLE web_events AS
        SELECT i AS event_id,
               'S' || (i // 4)::VARCHAR AS session_id,
               CASE WHEN u(i, 'anon') < 0.3 THEN NULL
                    ELSE 1 + (hash(i // 4, 'cust') % {sizes.customers})::BIGINT END AS customer_id,
               pick({_list(EVENT_TYPES)}, i, 'etype') AS event_type,
               '/produits/' || (1 + hash(i, 'eprod') % {sizes.products})::VARCHAR AS page_url,
               1 + (hash(i, 'eprod') % {sizes.products})::BIGINT AS product_id,
               (anchor() - INTERVAL 365 DAY + to_seconds((u(i // 4, 'edate') * 365 * 86400)::BIGINT + i % 4 * 30))::TIMESTAMP AS occurred_at,
               pick({_list(DEVICES)}, i // 4, 'dev') AS device,
               pick(['FR', 'FR', 'MA', 'CN', 'JP'], i // 4, 'ecountry') AS country_code
        FROM range(1, {sizes.web_events + 1}) t(i)""")


_SQLITE_DDL = {
    "customers": """CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
        full_name TEXT, email TEXT, phone TEXT, address TEXT, city TEXT, region TEXT, postal_code TEXT,
        country_code TEXT, locale TEXT, created_at TIMESTAMP, updated_at TIMESTAMP)""",
    "orders": """CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
        order_date TIMESTAMP, status TEXT, amount DECIMAL(12,2), currency TEXT, channel TEXT,
        updated_at TIMESTAMP)""",
    "order_lines": """CREATE TABLE order_lines (order_line_id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
        product_id INTEGER NOT NULL, quantity INTEGER, unit_price DECIMAL(10,2), line_amount DECIMAL(12,2))""",
}


def _write_sqlite(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Create the tables with SQLite's own types, then bulk-insert through DuckDB."""
    with sqlite3.connect(path) as db:
        for ddl in _SQLITE_DDL.values():
            db.execute(ddl)
    con.execute(f"ATTACH {quote_literal(str(path))} AS shop (TYPE sqlite)")
    try:
        for table in _SQLITE_DDL:
            con.execute(f"INSERT INTO shop.{table} SELECT * FROM {table}")
    finally:
        con.execute("DETACH shop")
    with sqlite3.connect(path) as db:
        db.execute("CREATE INDEX orders_updated_at ON orders (updated_at)")
        db.execute("CREATE INDEX customers_updated_at ON customers (updated_at)")


def _write_csv_drops(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """One CSV file per month, as an upstream export job would drop them."""
    months = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT strftime(occurred_at, '%Y-%m') FROM web_events ORDER BY 1"
        ).fetchall()
    ]
    for month in months:
        target = folder / f"web_events_{month}.csv"
        con.execute(
            f"COPY (SELECT * FROM web_events WHERE strftime(occurred_at, '%Y-%m') = ? ORDER BY event_id) "
            f"TO {quote_literal(str(target))} (FORMAT csv, HEADER)",
            [month],
        )


def _write_catalog(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    rows = con.execute(
        "SELECT product_id, sku, name, category, unit_price::DOUBLE, currency, "
        "strftime(created_at, '%Y-%m-%dT%H:%M:%SZ'), strftime(updated_at, '%Y-%m-%dT%H:%M:%SZ') "
        "FROM products ORDER BY product_id"
    ).fetchall()
    keys = [
        "product_id",
        "sku",
        "name",
        "category",
        "unit_price",
        "currency",
        "created_at",
        "updated_at",
    ]
    path.write_text(
        json.dumps([dict(zip(keys, r, strict=True)) for r in rows], ensure_ascii=False),
        encoding="utf-8",
    )
