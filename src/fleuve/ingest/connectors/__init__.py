"""Connectors: one small class per kind of source, registered by its `type`."""

from __future__ import annotations

from fleuve.config import ConnectionSettings, Settings
from fleuve.ingest.connectors.base import (
    Capabilities,
    Connector,
    Cursor,
    Extract,
    ExtractContext,
    StreamInfo,
)
from fleuve.ingest.connectors.files import FilesConnector
from fleuve.ingest.connectors.relational import MySQLConnector, PostgresConnector, SQLiteConnector
from fleuve.ingest.connectors.rest import RestConnector
from fleuve.ingest.errors import IngestError

CONNECTORS: dict[str, type[Connector]] = {
    c.type: c
    for c in (PostgresConnector, MySQLConnector, SQLiteConnector, FilesConnector, RestConnector)
}
ALIASES = {
    "postgresql": "postgres",
    "mariadb": "mysql",
    "file": "files",
    "s3": "files",
    "http": "rest",
}


def connector_for(conn: ConnectionSettings, settings: Settings) -> Connector:
    """The connector that reads `conn`'s source."""
    kind = str(conn.source.get("type"))
    cls = CONNECTORS.get(ALIASES.get(kind, kind))
    if cls is None:
        raise IngestError(
            f"connection '{conn.name}': unknown source type '{kind}'",
            f"set source.type to one of: {', '.join(CONNECTORS)}",
        )
    return cls(conn, settings)


__all__ = [
    "CONNECTORS",
    "Capabilities",
    "Connector",
    "Cursor",
    "Extract",
    "ExtractContext",
    "StreamInfo",
    "connector_for",
]
