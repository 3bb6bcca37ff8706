"""Tables of the scheduler: each schedule's state, its runs, and the leases that pick one runner."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fleuve.metadata.models import Base, utcnow


class ScheduleState(Base):
    """A schedule's state shared by every process: paused or not, next due time, last run."""

    __tablename__ = "schedule_states"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[str] = mapped_column(String(255))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_by: Mapped[str | None] = mapped_column(String(128), default=None)
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    next_due_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    last_due_at: Mapped[datetime | None] = mapped_column(default=None)
    last_started_at: Mapped[datetime | None] = mapped_column(default=None)
    last_finished_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    last_run_id: Mapped[int | None] = mapped_column(Integer, default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    requested_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    requested_by: Mapped[str | None] = mapped_column(String(128), default=None)
    # Schedules run on new data: the lake snapshot up to which their inputs were looked at.
    seen_snapshot: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ScheduleRun(Base):
    """One run of a schedule: which due time, which try, who ran it, how it ended, its job."""

    __tablename__ = "schedule_runs"
    # One row per try of a due run: a second process starting the same run fails to insert.
    # The trigger is part of it, as a run asked for may fall on a scheduled time.
    __table_args__ = (UniqueConstraint("schedule", "due_at", "attempt", "trigger"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    schedule: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column()
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    trigger: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    owner: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    job_id: Mapped[int | None] = mapped_column(Integer, default=None)
    log_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class ScheduleLease(Base):
    """A lease on a schedule or a connection: held by one process until it expires or is freed."""

    __tablename__ = "schedule_leases"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(255), default=None)
    acquired_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
