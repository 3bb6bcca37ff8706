"""The golden equivalence corpus: every query gives the same answer with and without reflections.

DuckDB is the oracle: each query of `corpus/queries.sql` runs once on the datasets and once
through the reflection the matcher chooses; names, types and rows must be identical
(floating-point values to 10 significant digits, as their summation order differs). Each
query also names the reflection that must answer it, or `none`, so the corpus checks that
substitution happens where it can and never where it must not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from fleuve.engine import Engine
from fleuve.project import Project
from tests.engine.conftest import make_project

CORPUS = Path(__file__).parent / "corpus" / "queries.sql"
SETUP = [
    "CREATE SPACE Shop",
    "CREATE VIEW Shop.order_lines AS SELECT o.order_id, o.status, o.amount, o.quantity, "
    "o.ordered_at, c.segment, c.city, c.customer_id FROM gold.orders o "
    "LEFT JOIN gold.customers c ON o.customer_id = c.customer_id",
    "CREATE REFLECTION agg_fine ON gold.orders USING DIMENSIONS "
    "(status, country, customer_id, date_trunc('day', ordered_at)) "
    "MEASURES (amount (SUM, COUNT, MIN, MAX), quantity (SUM, COUNT, MIN, MAX), "
    "APPROX_COUNT_DISTINCT(order_id), weight (SUM, COUNT, MIN, MAX))",
    "ALTER TABLE gold.orders CREATE AGGREGATE REFLECTION agg_month USING DIMENSIONS "
    "(status, ordered_at BY MONTH) MEASURES (amount (SUM, COUNT))",
    "CREATE REFLECTION raw_orders ON gold.orders USING DISPLAY "
    "(order_id, status, country, amount, ordered_at)",
    'ALTER VIEW "Shop".order_lines CREATE AGGREGATE REFLECTION agg_lines USING DIMENSIONS '
    "(segment, status, city) MEASURES (amount (SUM, COUNT, MIN, MAX), quantity (SUM, COUNT))",
    'CREATE REFLECTION raw_lines ON "Shop".order_lines USING DISPLAY (order_id, segment, amount)',
]


def load_corpus() -> list[tuple[str, str]]:
    """(expected reflection, query) pairs from the corpus file."""
    text = CORPUS.read_text(encoding="utf-8")
    return re.findall(r"-- expect: (\S+)\n(.+?);\n", text, flags=re.S)


QUERIES = load_corpus()


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Engine]]:
    project = make_project(tmp_path_factory.mktemp("corpus") / "proj")
    accelerated = Engine(project)
    for sql in SETUP:
        accelerated.execute(sql, user="admin").read_all()
    plain = Engine(Project.open(project.settings.project_dir), accelerate=False)
    try:
        yield accelerated, plain
    finally:
        accelerated.close()
        plain.close()
        plain.project.close()
        project.close()


def test_corpus_is_large_enough() -> None:
    assert len(QUERIES) >= 200
    assert sum(e == "none" for e, _ in QUERIES) >= 20


@pytest.mark.parametrize(
    ("expected", "sql"), QUERIES, ids=[f"q{i:03d}" for i in range(len(QUERIES))]
)
def test_same_answer_with_and_without_reflections(
    engines: tuple[Engine, Engine], expected: str, sql: str
) -> None:
    accelerated, plain = engines
    result = accelerated.execute(sql, user="admin")
    fast = result.read_all()
    job = accelerated.job(result.job_id)
    chosen = [r["reflectionName"] for r in job.reflections if r["relationship"] == "CHOSEN"]
    oracle = plain.execute(sql, user="admin").read_all()
    assert fast.schema.names == oracle.schema.names
    assert [str(t) for t in fast.schema.types] == [str(t) for t in oracle.schema.types]
    assert _rows(fast) == _rows(oracle), f"different rows for: {sql}"
    reasons = {r["reflectionName"]: r.get("reason") for r in job.reflections}
    if expected == "none":
        assert chosen == [], f"no reflection may answer this query, yet {chosen} did"
    else:
        assert expected in chosen, f"expected {expected}, chose {chosen}; reasons: {reasons}"


def _rows(table: pa.Table) -> list[tuple]:
    return sorted((tuple(_value(v) for v in row.values()) for row in table.to_pylist()), key=repr)


def _value(v: Any) -> Any:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else float(f"{v:.10g}")
    if isinstance(v, Decimal):
        return v.normalize()
    if isinstance(v, list):
        return tuple(_value(x) for x in v)
    return v
