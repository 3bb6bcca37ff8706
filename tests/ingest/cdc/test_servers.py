"""The private servers are set up for change capture, apart from the machine's shared ones."""

from __future__ import annotations

from tests.ingest.cdc.servers import MariaDBServer, PostgresServer


def test_postgres_writes_a_logical_wal(cdc_postgres: PostgresServer) -> None:
    assert cdc_postgres.port != 5432
    assert cdc_postgres.execute("SHOW wal_level") == [("logical",)]
    slots = cdc_postgres.execute("SHOW max_replication_slots")[0][0]
    assert int(slots) >= 10


def test_mariadb_writes_a_row_binlog(cdc_mariadb: MariaDBServer) -> None:
    assert cdc_mariadb.port != 3306
    settings = dict(
        cdc_mariadb.execute(
            "SHOW VARIABLES WHERE Variable_name IN "
            "('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata')"
        )
    )
    assert settings == {
        "log_bin": "ON",
        "binlog_format": "ROW",
        "binlog_row_image": "FULL",
        "binlog_row_metadata": "FULL",
    }
