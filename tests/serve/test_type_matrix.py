"""Every type Fleuve returns, through every client, with the types and values Dremio gives them.

The matrix is one test per (type, client) pair, so a failure names both. The clients are real:
pyarrow Flight on the Dremio-style endpoint, the ADBC Flight SQL driver, sqlalchemy-dremio
(Superset's dialect, which reads results through pandas) and the REST API v3 job results.
Superset itself is in tests/ui/test_superset.py (slow).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import sqlalchemy as sa
from sqlalchemy import types as sa_types

from tests.serve.conftest import ADMIN_PASSWORD, Served

_SAME = object()
TS = dt.datetime(2024, 1, 2, 3, 4, 5, 678000)


@dataclass(frozen=True)
class Case:
    """One engine type: an expression of it, and what each client receives."""

    name: str
    sql: str
    arrow: pa.DataType  # Flight SQL (ADBC); the Dremio-style endpoint too unless `flight_arrow`
    value: Any  # pyarrow's Python value of the first row
    rest_type: str | dict  # the type's name, or the whole type object of nested types
    rest: Any  # the JSON value (floats parsed as Decimal: the exact text is checked)
    sqla_type: type  # sqlalchemy-dremio's cursor.description type
    sqla: Any = _SAME
    flight_arrow: pa.DataType | None = None


def _mdn(months: int, days: int, ns: int) -> pa.MonthDayNano:
    return pa.scalar((months, days, ns), pa.month_day_nano_interval()).as_py()


def _offset(months: int, days: int, ns: int) -> pd.DateOffset:
    """An interval as pandas holds it (pyarrow names all three parts)."""
    return pd.DateOffset(months=months, days=days, nanoseconds=ns)


CASES = [
    # Integers: Dremio has INT and BIGINT; narrower ones widen, UBIGINT and HUGEINT are DECIMAL.
    Case("tinyint", "CAST(-7 AS TINYINT)", pa.int32(), -7, "INTEGER", -7, sa_types.INTEGER),
    Case("smallint", "CAST(-300 AS SMALLINT)", pa.int32(), -300, "INTEGER", -300, sa_types.INTEGER),
    Case(
        "integer", "CAST(70000 AS INTEGER)", pa.int32(), 70000, "INTEGER", 70000, sa_types.INTEGER
    ),
    Case(
        "bigint",
        "CAST(9007199254740993 AS BIGINT)",
        pa.int64(),
        9007199254740993,
        "BIGINT",
        9007199254740993,
        sa_types.BIGINT,
    ),
    Case("utinyint", "CAST(200 AS UTINYINT)", pa.int32(), 200, "INTEGER", 200, sa_types.INTEGER),
    Case(
        "usmallint",
        "CAST(60000 AS USMALLINT)",
        pa.int32(),
        60000,
        "INTEGER",
        60000,
        sa_types.INTEGER,
    ),
    Case(
        "uinteger",
        "CAST(4000000000 AS UINTEGER)",
        pa.int64(),
        4000000000,
        "BIGINT",
        4000000000,
        sa_types.BIGINT,
    ),
    Case(
        "ubigint",
        "CAST(18446744073709551615 AS UBIGINT)",
        pa.decimal128(20, 0),
        Decimal("18446744073709551615"),
        "DECIMAL",
        18446744073709551615,
        sa_types.VARCHAR,
    ),
    Case(
        "hugeint",
        "CAST('-12345678901234567890123456789012345678' AS HUGEINT)",
        pa.decimal128(38, 0),
        Decimal("-12345678901234567890123456789012345678"),
        "DECIMAL",
        -12345678901234567890123456789012345678,
        sa_types.VARCHAR,
    ),
    Case(
        "uhugeint",
        "CAST('12345678901234567890123456789012345678' AS UHUGEINT)",
        pa.decimal128(38, 0),
        Decimal("12345678901234567890123456789012345678"),
        "DECIMAL",
        12345678901234567890123456789012345678,
        sa_types.VARCHAR,
    ),
    # Floating point and decimals: exact JSON numbers, as Dremio writes them.
    Case(
        "float",
        "CAST(0.1 AS FLOAT)",
        pa.float32(),
        pytest.approx(0.1),
        "FLOAT",
        Decimal("0.1"),
        sa_types.FLOAT,
    ),
    Case(
        "double", "CAST(0.1 AS DOUBLE)", pa.float64(), 0.1, "DOUBLE", Decimal("0.1"), sa_types.FLOAT
    ),
    Case(
        "double_nan",
        "CAST('NaN' AS DOUBLE)",
        pa.float64(),
        math.nan,
        "DOUBLE",
        "NaN",
        sa_types.FLOAT,
        sqla=None,  # pandas cannot tell NaN from NULL in a float column
    ),
    Case(
        "double_infinity",
        "CAST('-Infinity' AS DOUBLE)",
        pa.float64(),
        -math.inf,
        "DOUBLE",
        "-Infinity",
        sa_types.FLOAT,
    ),
    Case(
        "decimal",
        "CAST(12345.6789 AS DECIMAL(18, 4))",
        pa.decimal128(18, 4),
        Decimal("12345.6789"),
        "DECIMAL",
        Decimal("12345.6789"),
        sa_types.VARCHAR,
    ),
    Case(
        "decimal_38",
        "CAST('12345678901234567890.123456789012345678' AS DECIMAL(38, 18))",
        pa.decimal128(38, 18),
        Decimal("12345678901234567890.123456789012345678"),
        "DECIMAL",
        Decimal("12345678901234567890.123456789012345678"),
        sa_types.VARCHAR,
    ),
    Case("boolean", "TRUE", pa.bool_(), True, "BOOLEAN", True, sa_types.BOOLEAN),
    # Text and bytes: UUID, JSON and ENUM are VARCHAR in Dremio's terms.
    Case(
        "varchar",
        "'Café مرحبا 北京 東京'",
        pa.utf8(),
        "Café مرحبا 北京 東京",
        "VARCHAR",
        "Café مرحبا 北京 東京",
        sa_types.VARCHAR,
    ),
    Case(
        "uuid",
        "CAST('6f1c2c9e-4c52-4f7e-9a38-3f4b2a1d0e55' AS UUID)",
        pa.utf8(),
        "6f1c2c9e-4c52-4f7e-9a38-3f4b2a1d0e55",
        "VARCHAR",
        "6f1c2c9e-4c52-4f7e-9a38-3f4b2a1d0e55",
        sa_types.VARCHAR,
    ),
    Case(
        "json",
        """CAST('{"a": [1, 2]}' AS JSON)""",
        pa.utf8(),
        '{"a": [1, 2]}',
        "VARCHAR",
        '{"a": [1, 2]}',
        sa_types.VARCHAR,
    ),
    Case("enum", "CAST('b' AS ENUM('a', 'b'))", pa.utf8(), "b", "VARCHAR", "b", sa_types.VARCHAR),
    Case(
        "blob",
        "CAST('\\xAA\\x00\\xFF' AS BLOB)",
        pa.binary(),
        b"\xaa\x00\xff",
        "VARBINARY",
        "qgD/",
        sa_types.VARCHAR,
    ),
    # Dates and times: DATE is date64, TIME is milliseconds, TIMESTAMP has no zone (UTC).
    Case(
        "date",
        "DATE '2024-02-29'",
        pa.date64(),
        dt.date(2024, 2, 29),
        "DATE",
        "2024-02-29",
        sa_types.VARCHAR,
    ),
    Case(
        "time",
        "TIME '13:14:15.678901'",
        pa.time32("ms"),
        dt.time(13, 14, 15, 678000),
        "TIME",
        "13:14:15.678",
        sa_types.VARCHAR,
    ),
    Case(
        "timestamp",
        "TIMESTAMP '2024-01-02 03:04:05.678901'",
        pa.timestamp("ms"),
        TS,
        "TIMESTAMP",
        "2024-01-02 03:04:05.678",
        sa_types.DATETIME,
        flight_arrow=pa.timestamp("ns"),
    ),
    Case(
        "timestamp_tz",
        "CAST('2024-01-02 05:04:05.678+02' AS TIMESTAMPTZ)",
        pa.timestamp("ms"),
        TS,
        "TIMESTAMP",
        "2024-01-02 03:04:05.678",
        sa_types.DATETIME,
        flight_arrow=pa.timestamp("ns"),
    ),
    Case(
        "timestamp_ns",
        "CAST('2024-01-02 03:04:05.678901234' AS TIMESTAMP_NS)",
        pa.timestamp("ms"),
        TS,
        "TIMESTAMP",
        "2024-01-02 03:04:05.678",
        sa_types.DATETIME,
        flight_arrow=pa.timestamp("ns"),
    ),
    Case(
        "timestamp_s",
        "CAST('2024-01-02 03:04:05' AS TIMESTAMP_S)",
        pa.timestamp("ms"),
        TS.replace(microsecond=0),
        "TIMESTAMP",
        "2024-01-02 03:04:05.000",
        sa_types.DATETIME,
        flight_arrow=pa.timestamp("ns"),
    ),
    Case(
        "timestamp_before_1970",
        "TIMESTAMP '1969-12-31 23:59:59.999999'",
        pa.timestamp("ms"),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999000),
        "TIMESTAMP",
        "1969-12-31 23:59:59.999",
        sa_types.DATETIME,
        flight_arrow=pa.timestamp("ns"),
    ),
    Case(
        "interval",
        "INTERVAL '1 month 2 days 3 hours'",
        pa.month_day_nano_interval(),
        _mdn(1, 2, 3 * 3600 * 10**9),
        "INTERVAL",
        "+000-01 +002 03:00:00.000",
        sa_types.VARCHAR,
        sqla=_offset(1, 2, 3 * 3600 * 10**9),
    ),
    Case(
        "interval_day_to_second",
        "CAST('3 days 04:05:06.789' AS INTERVAL)",
        pa.month_day_nano_interval(),
        _mdn(0, 3, (4 * 3600 + 5 * 60 + 6) * 10**9 + 789 * 10**6),
        "INTERVAL",
        "+003 04:05:06.789",
        sa_types.VARCHAR,
        sqla=_offset(0, 3, (4 * 3600 + 5 * 60 + 6) * 10**9 + 789 * 10**6),
    ),
    Case(
        "interval_year_to_month",
        "INTERVAL '14 months'",
        pa.month_day_nano_interval(),
        _mdn(14, 0, 0),
        "INTERVAL",
        "+001-02",
        sa_types.VARCHAR,
        sqla=_offset(14, 0, 0),
    ),
    # Nested types keep their shape; their members take the same Dremio types.
    Case(
        "list",
        "[CAST(1 AS SMALLINT), NULL, 3]",
        pa.list_(pa.int32()),
        [1, None, 3],
        {"name": "LIST", "subSchema": [{"type": {"name": "INTEGER"}}]},
        [1, None, 3],
        sa_types.VARCHAR,
        sqla=[1.0, None, 3.0],  # pandas holds an int list with a null as floats
    ),
    Case(
        "list_of_timestamps",
        "[TIMESTAMP '2024-01-02 03:04:05.678901']",
        pa.list_(pa.timestamp("ms")),
        [TS],
        {"name": "LIST", "subSchema": [{"type": {"name": "TIMESTAMP"}}]},
        ["2024-01-02 03:04:05.678"],
        sa_types.VARCHAR,
    ),
    Case(
        "fixed_size_array",
        "CAST([1, 2] AS INTEGER[2])",
        pa.list_(pa.int32()),
        [1, 2],
        {"name": "LIST", "subSchema": [{"type": {"name": "INTEGER"}}]},
        [1, 2],
        sa_types.VARCHAR,
    ),
    Case(
        "struct",
        "{'a': CAST(1 AS TINYINT), 'b': 'x', 'c': CAST(NULL AS DATE)}",
        pa.struct([("a", pa.int32()), ("b", pa.utf8()), ("c", pa.date64())]),
        {"a": 1, "b": "x", "c": None},
        {
            "name": "STRUCT",
            "subSchema": [
                {"name": "a", "type": {"name": "INTEGER"}},
                {"name": "b", "type": {"name": "VARCHAR"}},
                {"name": "c", "type": {"name": "DATE"}},
            ],
        },
        {"a": 1, "b": "x"},  # Dremio leaves null members out
        sa_types.VARCHAR,
    ),
    Case(
        "map",
        "MAP {'k1': CAST(1 AS TINYINT), 'k2': 2}",
        pa.map_(pa.utf8(), pa.int32()),
        [("k1", 1), ("k2", 2)],
        "MAP",
        {"k1": 1, "k2": 2},
        sa_types.VARCHAR,
    ),
    Case(
        "union",
        "CAST(union_value(k := 1) AS UNION(k INTEGER, s VARCHAR))",
        pa.utf8(),
        "1",
        "VARCHAR",
        "1",
        sa_types.VARCHAR,
    ),
    # Columns holding only NULL.
    Case("null", "NULL", pa.int32(), None, "INTEGER", None, sa_types.FLOAT),
    Case(
        "null_timestamp",
        "CAST(NULL AS TIMESTAMP)",
        pa.timestamp("ms"),
        None,
        "TIMESTAMP",
        None,
        sa_types.DATETIME,
        flight_arrow=pa.timestamp("ns"),
    ),
    Case(
        "null_varchar", "CAST(NULL AS VARCHAR)", pa.utf8(), None, "VARCHAR", None, sa_types.VARCHAR
    ),
]


def _sql(case: Case) -> str:
    # A text column beside the value: sqlalchemy-dremio hands rows out of a pandas frame,
    # whose values keep their Python types only when the frame mixes dtypes (as results do).
    return f"SELECT 'row' AS k, {case.sql} AS v"


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return got == want


# -- clients ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flight_client(served: Served) -> tuple[flight.FlightClient, flight.FlightCallOptions]:
    return served.flight_client()


@pytest.fixture(scope="module")
def adbc(served: Served) -> Iterator[flight_sql.Connection]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cannot disable autocommit": there are no transactions
        conn = flight_sql.connect(
            served.flight_url, db_kwargs={"username": "admin", "password": ADMIN_PASSWORD}
        )
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def dremio_dialect(served: Served) -> Iterator[sa.Engine]:
    port = served.flight_url.rsplit(":", 1)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dialect predates SQLAlchemy 2's import_dbapi
        engine = sa.create_engine(
            f"dremio+flight://admin:{ADMIN_PASSWORD}@127.0.0.1:{port}/dremio?UseEncryption=false"
        )
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def rest(served: Served) -> httpx.Client:
    token = served.login()
    return httpx.Client(
        base_url=served.http, headers={"Authorization": f"_dremio{token}"}, timeout=30
    )


def _pandas_value(value: Any) -> Any:
    """A value from a pandas frame as plain Python (numpy scalars and arrays, NaN, NaT)."""
    if isinstance(value, np.ndarray):
        return [_pandas_value(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dict):
        return {k: _pandas_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_pandas_value(v) for v in value)
    return value


# -- the matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pyarrow_flight(case: Case, flight_client: tuple) -> None:
    client, options = flight_client
    info = client.get_flight_info(flight.FlightDescriptor.for_command(_sql(case)), options)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    want = case.flight_arrow or case.arrow
    assert info.schema.field("v").type == want
    assert table.schema.field("v").type == want
    assert _same(table.column("v").to_pylist()[0], case.value)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_adbc_flight_sql(case: Case, adbc: flight_sql.Connection) -> None:
    with adbc.cursor() as cur:
        cur.execute(_sql(case))
        table = cur.fetch_arrow_table()
    assert table.schema.field("v").type == case.arrow
    assert _same(table.column("v").to_pylist()[0], case.value)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sqlalchemy_dremio(case: Case, dremio_dialect: sa.Engine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the dialect predates SQLAlchemy 2's caching flags
        with dremio_dialect.connect() as conn:
            result = conn.execute(sa.text(_sql(case)))
            description = result.cursor.description
            rows = result.fetchall()
    assert description[1][1] is case.sqla_type
    want = case.value if case.sqla is _SAME else case.sqla
    assert _same(_pandas_value(rows[0][1]), want)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rest_job_results(case: Case, rest: httpx.Client) -> None:
    job = rest.post("/api/v3/sql", json={"sql": _sql(case)}).json()["id"]
    body = _rest_results(rest, job)
    assert body["schema"][1] == {"name": "v", "type": _rest_type(case)}
    assert body["rows"] == [{"k": "row", "v": case.rest}]


def _rest_results(rest: httpx.Client, job: str) -> dict[str, Any]:
    """A finished job's first results page, its floats parsed exactly."""
    deadline = time.monotonic() + 30
    while (state := rest.get(f"/api/v3/job/{job}").json())["jobState"] not in (
        "COMPLETED",
        "FAILED",
    ):
        assert time.monotonic() < deadline, f"job {job} did not finish"
        time.sleep(0.05)
    assert state["jobState"] == "COMPLETED", state.get("errorMessage")
    response = rest.get(f"/api/v3/job/{job}/results")
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def _rest_rows(rest: httpx.Client, job: str) -> list[dict[str, Any]]:
    return _rest_results(rest, job)["rows"]


def _rest_type(case: Case) -> dict[str, Any]:
    if isinstance(case.rest_type, dict):
        return case.rest_type
    if case.rest_type == "DECIMAL":
        return {"name": "DECIMAL", "precision": case.arrow.precision, "scale": case.arrow.scale}
    return {"name": case.rest_type}


# -- around the matrix -----------------------------------------------------------------------


def test_timestamps_outside_the_nanosecond_range_fail_with_the_fix(flight_client: tuple) -> None:
    """Superset's dialect reads nanosecond timestamps only; a far date says what to do instead."""
    client, options = flight_client
    sql = "SELECT TIMESTAMP '9999-12-31 00:00:00' AS valid_to"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
    with pytest.raises(flight.FlightError, match=r"valid_to.*2262-04-11(.|\n)*Flight SQL"):
        client.do_get(info.endpoints[0].ticket, options).read_all()
    # The fix the message gives works.
    sql = "SELECT CAST(TIMESTAMP '9999-12-31 00:00:00' AS VARCHAR) AS valid_to"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert table.column("valid_to").to_pylist() == ["9999-12-31 00:00:00"]


def test_far_timestamps_reach_flight_sql_and_rest(
    adbc: flight_sql.Connection, rest: httpx.Client
) -> None:
    sql = "SELECT TIMESTAMP '9999-12-31 00:00:00' AS valid_to"
    with adbc.cursor() as cur:
        cur.execute(sql)
        assert cur.fetchone() == (dt.datetime(9999, 12, 31),)
    job = rest.post("/api/v3/sql", json={"sql": sql}).json()["id"]
    assert _rest_rows(rest, job) == [{"valid_to": "9999-12-31 00:00:00.000"}]


def test_many_batches_are_converted_alike(flight_client: tuple) -> None:
    """Every batch of a streamed result has the announced types, not only the first ones."""
    client, options = flight_client
    sql = (
        "SELECT CAST(i % 30000 AS SMALLINT) AS small, TIMESTAMP '2024-01-01' + INTERVAL (i) SECOND AS ts "
        "FROM range(200000) t(i)"
    )
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    chunks = [chunk.data for chunk in reader]
    assert len(chunks) > 2
    assert all(c.schema == info.schema for c in chunks)
    assert info.schema.types == [pa.int32(), pa.timestamp("ns")]
    last = chunks[-1]
    assert last.column(1)[-1].as_py() == dt.datetime(2024, 1, 1) + dt.timedelta(seconds=199999)


def test_adbc_table_schema_has_the_client_types(adbc: flight_sql.Connection) -> None:
    """GetTables with schemas announces the types the queries then return."""
    schema = adbc.adbc_get_table_schema("fct_daily_revenue", db_schema_filter="gold")
    assert schema.field("order_date").type == pa.date64()
    assert schema.field("store_id").type == pa.int64()


def test_describe_names_the_types_results_carry(flight_client: tuple) -> None:
    """DESCRIBE (what Superset's dialect reads for a dataset) agrees with the results' types."""
    client, options = flight_client

    def run(sql: str) -> pa.Table:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
        return client.do_get(info.endpoints[0].ticket, options).read_all()

    columns = ", ".join(f'{c.sql} AS "{c.name}"' for c in CASES)
    run(f'CREATE OR REPLACE VIEW "@admin".every_type AS SELECT {columns}')
    described = run('DESCRIBE "@admin".every_type').to_pylist()
    got = {r["COLUMN_NAME"]: r["DATA_TYPE"] for r in described}
    want = {}
    for case in CASES:
        name = case.rest_type["name"] if isinstance(case.rest_type, dict) else case.rest_type
        want[case.name] = "CHARACTER VARYING" if name == "VARCHAR" else name
    assert got == want
