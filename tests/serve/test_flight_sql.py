"""Flight SQL through the ADBC driver, and Superset's SQLAlchemy dialect over Dremio-style Flight."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pytest
import sqlalchemy as sa

from tests.serve.conftest import ADMIN_PASSWORD, ANALYST_PASSWORD, ORDERS_ROWS, Served


@pytest.fixture
def adbc(served: Served) -> Iterator[flight_sql.Connection]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cannot disable autocommit": there are no transactions
        conn = flight_sql.connect(
            served.flight_url, db_kwargs={"username": "admin", "password": ADMIN_PASSWORD}
        )
    try:
        yield conn
    finally:
        conn.close()


def test_adbc_statement_and_fetch_arrow_table(adbc: flight_sql.Connection) -> None:
    with adbc.cursor() as cur:
        cur.execute(
            "SELECT store_id, count(*) AS n FROM gold.fct_daily_revenue GROUP BY 1 ORDER BY 1"
        )
        table = cur.fetch_arrow_table()
    assert table.column_names == ["store_id", "n"]
    assert table.num_rows == 7
    assert sum(table.column("n").to_pylist()) == ORDERS_ROWS


def test_adbc_prepared_statement_with_parameters(adbc: flight_sql.Connection) -> None:
    sql = "SELECT count(*) AS n FROM gold.fct_daily_revenue WHERE store_id = ? AND city = ?"
    with adbc.cursor() as cur:
        cur.execute(sql, (3, "北京"))
        first = cur.fetchone()[0]
        cur.execute(sql, (3, "Café"))
        second = cur.fetchone()[0]
    # i % 7 == 3 and i % 4 picks the city: both hold for a quarter of the store's rows.
    assert first + second > 0
    assert first == len([i for i in range(ORDERS_ROWS) if i % 7 == 3 and i % 4 == 2])
    assert second == len([i for i in range(ORDERS_ROWS) if i % 7 == 3 and i % 4 == 0])


def test_adbc_get_objects_lists_schemas_tables_and_columns(adbc: flight_sql.Connection) -> None:
    objects = adbc.adbc_get_objects(depth="all").read_all().to_pylist()
    tables = {
        (schema["db_schema_name"], table["table_name"]): [
            c["column_name"] for c in table["table_columns"]
        ]
        for catalog in objects
        for schema in catalog["catalog_db_schemas"]
        for table in schema["db_schema_tables"] or []
    }
    assert tables[("gold", "fct_daily_revenue")] == ["order_date", "store_id", "amount", "city"]
    assert ("bronze", "shop_customers") in tables


def test_adbc_get_info_and_table_schema(adbc: flight_sql.Connection) -> None:
    info = adbc.adbc_get_info()
    assert info["vendor_name"] == "Fleuve"
    schema = adbc.adbc_get_table_schema("fct_daily_revenue", db_schema_filter="gold")
    assert schema.names == ["order_date", "store_id", "amount", "city"]


def test_adbc_errors_name_the_problem(adbc: flight_sql.Connection) -> None:
    with adbc.cursor() as cur, pytest.raises(Exception, match="no_such_table"):
        cur.execute("SELECT * FROM gold.no_such_table")


def test_adbc_wrong_password_is_refused(served: Served) -> None:
    with pytest.raises(Exception, match=r"(?i)unauthenticated|invalid user"):
        flight_sql.connect(
            served.flight_url, db_kwargs={"username": "nobody", "password": "nothing-here"}
        )


def test_analyst_without_grants_sees_and_reads_nothing_through_flight_sql(served: Served) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn = flight_sql.connect(
            served.flight_url, db_kwargs={"username": "analyst", "password": ANALYST_PASSWORD}
        )
    try:
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        names = {
            table["table_name"]
            for catalog in objects
            for schema in catalog["catalog_db_schemas"] or []
            for table in schema["db_schema_tables"] or []
        }
        assert "fct_daily_revenue" not in names and "shop_customers" not in names
        with conn.cursor() as cur, pytest.raises(Exception, match="not found"):
            cur.execute("SELECT * FROM gold.fct_daily_revenue")
    finally:
        conn.close()


def test_sqlalchemy_dremio_flight_lists_and_queries(served: Served) -> None:
    """The dialect Superset uses: `dremio+flight://`, the database part sent as `schema`."""
    port = served.flight_url.rsplit(":", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dialect predates SQLAlchemy 2's caching flags
        engine = sa.create_engine(
            f"dremio+flight://admin:{ADMIN_PASSWORD}@127.0.0.1:{port}/gold?UseEncryption=false"
        )
        # The dialect's reflection methods run raw strings, which SQLAlchemy 2 only takes at the
        # DB-API level: call them with the driver connection, as SQLAlchemy 1.4 did.
        raw = engine.raw_connection()
        try:
            dialect, dbapi = engine.dialect, raw.driver_connection
            schemas = dialect.get_schema_names(dbapi)
            tables = dialect.get_table_names(dbapi, "gold")
            columns = dialect.get_columns(dbapi, "fct_daily_revenue", "gold")
            assert dialect.has_table(dbapi, "fct_daily_revenue", "gold")
            assert not dialect.has_table(dbapi, "nope", "gold")
        finally:
            raw.close()
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT store_id, count(*) AS n FROM fct_daily_revenue GROUP BY 1 ORDER BY 1"
                )
            ).fetchall()
        engine.dispose()
    assert {"gold", "bronze", "silver"} <= set(schemas)
    assert tables == ["fct_daily_revenue"]
    assert [c["name"] for c in columns] == ["order_date", "store_id", "amount", "city"]
    assert len(rows) == 7 and sum(n for _, n in rows) == ORDERS_ROWS


def test_adbc_updates_plain_and_prepared(adbc: flight_sql.Connection) -> None:
    """DoPut with CommandStatementUpdate and CommandPreparedStatementUpdate (bound rows)."""
    with adbc.cursor() as cur:
        statement = cur.adbc_statement
        statement.set_sql_query("CREATE TABLE bronze.scratch AS SELECT range AS id FROM range(10)")
        statement.execute_update()
        statement.set_sql_query("INSERT INTO bronze.scratch VALUES (?)")
        statement.prepare()
        statement.bind(pa.record_batch([pa.array([100, 101, 102])], names=["id"]))
        assert statement.execute_update() == 3
        statement.set_sql_query("DELETE FROM bronze.scratch WHERE id < 5")
        assert statement.execute_update() == 5
    with adbc.cursor() as cur:
        cur.execute("SELECT count(*) AS n, max(id) AS top FROM bronze.scratch")
        assert cur.fetchone() == (8, 102)
        cur.execute("DROP TABLE bronze.scratch")


def test_adbc_prepared_statement_keeps_the_rest_of_its_text(adbc: flight_sql.Connection) -> None:
    """Binding replaces the parameters only: the interval keeps its time, a negative value
    after a minus stays a value."""
    sql = (
        "SELECT CAST(TIMESTAMP '2024-01-31 10:00:00' + INTERVAL '3 days 04:05:06.789' AS VARCHAR)"
        " AS v, 10 -? AS d, '?' AS q, ? AS p"
    )
    with adbc.cursor() as cur:
        cur.execute(sql, (-2, "Café"))
        assert cur.fetchone() == ("2024-02-03 14:05:06.789", 12, "?", "Café")
