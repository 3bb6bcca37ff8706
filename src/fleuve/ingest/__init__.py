"""Ingestion: read connections' streams and land them in the lake's bronze layer exactly once."""

from fleuve.ingest.jobs import job_info, recent_jobs
from fleuve.ingest.sync import StreamProgress, SyncResult, sync_connection

__all__ = ["StreamProgress", "SyncResult", "job_info", "recent_jobs", "sync_connection"]
