"""Sync jobs and their attempts in the metadata database, and their JobInfoRead shape."""

from __future__ import annotations

import os
import socket
from datetime import datetime
from typing import Any

from sqlalchemy import select

from fleuve.metadata import Attempt, Database, Job
from fleuve.metadata.models import utcnow

HOST = socket.gethostname()


def start_job(db: Database, connection: str, detail: dict[str, Any] | None = None) -> int:
    """Record a new running sync job of `connection`; returns its id."""
    reap_dead_jobs(db, connection)
    with db.session() as s:
        job = Job(
            config_type="sync",
            config_id=connection,
            status="running",
            detail={"pid": os.getpid(), "host": HOST, **(detail or {})},
        )
        s.add(job)
        s.flush()
        return job.id


def start_attempt(db: Database, job_id: int, number: int) -> None:
    """Record attempt `number` of a job as running."""
    with db.session() as s:
        job = s.get_one(Job, job_id)
        job.status = "running"
        job.attempts.append(Attempt(number=number, status="running"))


def finish_attempt(
    db: Database,
    job_id: int,
    number: int,
    *,
    status: str,
    records: int,
    bytes_read: int,
    stats: dict[str, Any],
    failures: list[dict[str, Any]],
    partial_success: bool = False,
) -> None:
    """Close an attempt with what it committed and, if it failed, why."""
    with db.session() as s:
        attempt = s.scalars(
            select(Attempt).where(Attempt.job_id == job_id, Attempt.number == number)
        ).one()
        attempt.status = status
        attempt.ended_at = utcnow()
        attempt.records_synced = records
        attempt.bytes_synced = bytes_read
        attempt.stats = stats
        if failures:
            attempt.failure_summary = {"failures": failures, "partialSuccess": partial_success}


def finish_job(db: Database, job_id: int, status: str) -> None:
    """Set a job's final status: succeeded, failed, incomplete or cancelled."""
    with db.session() as s:
        s.get_one(Job, job_id).status = status


def reap_dead_jobs(db: Database, connection: str | None = None) -> int:
    """Mark running jobs whose process died on this host (killed, crashed) as incomplete."""
    reaped = 0
    with db.session() as s:
        query = select(Job).where(Job.config_type == "sync", Job.status.in_(("running", "pending")))
        if connection:
            query = query.where(Job.config_id == connection)
        for job in s.scalars(query):
            pid, host = job.detail.get("pid"), job.detail.get("host")
            if host != HOST or not pid or _alive(int(pid)):
                continue
            job.status = "incomplete"
            for attempt in job.attempts:
                if attempt.status == "running":
                    attempt.status = "failed"
                    attempt.ended_at = utcnow()
                    attempt.failure_summary = {
                        "failures": [
                            {
                                "failureOrigin": "replication",
                                "failureType": "system_error",
                                "externalMessage": "the sync process stopped before finishing; "
                                "streams it had committed are kept, the others were not committed",
                                "timestamp": int(utcnow().timestamp()),
                            }
                        ],
                        "partialSuccess": False,
                    }
            reaped += 1
    return reaped


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def job_info(db: Database, job_id: int) -> dict[str, Any] | None:
    """The job as the Airbyte-style API's JobInfoRead, or None when there is no such sync job."""
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.config_type != "sync":
            return None
        return _job_info(job)


def _job_info(job: Job) -> dict[str, Any]:
    attempts = []
    for a in job.attempts:
        streams = (a.stats or {}).get("streams", {})
        attempts.append(
            {
                "attempt": {
                    "id": a.number,
                    "status": a.status,
                    "createdAt": _epoch(a.created_at),
                    "updatedAt": _epoch(a.updated_at),
                    "endedAt": _epoch(a.ended_at),
                    "recordsSynced": a.records_synced,
                    "bytesSynced": a.bytes_synced,
                    "failureSummary": a.failure_summary,
                    "totalStats": {
                        "recordsEmitted": sum(v.get("records_read", 0) for v in streams.values()),
                        "recordsCommitted": a.records_synced,
                        "recordsRejected": sum(
                            v.get("records_rejected", 0) for v in streams.values()
                        ),
                        "bytesEmitted": a.bytes_synced,
                    },
                    "streamStats": [
                        {"streamName": name, "stats": stats} for name, stats in streams.items()
                    ],
                }
            }
        )
    return {
        "job": {
            "id": job.id,
            "configType": "sync",
            "configId": job.config_id,
            "createdAt": _epoch(job.created_at),
            "updatedAt": _epoch(job.updated_at),
            "status": job.status,
        },
        "attempts": attempts,
    }


def recent_jobs(
    db: Database, limit: int = 20, connection: str | None = None
) -> list[dict[str, Any]]:
    """The latest sync jobs, newest first, each as JobInfoRead."""
    with db.session() as s:
        query = select(Job).where(Job.config_type == "sync")
        if connection:
            query = query.where(Job.config_id == connection)
        return [_job_info(j) for j in s.scalars(query.order_by(Job.id.desc()).limit(limit))]
