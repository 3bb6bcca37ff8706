"""Literals keep their value from the user's SQL to DuckDB's, in both dialects, or are refused.

Interval literals are compared, field by field (months, days, nanoseconds), with DuckDB's own
evaluation of the same interval built from `to_months` / `to_days` / `to_microseconds`; typed
and numeric literals with DuckDB's evaluation of the original text.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest

from fleuve.engine import Engine, EngineError
from fleuve.engine.dialect import to_duckdb
from fleuve.engine.plan import parse_query
from tests.engine.conftest import make_project

DIALECTS = ("duckdb", "dremio")
TS = "TIMESTAMP '2024-01-31 10:00:00'"
D4_05_06_789 = "to_days(3) + to_hours(4) + to_minutes(5) + to_microseconds(6789000)"

# (interval as a user writes it, the same interval built from DuckDB's functions)
INTERVALS = [
    ("INTERVAL '1' DAY", "to_days(1)"),
    ("INTERVAL '30' DAY", "to_days(30)"),
    ("INTERVAL '30' DAYS", "to_days(30)"),
    ("INTERVAL 3 DAY", "to_days(3)"),
    ("INTERVAL '1-2' YEAR TO MONTH", "to_months(14)"),
    ("INTERVAL '-1-2' YEAR TO MONTH", "to_months(-14)"),
    ("INTERVAL '3 04:05:06.789' DAY TO SECOND", D4_05_06_789),
    ("INTERVAL '-3 04:05:06.789' DAY TO SECOND", f"-({D4_05_06_789})"),
    ("INTERVAL '1 2' DAY TO HOUR", "to_days(1) + to_hours(2)"),
    ("INTERVAL '1 02:03' DAY TO MINUTE", "to_days(1) + to_hours(2) + to_minutes(3)"),
    ("INTERVAL '04:05' HOUR TO MINUTE", "to_hours(4) + to_minutes(5)"),
    ("INTERVAL '30:05' HOUR TO MINUTE", "to_hours(30) + to_minutes(5)"),
    ("INTERVAL '05:06:07.5' HOUR TO SECOND", "to_hours(5) + to_minutes(6) + to_seconds(7.5)"),
    ("INTERVAL '10:20.25' MINUTE TO SECOND", "to_minutes(10) + to_microseconds(20250000)"),
    ("INTERVAL '1 day 2 hours'", "to_days(1) + to_hours(2)"),
    ("INTERVAL '3 days 04:05:06.789'", D4_05_06_789),
    ("INTERVAL '2 years 3 months'", "to_months(27)"),
    ("INTERVAL '-1' DAY", "to_days(-1)"),
    ("INTERVAL '+1' DAY", "to_days(1)"),
    ("-INTERVAL '1' DAY", "to_days(-1)"),
    ("INTERVAL -'1' DAY", "to_days(-1)"),
    ("INTERVAL -'1-2' YEAR TO MONTH", "to_months(-14)"),
    ("INTERVAL '1.5' SECOND", "to_microseconds(1500000)"),
    ("INTERVAL '0.000001' SECOND", "to_microseconds(1)"),
    ("INTERVAL '2' HOUR", "to_hours(2)"),
    ("INTERVAL 2 HOURS", "to_hours(2)"),
    ("INTERVAL '100' HOUR", "to_hours(100)"),
    ("INTERVAL '90' MINUTE", "to_minutes(90)"),
    ("INTERVAL '2' MONTH", "to_months(2)"),
    ("INTERVAL '1' YEAR", "to_years(1)"),
    ("INTERVAL '1' QUARTER", "to_months(3)"),
    ("INTERVAL '1' WEEK", "to_days(7)"),
    ("INTERVAL '100' MILLISECOND", "to_milliseconds(100)"),
    ("INTERVAL '0' DAY", "to_days(0)"),
]

# Interval arithmetic: (expression as written, the same built from DuckDB's functions, whether
# Dremio keeps it a DATE).
ARITHMETIC = [
    (f"{TS} + INTERVAL '3 04:05:06.789' DAY TO SECOND", f"{TS} + ({D4_05_06_789})", False),
    (f"{TS} - INTERVAL '3 days 04:05:06.789'", f"{TS} - ({D4_05_06_789})", False),
    (f"{TS} + INTERVAL '1-1' YEAR TO MONTH", f"{TS} + to_months(13)", False),
    (f"INTERVAL '04:05' HOUR TO MINUTE + {TS}", f"{TS} + to_hours(4) + to_minutes(5)", False),
    ("ts - INTERVAL '-3 04:05:06.789' DAY TO SECOND", f"{TS} + ({D4_05_06_789})", False),
    ("CURRENT_DATE - INTERVAL '30' DAY", "CURRENT_DATE - to_days(30)", True),
    ("DATE '2024-01-31' + INTERVAL '1' MONTH", "DATE '2024-01-31' + to_months(1)", True),
    ("INTERVAL '1-1' YEAR TO MONTH + d", "DATE '2024-01-31' + to_months(13)", True),
    ("d + INTERVAL '1' DAY", "DATE '2024-01-31' + to_days(1)", True),
    ("d - INTERVAL '2 weeks'", "DATE '2024-01-31' - to_days(14)", True),
    (
        "INTERVAL '1' DAY * 3 + INTERVAL '1.5' SECOND",
        "to_days(3) + to_microseconds(1500000)",
        False,
    ),
]
# DuckDB's DATE + hours is a TIMESTAMP; Dremio's a DATE without them: refused there.
DATE_PLUS_TIME = [
    ("DATE '2024-01-31' + INTERVAL '2' HOUR", "DATE '2024-01-31' + to_hours(2)"),
    ("d - INTERVAL '1 02:00' DAY TO MINUTE", "DATE '2024-01-31' - to_days(1) - to_hours(2)"),
    ("d + INTERVAL '1 day 2 hours'", "DATE '2024-01-31' + to_days(1) + to_hours(2)"),
    ("DATE_ADD(d, INTERVAL '2' HOUR)", "DATE '2024-01-31' + to_hours(2)"),
    ("DATE_ADD(DATE '2024-01-31', INTERVAL '30' MINUTE)", "DATE '2024-01-31' + to_minutes(30)"),
]

# Interval literals refused, with the words the error must hold.
REFUSED_INTERVALS = [
    ("INTERVAL '1.5' DAY", "fraction of a DAY"),
    ("INTERVAL '1.5' HOUR", "fraction of a HOUR"),
    ("INTERVAL '3 04:05' DAY", "one number of DAYS"),
    ("INTERVAL '1 day' DAY", "one number of DAYS"),
    ("INTERVAL '1' DAY TO HOUR", "does not match DAY TO HOUR"),
    ("INTERVAL '04:75' HOUR TO MINUTE", "above 59"),
    ("INTERVAL '1 24:00' DAY TO MINUTE", "above 23"),
    ("INTERVAL '1-12' YEAR TO MONTH", "above 11"),
    ("INTERVAL '1-2' MONTH TO YEAR", "MONTH TO YEAR is not an interval span"),
    ("INTERVAL '0.0000001' SECOND", "finer than a microsecond"),
    ("INTERVAL '1' FORTNIGHT", "FORTNIGHT"),
    ("INTERVAL 3", "has no unit"),
    ("INTERVAL '1' DAY TO", "no unit after TO"),
    ("INTERVAL '1' DAY '2' HOUR", "followed by another value"),
]

# Typed and numeric literals: the value DuckDB gives the original text must come through.
LITERALS = [
    "DATE '2024-01-01'",
    "DATE '2024-1-5'",
    "TIMESTAMP '2024-01-31'",
    "TIMESTAMP '2024-01-31 10:00:00.123456'",
    "TIMESTAMP '2024-01-31T10:00:00.5'",
    "TIMESTAMPTZ '2024-01-31 10:00:00+02:00'",
    "TIMESTAMP WITH TIME ZONE '2024-01-31 10:00:00.25-05:30'",
    "TIME '10:11:12.5'",
    "TIME '23:59:59.999999'",
    "TIME '10:11'",
    "1.5e3",
    "1e-7",
    "-2.5E+2",
    "123456789012345678901234567890",
    "0.1234567890123456789",
    "5.",
    "'it''s'",
    "'a\\nb'",
    "'été 東京'",
    "TRUE",
]
# Escape strings are DuckDB's (Dremio has none: they do not parse there).
DUCKDB_LITERALS = ["E'a\\nb'", "E'it\\'s'", "E'tab\\there'"]

REFUSED_LITERALS = [
    ("DATE '2024-01-01 10:00'", "time of day"),
    ("TIMESTAMP '2024-01-31 10:00:00+02:00'", "time zone"),
    ("TIMESTAMP '2024-01-31 10:00:00Z'", "time zone"),
    ("TIMESTAMP '2024-01-31 10:00:00 Europe/Paris'", "time zone"),
    ("TIME '10:11:12+02:00'", "time zone"),
    ("TIMESTAMP '2024-01-31 10:00:00.1234567'", "below the microsecond"),
    ("TIME '10:11:12.1234567'", "below the microsecond"),
]


def oracle(sql: str) -> pa.Table:
    """DuckDB's answer to `sql`, run as written."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE days AS SELECT DATE '2024-01-31' AS d, "
        "TIMESTAMP '2024-01-31 10:00:00' AS ts, TIME '10:11:12' AS t"
    )
    return con.execute(sql).to_arrow_table()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    project = make_project(tmp_path_factory.mktemp("literals") / "proj")
    with project.lake.session() as con:
        con.execute(
            "CREATE TABLE gold.days AS SELECT DATE '2024-01-31' AS d, "
            "TIMESTAMP '2024-01-31 10:00:00' AS ts, TIME '10:11:12' AS t"
        )
    e = Engine(project)
    try:
        yield e
    finally:
        e.close()
        project.close()


def run(engine: Engine, sql: str, dialect: str) -> pa.Table:
    return engine.execute(sql, user="admin", dialect=dialect).read_all()


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("written", "canonical"), INTERVALS, ids=[w for w, _ in INTERVALS])
def test_interval_literal_keeps_every_field(
    engine: Engine, written: str, canonical: str, dialect: str
) -> None:
    got = run(engine, f"SELECT {written} AS v", dialect)
    want = oracle(f"SELECT {canonical} AS v")
    assert got.column("v").to_pylist() == want.column("v").to_pylist(), written


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("written", "canonical", "dremio_date"), ARITHMETIC, ids=[w for w, _, _ in ARITHMETIC]
)
def test_interval_arithmetic_gives_the_exact_value(
    engine: Engine, written: str, canonical: str, dremio_date: bool, dialect: str
) -> None:
    if dialect == "dremio" and dremio_date:
        canonical = f"CAST({canonical} AS DATE)"
    got = run(engine, f"SELECT {written} AS v FROM gold.days", dialect).column("v")
    want = oracle(f"SELECT {canonical} AS v FROM days").column("v")
    assert got.type == want.type, written
    assert got.to_pylist() == want.to_pylist(), written


@pytest.mark.parametrize(
    ("written", "canonical"), DATE_PLUS_TIME, ids=[w for w, _ in DATE_PLUS_TIME]
)
def test_a_date_plus_a_time_of_day(engine: Engine, written: str, canonical: str) -> None:
    sql = f"SELECT {written} AS v FROM gold.days"
    got = run(engine, sql, "duckdb").column("v")
    assert got.to_pylist() == oracle(f"SELECT {canonical} AS v FROM days").column("v").to_pylist()
    with pytest.raises(EngineError, match="stays a DATE in Dremio SQL"):
        run(engine, sql, "dremio")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("written", "why"), REFUSED_INTERVALS, ids=[w for w, _ in REFUSED_INTERVALS]
)
def test_interval_literal_without_an_exact_value_is_refused(
    written: str, why: str, dialect: str
) -> None:
    with pytest.raises(EngineError) as raised:
        to_duckdb(parse_query(f"SELECT {written} AS v", dialect))
    assert why in raised.value.message, raised.value.message
    assert raised.value.fix


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "literal",
    LITERALS + DUCKDB_LITERALS,
    ids=LITERALS + DUCKDB_LITERALS,
)
def test_literal_keeps_its_value(engine: Engine, literal: str, dialect: str) -> None:
    sql = f"SELECT {literal} AS v"
    want = oracle(sql)
    if dialect == "dremio" and literal in DUCKDB_LITERALS:
        with pytest.raises(EngineError, match=r"cannot (parse|read) the query"):
            run(engine, sql, dialect)
        return
    got = run(engine, sql, dialect)
    assert got.column("v").to_pylist() == want.column("v").to_pylist(), sql
    assert type(got.column("v")[0].as_py()) is type(want.column("v")[0].as_py()), sql


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("literal", "why"), REFUSED_LITERALS, ids=[w for w, _ in REFUSED_LITERALS])
def test_literal_whose_text_its_type_would_cut_is_refused(
    literal: str, why: str, dialect: str
) -> None:
    with pytest.raises(EngineError) as raised:
        parse_query(f"SELECT {literal} AS v", dialect)
    assert why in raised.value.message and literal in raised.value.message
    assert raised.value.fix


def test_a_quote_left_open_is_an_error_naming_the_dialect() -> None:
    with pytest.raises(EngineError, match="dremio SQL"):
        parse_query("SELECT E'it\\'s'", "dremio")
