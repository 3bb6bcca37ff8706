"""Tables of dbt runs: dbt_run_history (the columns dbt users know) and the timing of every node of a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fleuve.metadata.models import Base, utcnow


class DbtRunHistory(Base):
    """One dbt command Fleuve ran (dbt_run_history, column for column)."""

    __tablename__ = "dbt_run_history"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_name: Mapped[str | None] = mapped_column(String(255), default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(50), default="running")
    models_run: Mapped[int] = mapped_column(Integer, default=0)
    tests_run: Mapped[int] = mapped_column(Integer, default=0)
    # "metadata" is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)

    nodes: Mapped[list[DbtRunNode]] = relationship(
        back_populates="run", order_by="DbtRunNode.id", cascade="all, delete-orphan"
    )


class DbtRunNode(Base):
    """How one model, test, seed or snapshot of a dbt run went, and how long it took."""

    __tablename__ = "dbt_run_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("dbt_run_history.run_id", ondelete="CASCADE"), index=True
    )
    unique_id: Mapped[str] = mapped_column(String(512), index=True)
    name: Mapped[str] = mapped_column(String(255))
    resource_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    relation: Mapped[str | None] = mapped_column(String(255), default=None)
    failures: Mapped[int | None] = mapped_column(Integer, default=None)
    message: Mapped[str | None] = mapped_column(Text, default=None)

    run: Mapped[DbtRunHistory] = relationship(back_populates="nodes")
