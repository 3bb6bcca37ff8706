"""Every statement kind reaches DuckDB through the same strict translation as queries.

INSERT (VALUES and SELECT), UPDATE, DELETE, MERGE, CREATE TABLE AS and CREATE VIEW each run a
supported rewrite with its dialect's meaning (Dremio's TO_CHAR format, an exact interval), and
refuse by name a function Dremio SQL lacks and one sqlglot cannot write for DuckDB.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import duckdb
import pytest

from fleuve.engine import Engine, EngineError
from tests.engine.conftest import make_project

# A value each statement writes, and what it must be (DuckDB's evaluation of the same value).
DREMIO_VALUE = (
    "TO_CHAR(TIMESTAMP '2024-01-31 10:00:00' + INTERVAL '3 04:05:06.789' DAY TO SECOND, "
    "'YYYY-MM-DD HH24:MI:SS.FFF')"
)
EXPECTED = (
    duckdb.connect()
    .execute(
        "SELECT strftime(TIMESTAMP '2024-01-31 10:00:00' + to_days(3) + to_hours(4) "
        "+ to_minutes(5) + to_microseconds(6789000), '%Y-%m-%d %H:%M:%S.%g')"
    )
    .fetchone()[0]
)
# Refused while translating (Dremio SQL has no SOUNDEX) and while generating DuckDB SQL
# (regexp_replace's flags from a subquery, which sqlglot cannot carry).
REFUSED = [
    ("dremio", "SOUNDEX('abc')", "SOUNDEX"),
    ("duckdb", "regexp_replace('abc', 'a', 'b', (SELECT 'g'))", "REGEXP_REPLACE"),
]

_names = itertools.count()


def _table(engine: Engine) -> str:
    """A fresh lake table gold.w<n> (id INTEGER, s VARCHAR) holding (1, 'x'), (2, 'y')."""
    name = f"gold.w{next(_names)}"
    engine.execute(f"CREATE TABLE {name} (id INTEGER, s VARCHAR)", user="admin").read_all()
    engine.execute(f"INSERT INTO {name} VALUES (1, 'x'), (2, 'y')", user="admin").read_all()
    return name


def _rows(engine: Engine, sql: str) -> list[tuple]:
    table = engine.execute(sql, user="admin").read_all()
    return [tuple(r.values()) for r in table.to_pylist()]


def _insert_values(e: Engine, value: str, dialect: str) -> list[tuple]:
    t = _table(e)
    e.execute(
        f"INSERT INTO {t} (id, s) VALUES (3, {value})", user="admin", dialect=dialect
    ).read_all()
    return _rows(e, f"SELECT s FROM {t} WHERE id = 3")


def _insert_select(e: Engine, value: str, dialect: str) -> list[tuple]:
    t = _table(e)
    sql = f"INSERT INTO {t} (id, s) SELECT id + 10, {value} FROM {t} WHERE id = 1"
    e.execute(sql, user="admin", dialect=dialect).read_all()
    return _rows(e, f"SELECT s FROM {t} WHERE id = 11")


def _update(e: Engine, value: str, dialect: str) -> list[tuple]:
    t = _table(e)
    e.execute(f"UPDATE {t} SET s = {value} WHERE id = 1", user="admin", dialect=dialect).read_all()
    return _rows(e, f"SELECT s FROM {t} WHERE id = 1")


def _delete(e: Engine, value: str, dialect: str) -> list[tuple]:
    t = _table(e)
    e.execute(f"UPDATE {t} SET s = '{EXPECTED}' WHERE id = 1", user="admin").read_all()
    e.execute(f"DELETE FROM {t} WHERE s = {value}", user="admin", dialect=dialect).read_all()
    # The row holding the value is gone, the other stays.
    return [(EXPECTED,)] if _rows(e, f"SELECT id FROM {t}") == [(2,)] else []


def _merge(e: Engine, value: str, dialect: str) -> list[tuple]:
    t = _table(e)
    sql = (
        f"MERGE INTO {t} AS w USING (SELECT 1 AS id) AS src ON w.id = src.id "
        f"WHEN MATCHED THEN UPDATE SET s = {value}"
    )
    e.execute(sql, user="admin", dialect=dialect).read_all()
    return _rows(e, f"SELECT s FROM {t} WHERE id = 1")


def _create_table_as(e: Engine, value: str, dialect: str) -> list[tuple]:
    t = f"gold.c{next(_names)}"
    e.execute(f"CREATE TABLE {t} AS SELECT {value} AS s", user="admin", dialect=dialect).read_all()
    return _rows(e, f"SELECT s FROM {t}")


def _create_view(e: Engine, value: str, dialect: str) -> list[tuple]:
    v = f"Shop.v{next(_names)}"
    e.execute(f"CREATE VIEW {v} AS SELECT {value} AS s", user="admin", dialect=dialect).read_all()
    return _rows(e, f"SELECT s FROM {v}")


KINDS: dict[str, Callable[[Engine, str, str], list[tuple]]] = {
    "insert-values": _insert_values,
    "insert-select": _insert_select,
    "update": _update,
    "delete": _delete,
    "merge": _merge,
    "create-table-as": _create_table_as,
    "create-view": _create_view,
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    project = make_project(tmp_path_factory.mktemp("statements") / "proj")
    e = Engine(project)
    e.execute("CREATE SPACE Shop", user="admin").read_all()
    try:
        yield e
    finally:
        e.close()
        project.close()


@pytest.mark.parametrize("kind", KINDS)
def test_statement_runs_a_rewrite_with_its_dialect_meaning(engine: Engine, kind: str) -> None:
    assert KINDS[kind](engine, DREMIO_VALUE, "dremio") == [(EXPECTED,)]


@pytest.mark.parametrize(("dialect", "value", "name"), REFUSED, ids=[n for _, _, n in REFUSED])
@pytest.mark.parametrize("kind", KINDS)
def test_statement_refuses_a_function_by_name(
    engine: Engine, kind: str, dialect: str, value: str, name: str
) -> None:
    with pytest.raises(EngineError) as raised:
        KINDS[kind](engine, value, dialect)
    assert name in raised.value.message.upper(), raised.value.message
    assert raised.value.fix
