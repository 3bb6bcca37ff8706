"""`fleuve source check` and `fleuve source discover`: reach a source, list its streams."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import duckdb

from fleuve.config import Settings
from fleuve.ingest.connectors import connector_for
from fleuve.ingest.errors import IngestError, SourceUnavailable
from fleuve.lake import Lake
from fleuve.observe.logs import scrub


def check_connection(settings: Settings, lake: Lake, name: str) -> str:
    """Reach connection `name`'s source; a one-line report, or an IngestError naming the fix."""
    connector = connector_for(settings.connection(name), settings)
    con = lake.connect()
    try:
        connector.open(con)
        try:
            return connector.check(con)
        finally:
            connector.close(con)
    except duckdb.Error as exc:
        raise SourceUnavailable(
            f"connection '{name}': {scrub(str(exc).splitlines()[0])}",
            "check the source settings in fleuve.yml and that the source is reachable",
        ) from None
    finally:
        con.close()


def discover_connection(settings: Settings, lake: Lake, name: str) -> dict[str, Any]:
    """The source's streams, with inferred schemas, keys, cursor candidates and supported modes."""
    conn = settings.connection(name)
    connector = connector_for(conn, settings)
    if not connector.capabilities.discover:
        raise IngestError(f"the {connector.type} connector cannot list its streams")
    con = lake.connect()
    try:
        connector.open(con)
        try:
            streams = connector.discover(con)
        finally:
            connector.close(con)
    except duckdb.Error as exc:
        raise SourceUnavailable(
            f"connection '{name}': {scrub(str(exc).splitlines()[0])}",
            "check the source settings in fleuve.yml and that the source is reachable",
        ) from None
    finally:
        con.close()
    return {
        "connection": name,
        "type": connector.type,
        "capabilities": asdict(connector.capabilities),
        "streams": [s.as_dict() for s in streams],
    }
