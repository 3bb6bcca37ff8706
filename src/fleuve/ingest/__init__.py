"""Ingestion: read connections' streams and land them in the lake's bronze layer exactly once."""

from fleuve.ingest.sync import StreamProgress, SyncResult, sync_connection
from fleuve.ingest.sync_jobs import job_info, recent_jobs

__all__ = ["StreamProgress", "SyncResult", "job_info", "recent_jobs", "sync_connection"]
