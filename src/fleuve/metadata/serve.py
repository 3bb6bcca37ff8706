"""Tables of the serving layer: the audit trail of logins, queries and changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from fleuve.metadata.models import Base, utcnow


class AuditEvent(Base):
    """One security-relevant event: a login, a query, a change to users, grants or connections."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_kind_username_at", "kind", "username", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    username: Mapped[str | None] = mapped_column(String(128), default=None)
    client: Mapped[str | None] = mapped_column(String(64), default=None)
    target: Mapped[str | None] = mapped_column(String(255), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
