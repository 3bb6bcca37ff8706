"""Tables of alerts: each rule's current state, its history, and HTTP answers counted per minute."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fleuve.metadata.models import Base, utcnow


class AlertState(Base):
    """Where one alert stands (ok, pending or firing), for one rule and what it watches."""

    __tablename__ = "alert_states"

    rule: Mapped[str] = mapped_column(String(255), primary_key=True)
    # What the rule watches: a connection, a reflection, or '' for the platform as a whole.
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="ok")
    # When the condition started to hold (pending and firing), and when the alert fired.
    active_since: Mapped[datetime | None] = mapped_column(default=None)
    fired_at: Mapped[datetime | None] = mapped_column(default=None)
    value: Mapped[float | None] = mapped_column(Float, default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertEvent(Base):
    """An alert firing or resolving, and how its notifications went."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(255), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))  # firing or resolved
    at: Mapped[datetime] = mapped_column(index=True)
    severity: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    # Per channel: {"status": "sent" | "failed", "attempts": n, "error": "..."}.
    deliveries: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ApiRequestCount(Base):
    """HTTP answers one serving process gave in one minute, and how many were 5xx."""

    __tablename__ = "api_request_counts"

    minute: Mapped[datetime] = mapped_column(primary_key=True)
    process: Mapped[str] = mapped_column(String(255), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
