"""Every function a query may use gives the value its dialect documents, or is refused by name.

The corpus `corpus/functions.sql` holds, per function of Dremio's SQL reference that Fleuve
runs, at least one query and the value Dremio documents for it, and per function Fleuve
refuses, a query that must fail with an error naming it. Each runs through the real engine.
The coverage table in `fleuve.engine.dialect` (and docs/engine.md) cannot drift from it.
"""

from __future__ import annotations

import math
import re
import time as clock
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlglot import exp

from fleuve.engine import FINAL_STATES, Engine, EngineError
from fleuve.engine.dialect import DREMIO_FUNCTIONS, REFUSED, to_duckdb
from fleuve.engine.plan import parse_query
from tests.engine.conftest import make_project

CORPUS = Path(__file__).parent / "corpus" / "functions.sql"
DOCS = Path(__file__).parents[2] / "docs" / "engine.md"
DAYS = """
CREATE TABLE gold.days AS
SELECT DATE '2024-01-31' AS d, TIMESTAMP '2024-01-31 10:00:00' AS ts, TIME '10:11:12' AS t
"""


@dataclass(frozen=True)
class Approx:
    """A floating-point value, equal to within 1e-12 relative."""

    value: float

    def __eq__(self, other: object) -> bool:
        return isinstance(other, float) and math.isclose(other, self.value, rel_tol=1e-12)

    def __hash__(self) -> int:
        return hash(round(self.value, 9))


@dataclass(frozen=True)
class Case:
    function: str
    dialect: str
    expected: str
    sql: str

    @property
    def refused(self) -> bool:
        return self.expected == "refused"

    def value(self) -> Any:
        names = {
            "date": date,
            "datetime": datetime,
            "time": time,
            "timezone": timezone,
            "Decimal": Decimal,
            "approx": Approx,
        }
        return eval(self.expected, {"__builtins__": {}}, names)


def load_cases() -> list[Case]:
    text = CORPUS.read_text(encoding="utf-8")
    found = re.findall(r"^-- (\w+) (duckdb|dremio): ([^\n]+)\n(.+?);\n", text, flags=re.M | re.S)
    return [Case(*c) for c in found]


CASES = load_cases()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    project = make_project(tmp_path_factory.mktemp("functions") / "proj")
    with project.lake.session() as con:
        con.execute(DAYS)
    e = Engine(project)
    try:
        yield e
    finally:
        e.close()
        project.close()


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.dialect}-{c.function}-{i}" for i, c in enumerate(CASES)]
)
def test_function(engine: Engine, case: Case) -> None:
    assert case.function.lower() in case.sql.lower(), "the case must call the function it names"
    if case.refused:
        with pytest.raises(EngineError) as raised:
            engine.execute(case.sql, user="admin", dialect=case.dialect).read_all()
        assert case.function in raised.value.message.upper()
        assert raised.value.fix, "a refusal says what to do instead"
        return
    rows = engine.execute(case.sql, user="admin", dialect=case.dialect).read_all().to_pylist()
    got = [r["v"] for r in rows]
    expected = case.value()
    if isinstance(expected, list):
        assert got == expected, case.sql
    else:
        assert got == [expected], case.sql
        if isinstance(expected, date | time | bool | str | bytes):
            # A DATE is not a TIMESTAMP at midnight (datetime is a subclass of date).
            assert type(got[0]) is type(expected), case.sql


def test_every_dremio_function_is_run_or_refused_in_the_corpus() -> None:
    ran = {c.function for c in CASES if c.dialect == "dremio" and not c.refused}
    refused = {c.function for c in CASES if c.dialect == "dremio" and c.refused}
    for category, functions in DREMIO_FUNCTIONS.items():
        for name, reason in functions.items():
            if reason is None:
                assert name in ran, f"{category} function {name} has no case in the corpus"
            else:
                assert name in refused, f"refused {category} function {name} has no case"
    listed = {n for functions in DREMIO_FUNCTIONS.values() for n in functions}
    outside = {c.function for c in CASES if c.dialect == "dremio"} - listed
    assert outside <= {"BAR", "DATE_FORMAT"}, f"cases for unlisted functions: {outside}"


def test_docs_table_lists_every_function() -> None:
    """docs/engine.md shows the same coverage as the engine's table."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### Dremio functions", 1)[1].split("\n## ", 1)[0]
    for category, functions in DREMIO_FUNCTIONS.items():
        row = next(
            (line for line in section.splitlines() if line.startswith(f"| {category} |")), None
        )
        assert row is not None, f"docs/engine.md has no row for {category}"
        supported, refused = row.split("|")[2:4]
        for name, reason in functions.items():
            cell = supported if reason is None else refused
            assert re.search(rf"`{name}\b", cell), f"docs/engine.md: {name} not in its cell"


# Literals sqlglot writes differently, each checked to keep its meaning: INITCAP's default
# word delimiters (written as a concatenation), REGEXP_EXTRACT's group 0 (DuckDB's default),
# NEXT_DAY's day name (resolved to its ISO day number).
REWRITTEN_LITERALS = {
    ("Initcap", "INITCAP"),
    ("RegexpExtract", "REGEXP_EXTRACT"),
    ("NextDay", "NEXT_DAY"),
}


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if not c.refused],
    ids=[f"{c.dialect}-{c.function}-{i}" for i, c in enumerate(CASES) if not c.refused],
)
def test_generated_sql_keeps_every_argument(case: Case) -> None:
    """Each literal of the translated query reaches DuckDB: sqlglot drops no argument."""
    ast = parse_query(case.sql, case.dialect)
    sql = to_duckdb(ast)
    for lit in ast.find_all(exp.Literal):
        text = lit.sql(dialect="duckdb") if lit.is_string else lit.this
        parent = type(lit.parent).__name__
        if (parent, case.function) in REWRITTEN_LITERALS:
            continue
        assert text in sql, f"{lit.sql()} of {case.sql} is missing from {sql}"


def test_generation_refuses_what_duckdb_cannot_carry() -> None:
    """A construct sqlglot cannot write for DuckDB is an error naming it, not a warning."""
    dropped = exp.ToChar(this=exp.column("x"), format=exp.Literal.string("999"))
    with pytest.raises(EngineError, match="TO_CHAR"):
        to_duckdb(exp.select(dropped).from_("t"))


def test_refusals_are_listed_with_a_reason() -> None:
    for name, reason in REFUSED.items():
        assert reason and len(reason) > 10, name


def duckdb_functions() -> list[tuple[str, int]]:
    """Every DuckDB scalar and aggregate function, with each of its argument counts."""
    rows = (
        duckdb.connect()
        .execute(
            "SELECT DISTINCT function_name, len(parameters) FROM duckdb_functions() "
            "WHERE function_type IN ('scalar', 'aggregate') "
            "AND function_name SIMILAR TO '[a-z_][a-z0-9_]*' AND len(parameters) BETWEEN 1 AND 6 "
            "ORDER BY 1, 2"
        )
        .fetchall()
    )
    return [(name, n) for name, n in rows]


def test_every_duckdb_function_keeps_its_arguments_or_is_refused() -> None:
    """In the duckdb dialect, each function reaches DuckDB with every argument it was given.

    sqlglot reads DuckDB's functions into its own expressions and writes them back; where it
    loses an argument on the way, the engine must refuse the query naming the function.
    """
    lost = []
    for name, n in duckdb_functions():
        args = [f"zz_arg{i}" for i in range(n)]
        sql = f"SELECT {name}({', '.join(args)}) FROM t"
        try:
            out = to_duckdb(parse_query(sql, "duckdb"))
        except EngineError as exc:
            if "cannot parse" not in exc.message:
                assert name.upper() in exc.message.upper(), exc.message
            continue
        missing = [a for a in args if a not in out]
        if missing:
            lost.append(f"{sql} -> {out}")
    assert not lost, "\n".join(lost)


def test_a_refusal_fails_the_job_and_a_view_with_the_function_name(engine: Engine) -> None:
    """The REST flow (a background job) and a virtual dataset get the same refusal."""
    job_id = engine.submit("SELECT TO_CHAR(amount, '#.##') FROM gold.orders", user="admin")
    deadline = clock.monotonic() + 30
    while engine.job(job_id).state not in FINAL_STATES and clock.monotonic() < deadline:
        clock.sleep(0.05)
    job = engine.job(job_id)
    assert job.state == "FAILED" and "TO_CHAR" in (job.error or "")
    engine.execute("CREATE SPACE Shop", user="admin").read_all()
    with pytest.raises(EngineError, match="SOUNDEX"):
        engine.save_view(
            ["Shop", "sounds"],
            "SELECT SOUNDEX(status) AS s FROM gold.orders",
            user="admin",
            dialect="dremio",
        )
    engine.save_view(
        ["Shop", "months"],
        "SELECT TO_CHAR(ordered_at, 'YYYY-MM') AS m FROM gold.orders",
        user="admin",
        dialect="dremio",
    )
    got = engine.execute("SELECT DISTINCT m FROM Shop.months WHERE m IS NOT NULL", user="admin")
    assert sorted(r["m"] for r in got.read_all().to_pylist()) == [
        f"2024-{m:02d}" for m in range(1, 13)
    ]
