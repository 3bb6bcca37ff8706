"""`fleuve source check` and `fleuve source discover`: reach a source, list its streams."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import duckdb

from fleuve.config import ConnectionSettings, Settings
from fleuve.ingest.connectors import connector_for
from fleuve.ingest.errors import IngestError, SourceUnavailable
from fleuve.lake import Lake
from fleuve.logs.local import scrub


def check_connection(settings: Settings, lake: Lake, name: str) -> str:
    """Reach connection `name`'s source; a one-line report, or an IngestError naming the fix."""
    conn = settings.connection(name)
    connector = connector_for(conn, settings)
    con = lake.connect()
    try:
        connector.open(con)
        try:
            report = connector.check(con)
        finally:
            connector.close(con)
    except duckdb.Error as exc:
        raise SourceUnavailable(
            f"connection '{name}': {scrub(str(exc).splitlines()[0])}",
            "check the source settings in fleuve.yml and that the source is reachable",
        ) from None
    finally:
        con.close()
    return report + _capture_report(lake, conn)


def _capture_report(lake: Lake, conn: ConnectionSettings) -> str:
    """'' without cdc streams; otherwise that the source is ready for them, or an IngestError
    listing what it lacks and the fixes."""
    from fleuve.ingest.cdc import cdc_streams, check_capture

    if not cdc_streams(conn):
        return ""
    problems = check_capture(lake, conn)
    if problems:
        raise IngestError(
            f"connection '{conn.name}': the source is not ready for change data capture: "
            + "; ".join(problem for problem, _ in problems),
            "; ".join(fix for _, fix in problems),
        )
    return "; ready for change data capture"


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
