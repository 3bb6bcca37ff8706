"""Run a connection's streams into bronze, recording each sync as a job."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import httpx
import pyarrow as pa

from fleuve.config import ConnectionSettings, Settings, StreamSettings
from fleuve.errors import FleuveError
from fleuve.lake import Lake, quote_ident, quote_literal
from fleuve.metadata import Attempt, Database, Job
from fleuve.metadata.models import utcnow

log = logging.getLogger("fleuve.ingest")


@dataclass
class SyncResult:
    """What one sync of a connection did."""

    job_id: int
    status: str
    records: int = 0
    streams: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def sync_connection(
    settings: Settings,
    lake: Lake,
    db: Database,
    name: str,
    *,
    on_stream: Callable[[str, int], None] | None = None,
) -> SyncResult:
    """Copy every stream of connection `name` into bronze, replacing each table atomically."""
    conn = settings.connection(name)
    with db.session() as s:
        job = Job(config_type="sync", config_id=name, status="running")
        job.attempts.append(Attempt(number=1, status="running"))
        s.add(job)
        s.flush()
        job_id = job.id
    result = SyncResult(job_id=job_id, status="succeeded")
    try:
        for stream in conn.streams:
            rows = _sync_stream(
                settings, lake, conn, stream, sync_id=f"{job_id}-{uuid.uuid4().hex[:8]}"
            )
            result.streams[stream.name] = rows
            result.records += rows
            if on_stream:
                on_stream(stream.name, rows)
    except Exception as exc:
        result.status, result.error = "failed", str(exc)
        log.error("sync failed", extra={"job_id": job_id, "connection_id": name, "error": str(exc)})
    with db.session() as s:
        job = s.get(Job, job_id)
        attempt = job.attempts[-1]
        job.status = attempt.status = result.status
        attempt.ended_at = utcnow()
        attempt.records_synced = result.records
        attempt.stats = {"streams": result.streams}
        if result.error:
            attempt.failure_summary = {"failures": [{"externalMessage": result.error}]}
    log.info(
        "sync finished",
        extra={
            "job_id": job_id,
            "connection_id": name,
            "records_synced": result.records,
            "status": result.status,
        },
    )
    return result


def _sync_stream(
    settings: Settings, lake: Lake, conn: ConnectionSettings, stream: StreamSettings, sync_id: str
) -> int:
    source = conn.source
    kind = source["type"]
    table = f"bronze.{quote_ident(stream.name)}"
    meta = f"now() AS _fleuve_extracted_at, {quote_literal(sync_id)} AS _fleuve_sync_id"
    started = time.monotonic()
    if kind == "sqlite":
        path = str(settings.path(source["path"]))
        select = f"SELECT *, {meta} FROM sqlite_scan({quote_literal(path)}, {quote_literal(stream.table or stream.name)})"
        arrow = None
    elif kind == "files":
        pattern = str(settings.path(source["path"]) / (stream.path or "*"))
        reader = {"csv": "read_csv", "json": "read_json_auto", "parquet": "read_parquet"}[
            source.get("format", "csv")
        ]
        select = f"SELECT *, {meta} FROM {reader}({quote_literal(pattern)}, union_by_name = true)"
        arrow = None
    elif kind == "rest":
        arrow = _fetch_rest(source, stream)
        select = f"SELECT *, {meta} FROM arrow_rows"
    else:
        raise FleuveError(
            f"connection '{conn.name}': unknown source type '{kind}'",
            "use one of: sqlite, files, rest",
        )

    def write(con: duckdb.DuckDBPyConnection) -> int:
        if arrow is not None:
            con.register("arrow_rows", arrow)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}")
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    rows = lake.commit(write, what=f"sync {conn.name}.{stream.name}")
    log.info(
        "stream synced",
        extra={
            "connection_id": conn.name,
            "stream": stream.name,
            "rows": rows,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return rows


def _fetch_rest(source: dict, stream: StreamSettings) -> pa.Table:
    """Read every page of a JSON API endpoint into an Arrow table."""
    headers = {}
    if key := source.get("api_key"):
        headers[source.get("api_key_header", "X-API-Key")] = key
    records: list[dict] = []
    with httpx.Client(base_url=source["url"], headers=headers, timeout=30) as client:
        page = 1
        while True:
            resp = client.get(
                stream.path or f"/{stream.name}", params={"page": page, "per_page": 1000}
            )
            resp.raise_for_status()
            batch = resp.json()[source.get("records_path", "data")]
            if not batch:
                break
            records.extend(batch)
            page += 1
    return pa.Table.from_pylist(records)
