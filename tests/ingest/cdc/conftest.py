"""Change data capture against servers of the tests' own: PostgreSQL with `wal_level=logical`
and MariaDB with a row-based binary log, started once per session and stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ingest.cdc.servers import MariaDBServer, PostgresServer


@pytest.fixture(scope="session")
def cdc_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server ready for logical replication."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cdc_mariadb() -> Iterator[MariaDBServer]:
    """A private MariaDB server writing a ROW binary log with full row images."""
    server = MariaDBServer().start()
    try:
        yield server
    finally:
        server.stop()
