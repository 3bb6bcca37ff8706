"""Federation and files: PostgreSQL and MySQL attached read-only with filters pushed down,
folders and buckets of files promoted to datasets in place with Hive partitions as columns."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from fleuve.engine import AccessDenied, Engine, EngineError, ObjectNotFound
from fleuve.errors import FleuveError
from tests.conftest import PG_ADMIN

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture
def pg_customers(pg_schema: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{pg_schema}".crm_customers AS '
            "SELECT g AS customer_id, 'client ' || g AS name, "
            "(ARRAY['retail', 'pro', 'vip'])[g % 3 + 1] AS tier FROM generate_series(0, 44) g"
        )
    return pg_schema


def test_join_gold_with_live_postgres_pushes_filters(
    engine: Engine, pg_customers: str, users: dict
) -> None:
    engine.add_source("crm", "postgres", user="admin", dsn=PG_DSN)
    sql = (
        f"SELECT c.tier, SUM(o.amount) AS revenue FROM gold.orders o "
        f"JOIN crm.{pg_customers}.crm_customers c ON c.customer_id = o.customer_id "
        f"WHERE c.tier = 'vip' GROUP BY c.tier"
    )
    rows = engine.execute(sql, user="admin").read_all().to_pylist()
    assert rows and rows[0]["tier"] == "vip" and rows[0]["revenue"] > 0
    plan = {r["section"]: r["text"] for r in engine.explain(sql, user="admin").to_pylist()}
    assert "POSTGRES_SCAN" in plan["plan"]
    assert "tier='vip'" in plan["plan"].replace(" ", "")
    # The source is read-only and its tables are in the catalog, behind grants.
    with pytest.raises(FleuveError):
        engine.execute(
            f"INSERT INTO crm.{pg_customers}.crm_customers VALUES (99, 'x', 'y')", user="admin"
        ).read_all()
    tables = engine.execute(
        f"SELECT TABLE_NAME FROM INFORMATION_SCHEMA.\"TABLES\" WHERE TABLE_SCHEMA = 'crm.{pg_customers}'",
        user="admin",
    ).read_all()
    assert tables.column(0).to_pylist() == ["crm_customers"]
    with pytest.raises(ObjectNotFound):
        engine.execute(f"SELECT * FROM crm.{pg_customers}.crm_customers", user="ana").read_all()
    engine.grant("SELECT", f"crm.{pg_customers}.*", user="admin", grantee="analyst")
    assert (
        engine.execute(f"SELECT count(*) FROM crm.{pg_customers}.crm_customers", user="ana")
        .read_all()
        .column(0)[0]
        .as_py()
        == 45
    )


def test_mysql_source(engine: Engine) -> None:
    import pymysql

    table = f"fleuve_t_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", database="test", autocommit=True
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (customer_id INT PRIMARY KEY, city VARCHAR(40))")
            cur.execute(
                f"INSERT INTO {table} VALUES (1, 'Paris'), (2, '東京'), (3, 'الدار البيضاء')"
            )
        engine.add_source(
            "shop_my", "mysql", user="admin", dsn="host=127.0.0.1 port=3306 user=root database=test"
        )
        rows = (
            engine.execute(
                f"SELECT m.city, COUNT(*) AS n FROM gold.orders o JOIN shop_my.test.{table} m "
                "USING (customer_id) WHERE m.customer_id <= 2 GROUP BY m.city ORDER BY m.city",
                user="admin",
            )
            .read_all()
            .to_pylist()
        )
        assert [r["city"] for r in rows] == ["Paris", "東京"]
        plan = "".join(
            r["text"]
            for r in engine.explain(
                f"SELECT * FROM shop_my.test.{table} WHERE customer_id = 2", user="admin"
            ).to_pylist()
        )
        assert "MYSQL_SCAN" in plan and "customer_id=2" in plan.replace(" ", "")
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        conn.close()


def test_sources_refuse_clear_text_secrets(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(EngineError, match="clear text"):
        engine.add_source("bad", "postgres", user="admin", dsn=PG_DSN + " password=hunter2")
    monkeypatch.setenv("FLEUVE_TEST_PG_PASSWORD", "not-needed-with-trust")
    src = engine.add_source(
        "ok", "postgres", user="admin", dsn=PG_DSN + " password=${FLEUVE_TEST_PG_PASSWORD}"
    )
    assert "not-needed" not in repr(src) and "${FLEUVE_TEST_PG_PASSWORD}" in src["config"]["dsn"]
    with pytest.raises(EngineError, match="already exists"):
        engine.add_source("gold", "files", user="admin", location="/tmp")


def test_unreachable_source_names_the_problem(engine: Engine) -> None:
    with pytest.raises(EngineError) as info:
        engine.add_source(
            "down",
            "postgres",
            user="admin",
            dsn="host=127.0.0.1 port=1 dbname=x user=postgres connect_timeout=2",
        )
    assert "cannot attach source 'down'" in info.value.message


def _write_partitioned(folder: Path, fmt: str) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE sales AS SELECT i AS sale_id, (i % 50)::DECIMAL(10, 2) AS amount, "
        "['Paris', '東京', 'Casablanca'][i % 3 + 1] AS city, 2023 + i % 2 AS year FROM range(300) t(i)"
    )
    if fmt == "json":
        # DuckDB writes JSON without partitions: lay the Hive folders out by hand.
        for year in (2023, 2024):
            (folder / f"year={year}").mkdir()
            con.execute(
                f"COPY (SELECT * EXCLUDE (year) FROM sales WHERE year = {year}) "
                f"TO '{folder}/year={year}/part.json' (FORMAT json)"
            )
    else:
        options = {"parquet": "FORMAT parquet", "csv": "FORMAT csv, HEADER"}[fmt]
        con.execute(f"COPY sales TO '{folder}' ({options}, PARTITION_BY (year))")
    con.close()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_promote_a_folder_of_files(engine: Engine, tmp_path: Path, fmt: str) -> None:
    drops = tmp_path / "drops"
    (drops / "sales").mkdir(parents=True)
    _write_partitioned(drops / "sales", fmt)
    engine.add_source("drops", "files", user="admin", location=str(drops))
    engine.execute("ALTER TABLE drops.sales REFRESH METADATA", user="admin").read_all()
    ds = engine.dataset("drops.sales", user="admin")
    assert {f.name for f in ds.fields} >= {"sale_id", "amount", "city", "year"}
    rows = (
        engine.execute(
            "SELECT year, COUNT(*) AS n FROM drops.sales WHERE year = 2024 GROUP BY year",
            user="admin",
        )
        .read_all()
        .to_pylist()
    )
    assert rows == [{"year": 2024, "n": 150}]
    listing = engine.catalog_by_path(["drops"], user="admin")
    assert [c["path"] for c in listing["children"]] == [["drops", "sales"]]
    # A reflection on files is never fresh (their changes cannot be seen) unless allowed to be stale.
    engine.execute(
        "CREATE REFLECTION by_city ON drops.sales USING DIMENSIONS (city) MEASURES (SUM(amount))",
        user="admin",
    ).read_all()
    result = engine.execute("SELECT city, SUM(amount) FROM drops.sales GROUP BY city", user="admin")
    result.read_all()
    assert [r["relationship"] for r in engine.job(result.job_id).reflections] == ["CONSIDERED"]
    engine.set_staleness(["drops", "sales"], 600, user="admin")
    result = engine.execute("SELECT city, SUM(amount) FROM drops.sales GROUP BY city", user="admin")
    result.read_all()
    assert [r["relationship"] for r in engine.job(result.job_id).reflections] == ["CHOSEN"]
    engine.execute("ALTER TABLE drops.sales FORGET METADATA", user="admin").read_all()
    with pytest.raises(ObjectNotFound):
        engine.dataset("drops.sales", user="admin")


def test_promote_a_bucket(
    engine: Engine, s3_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    bucket = s3_server.bucket()
    local = tmp_path / "out"
    local.mkdir()
    _write_partitioned(local, "parquet")
    client = s3_server.client()
    for f in local.rglob("*.parquet"):
        client.upload_file(str(f), bucket, f"exports/sales/{f.relative_to(local).as_posix()}")
    monkeypatch.setenv("FLEUVE_TEST_S3_KEY", s3_server.access_key)
    monkeypatch.setenv("FLEUVE_TEST_S3_SECRET", s3_server.secret_key)
    engine.add_source(
        "bucket",
        "files",
        user="admin",
        location=f"s3://{bucket}/exports",
        endpoint=s3_server.endpoint,
        access_key_id="${FLEUVE_TEST_S3_KEY}",
        secret_access_key="${FLEUVE_TEST_S3_SECRET}",
        use_ssl=False,
        url_style="path",
    )
    assert engine.sources(user="admin")[0]["config"]["secret_access_key"] == "***"
    engine.promote(["bucket", "sales"], user="admin")
    total = engine.execute(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT year) AS y FROM bucket.sales", user="admin"
    ).read_all()
    assert total.to_pylist() == [{"n": 300, "y": 2}]


def test_only_admins_add_sources(engine: Engine, users: dict) -> None:
    with pytest.raises(AccessDenied):
        engine.add_source("x", "files", user="ana", location="/tmp")
