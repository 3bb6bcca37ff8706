"""Another writer won: every spelling `lake.lost_race` recognizes, each raised for real.

Lake commits, ingestion's stream retries and dbt's resumed runs decide with this one check,
so a race reported in words it does not know would fail a sync or a build instead of waiting.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from fleuve import lake
from fleuve.ingest.errors import is_transient
from fleuve.lake import Lake, lost_race
from fleuve.project import Project, init_project
from fleuve.transform import run as transform_run
from tests.conftest import PG_ADMIN

# The spellings the real races below carry, by where they come from.
SQLITE_CATALOG = ["database is locked", "failed to commit ducklake transaction"]
POSTGRESQL_CATALOG = ["transaction conflict"]
DUCKDB_SESSIONS = ["write-write conflict", "conflict on tuple deletion", "conflict on update"]
POSTGRESQL = ["could not serialize access", "deadlock detected"]


@contextlib.contextmanager
def _two_lakes(folder: Path, overrides: dict[str, Any] | None = None) -> Iterator[list[Lake]]:
    """One lake opened twice, as by two processes, with a table `bronze.t` of two rows."""
    init_project(folder, "race", overrides)
    projects = [Project.open(folder, overrides), Project.open(folder, overrides)]
    try:
        projects[0].lake.commit(lambda c: c.execute("CREATE TABLE bronze.t (i INTEGER)"))
        projects[0].lake.commit(lambda c: c.execute("INSERT INTO bronze.t VALUES (1), (2)"))
        yield [p.lake for p in projects]
    finally:
        for project in projects:
            project.close()


def _race(ours: Lake, theirs: Lake, mine: str, their: str) -> BaseException:
    """The error of committing `mine` after `theirs` committed `their` since we began."""
    con, other = ours.connect(), theirs.connect()
    try:
        con.execute("BEGIN")
        con.execute("SELECT count(*) FROM bronze.t").fetchall()
        other.execute(their)
        with pytest.raises(duckdb.Error) as caught:
            con.execute(mine)
            con.execute("COMMIT")
        return caught.value
    finally:
        con.close()
        other.close()


def _recognized(exc: BaseException, spelling: str) -> None:
    """`exc` says `spelling`, and the lake, ingestion and dbt all take it for a lost race."""
    assert spelling in str(exc).lower(), exc
    assert lost_race(exc), exc
    assert lost_race(str(exc)), exc  # dbt reports a node's error as text
    assert is_transient(exc), exc


def test_every_spelling_is_raised_below() -> None:
    assert sorted(lake._LOST_RACE) == sorted(
        SQLITE_CATALOG + POSTGRESQL_CATALOG + DUCKDB_SESSIONS + POSTGRESQL
    )
    # dbt's resumed runs decide with the lake's check, not a list of their own.
    assert transform_run.lost_race is lost_race


def test_two_processes_on_a_sqlite_catalog(tmp_path: Path) -> None:
    with _two_lakes(tmp_path / "race") as (first, second):
        deleted = _race(second, first, "DELETE FROM bronze.t WHERE i = 1", "DELETE FROM bronze.t")
        added = _race(
            second, first, "INSERT INTO bronze.t VALUES (3)", "INSERT INTO bronze.t VALUES (4)"
        )
    for exc in (deleted, added):
        for spelling in SQLITE_CATALOG:
            _recognized(exc, spelling)


def test_two_processes_on_a_postgresql_catalog(tmp_path: Path, pg_schema: str) -> None:
    overrides = {"lake.catalog": PG_ADMIN, "lake.catalog_schema": pg_schema}
    with _two_lakes(tmp_path / "race", overrides) as (first, second):
        deleted = _race(second, first, "DELETE FROM bronze.t WHERE i = 1", "DELETE FROM bronze.t")
        altered = _race(
            second,
            first,
            "ALTER TABLE bronze.t ADD COLUMN j INTEGER",
            "ALTER TABLE bronze.t ADD COLUMN k INTEGER",
        )
    for exc in (deleted, altered):
        _recognized(exc, "failed to commit ducklake transaction")
        _recognized(exc, "transaction conflict")


@pytest.mark.parametrize(
    ("mine", "their", "spelling"),
    [
        ("CREATE TABLE u (i INTEGER)", "CREATE TABLE u (i INTEGER)", "write-write conflict"),
        ("ALTER TABLE t ADD j INTEGER", "ALTER TABLE t ADD k INTEGER", "write-write conflict"),
        ("DELETE FROM t", "DELETE FROM t WHERE i = 1", "conflict on tuple deletion"),
        ("UPDATE t SET i = 3", "UPDATE t SET i = 4", "conflict on update"),
    ],
)
def test_two_sessions_of_one_duckdb_database(mine: str, their: str, spelling: str) -> None:
    with duckdb.connect() as db:
        db.execute("CREATE TABLE t (i INTEGER)")
        db.execute("INSERT INTO t VALUES (1), (2)")
        ours, theirs = db.cursor(), db.cursor()
        ours.execute("BEGIN")
        theirs.execute("BEGIN")
        theirs.execute(their)
        with pytest.raises(duckdb.Error) as caught:
            ours.execute(mine)
            ours.execute("COMMIT")
    _recognized(caught.value, spelling)


@pytest.fixture
def pg_table(pg_schema: str) -> str:
    """A table of two rows in a fresh PostgreSQL schema."""
    table = f'"{pg_schema}".t'
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    return table


def test_a_postgresql_transaction_that_cannot_be_serialized(pg_table: str) -> None:
    with psycopg.connect(PG_ADMIN) as ours, psycopg.connect(PG_ADMIN, autocommit=True) as theirs:
        ours.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        ours.execute(f"SELECT * FROM {pg_table}").fetchall()
        theirs.execute(f"UPDATE {pg_table} SET v = 1 WHERE id = 1")
        with pytest.raises(psycopg.Error) as caught:
            ours.execute(f"UPDATE {pg_table} SET v = 2 WHERE id = 1")
    _recognized(caught.value, "could not serialize access")


def test_two_postgresql_transactions_waiting_on_each_other(pg_table: str) -> None:
    errors: list[BaseException] = []
    both_locked = threading.Barrier(2)

    def take(first: int, then: int) -> None:
        with psycopg.connect(PG_ADMIN) as conn:
            conn.execute("SET lock_timeout = '20s'; SET deadlock_timeout = '100ms'")
            conn.execute(f"UPDATE {pg_table} SET v = v + 1 WHERE id = %s", [first])
            both_locked.wait()
            try:
                conn.execute(f"UPDATE {pg_table} SET v = v + 1 WHERE id = %s", [then])
            except psycopg.Error as exc:
                errors.append(exc)

    threads = [threading.Thread(target=take, args=args) for args in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1, errors
    _recognized(errors[0], "deadlock detected")


@pytest.mark.parametrize(
    "statement",
    [
        # Errors that speak of a conflict without another writer: retrying cannot help.
        "INSERT INTO bronze.t VALUES (1) ON CONFLICT DO NOTHING",
        "SELECT nothing FROM bronze.t",
    ],
)
def test_errors_of_ones_own_are_no_race(project: Project, statement: str) -> None:
    project.lake.commit(lambda c: c.execute("CREATE TABLE bronze.t (i INTEGER)"))
    with pytest.raises(duckdb.Error) as caught:
        project.lake.commit(lambda c: c.execute(statement))
    assert not lost_race(caught.value)
    assert not is_transient(caught.value)
