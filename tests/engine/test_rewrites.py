"""Golden files for the reflection rewrites: input SQL, reflection, expected SQL or miss reason.

The rewrites are pure functions over sqlglot ASTs; DuckDB only describes the query's output
(names and types), on an empty table shaped like the dataset. Regenerate the expectations
after an intended change with `FLEUVE_UPDATE_GOLDEN=1 pytest tests/engine/test_rewrites.py`
and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from fleuve.engine import ddl
from fleuve.engine.reflections.match import Miss, layout, raw_covers, rewrite_aggregate

GOLDEN = Path(__file__).parent / "golden" / "rewrites.txt"
FIELDS = {
    "order_id": "BIGINT",
    "customer_id": "BIGINT",
    "status": "VARCHAR",
    "country": "VARCHAR",
    "ordered_at": "TIMESTAMP",
    "order_date": "DATE",
    "amount": "DECIMAL(12,2)",
    "quantity": "INTEGER",
}
CASE = re.compile(
    r"== (?P<title>.+?)\nreflection: (?P<reflection>.+?)\nquery: (?P<query>.+?)\nexpected: (?P<expected>.*?)\n(?=\n==|\Z)",
    re.S,
)


def cases() -> list[dict[str, str]]:
    return [m.groupdict() for m in CASE.finditer(GOLDEN.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("CREATE TABLE orders (" + ", ".join(f"{k} {v}" for k, v in FIELDS.items()) + ")")
    return c


def rewrite(con: duckdb.DuckDBPyConnection, reflection: str, query: str) -> str:
    stmt = ddl.parse(f"CREATE REFLECTION r ON orders USING {reflection}")
    assert isinstance(stmt, ddl.CreateReflection)
    spec = stmt.spec
    select = sqlglot.parse_one(query, read="duckdb")
    table = select.find(exp.Table)
    alias = table.alias_or_name
    relation = exp.to_table("refl")
    try:
        if spec.kind == "RAW":
            raw_covers(select, table, alias, list(FIELDS), spec.display)
            return "RAW"
        lay, _ = layout(spec.dimensions, {m.column: m.types for m in spec.measures})
        output = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {query}").fetchall()]
        return rewrite_aggregate(select, alias, list(FIELDS), lay, relation, output).sql("duckdb")
    except Miss as miss:
        return f"MISS {miss}"


def test_golden_rewrites(con: duckdb.DuckDBPyConnection) -> None:
    found = cases()
    assert len(found) >= 25
    mismatches = []
    for case in found:
        got = rewrite(con, case["reflection"], case["query"])
        if got != case["expected"]:
            mismatches.append((case["title"], case["expected"], got))
            case["expected"] = got
    if mismatches and os.environ.get("FLEUVE_UPDATE_GOLDEN"):
        GOLDEN.write_text(
            "\n".join(
                f"== {c['title']}\nreflection: {c['reflection']}\nquery: {c['query']}\n"
                f"expected: {c['expected']}\n"
                for c in found
            ),
            encoding="utf-8",
        )
        return
    assert not mismatches, "\n\n".join(
        f"{t}\n  expected: {e}\n  got:      {g}" for t, e, g in mismatches
    )


def test_rewritten_queries_run_on_the_reflection(con: duckdb.DuckDBPyConnection) -> None:
    """Every expected rewrite binds on a table laid out as its reflection."""
    for case in cases():
        if case["expected"].startswith(("MISS", "RAW")):
            continue
        stmt = ddl.parse(f"CREATE REFLECTION r ON orders USING {case['reflection']}")
        _, build = layout(stmt.spec.dimensions, {m.column: m.types for m in stmt.spec.measures})
        select = ", ".join(f'{e} AS "{c}"' for e, c in build)
        dims = len(stmt.spec.dimensions)
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(dims))}" if dims else ""
        con.execute(f"CREATE OR REPLACE TEMP TABLE refl AS SELECT {select} FROM orders{group}")
        con.execute(case["expected"]).fetchall()
