"""Stream state and rejected rows, kept in the lake beside the data they describe.

A stream's cursor lives in `bronze._fleuve_state` and is written in the same DuckLake
transaction as the rows it accounts for: either both are committed or neither is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from fleuve.ingest.connectors.base import Cursor
from fleuve.lake import Lake

STATE_TABLE = "bronze._fleuve_state"
REJECTED_TABLE = "bronze._rejected"
EXTRACTED_AT = "_fleuve_extracted_at"
SYNC_ID = "_fleuve_sync_id"
# Stream tables are partitioned by this column: the UTC date of the sync's transaction.
INGESTION_DATE = "_fleuve_ingestion_date"
INGESTION_DATE_SQL = "CAST(timezone('UTC', now()) AS DATE)"


class InTransaction:
    """Lets `Lake.partition_for_layer` apply the layer's rule inside an open transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def partition(self, table: str, expressions: list[str]) -> None:
        """Partition `table` on this session, so the change commits with the rest."""
        if expressions:
            self.con.execute(f"ALTER TABLE {table} SET PARTITIONED BY ({', '.join(expressions)})")


def partition_bronze(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Partition a bronze table by ingestion date, within the caller's transaction."""
    Lake.partition_for_layer(InTransaction(con), table, EXTRACTED_AT)  # type: ignore[arg-type]


def ensure_tables(lake: Lake) -> set[str]:
    """Create the state and rejected-rows tables once; the names of bronze's tables."""
    bronze = {name for _, name in lake.tables("bronze")}
    own = {table.split(".")[1] for table in (STATE_TABLE, REJECTED_TABLE)}
    if own <= bronze:
        return bronze

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (connection VARCHAR, stream VARCHAR, "
            "cursor_value VARCHAR, cursor_type VARCHAR, files JSON, sync_id VARCHAR, "
            "updated_at TIMESTAMP WITH TIME ZONE)"
        )
        exists = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake' "
            "AND schema_name = 'bronze' AND table_name = '_rejected'"
        ).fetchall()[0][0]
        if not exists:
            con.execute(
                f"CREATE TABLE {REJECTED_TABLE} (connection VARCHAR, stream VARCHAR, "
                f"location VARCHAR, reason VARCHAR, raw VARCHAR, {SYNC_ID} VARCHAR, "
                f"{EXTRACTED_AT} TIMESTAMP WITH TIME ZONE)"
            )
            partition_bronze(con, REJECTED_TABLE)

    lake.commit(work, what="create ingestion state tables")
    # Streams syncing in parallel each replace their row of the state table; with the rows
    # inlined in the catalog, concurrent deletions race inside DuckLake, so keep them in files.
    lake.commit(
        lambda con: con.execute(
            "CALL lake.set_option('data_inlining_row_limit', 0, "
            "table_name => '_fleuve_state', schema => 'bronze')"
        ),
        what="configure ingestion state table",
    )
    return bronze | own


@dataclass
class StreamState:
    """What the last committed sync of a stream left: its cursor and the files it read."""

    cursor: Cursor | None = None
    files: dict[str, str] | None = None
    sync_id: str | None = None


def read_state(con: duckdb.DuckDBPyConnection, connection: str, stream: str) -> StreamState:
    """The stream's committed state, as seen by the caller's transaction."""
    row = con.execute(
        f"SELECT cursor_value, cursor_type, CAST(files AS VARCHAR), sync_id FROM {STATE_TABLE} "
        "WHERE connection = ? AND stream = ?",
        [connection, stream],
    ).fetchone()
    if row is None:
        return StreamState()
    value, kind, files, sync_id = row
    return StreamState(
        cursor=Cursor(value, kind) if value is not None else None,
        files=json.loads(files) if files else None,
        sync_id=sync_id,
    )


def write_state(
    con: duckdb.DuckDBPyConnection,
    connection: str,
    stream: str,
    cursor: Cursor | None,
    files: dict[str, str] | None,
    sync_id: str,
) -> None:
    """Replace the stream's state in the caller's transaction."""
    con.execute(
        f"DELETE FROM {STATE_TABLE} WHERE connection = ? AND stream = ?", [connection, stream]
    )
    con.execute(
        f"INSERT INTO {STATE_TABLE} VALUES (?, ?, ?, ?, ?, ?, now())",
        [
            connection,
            stream,
            cursor.value if cursor else None,
            cursor.type if cursor else None,
            json.dumps(files) if files is not None else None,
            sync_id,
        ],
    )
