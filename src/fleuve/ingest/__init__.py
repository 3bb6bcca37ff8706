"""Ingestion: read connections' streams and land them in the lake's bronze layer."""

from fleuve.ingest.sync import SyncResult, sync_connection

__all__ = ["SyncResult", "sync_connection"]
