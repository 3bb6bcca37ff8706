"""Tables of the SQL engine: spaces and folders, sources, datasets, reflections, grants, jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fleuve.metadata.models import Base, utcnow


class EngineState(Base):
    """Counters other processes watch: a change to the catalog bumps `catalog`."""

    __tablename__ = "engine_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class EngineContainer(Base):
    """A space or a folder (inside a space, a home or a file source) where datasets live."""

    __tablename__ = "engine_containers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    path_key: Mapped[str] = mapped_column(String(1024), unique=True)
    path: Mapped[list[str]] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(16))  # SPACE or FOLDER
    created_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EngineSource(Base):
    """An external database attached read-only, or a folder/bucket of files."""

    __tablename__ = "engine_sources"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # postgres, mysql or files
    # Passwords appear only as ${ENV_VAR} references, resolved when the source is attached.
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EngineDataset(Base):
    """A virtual dataset (saved SQL) or a promoted folder of files."""

    __tablename__ = "engine_datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    path_key: Mapped[str] = mapped_column(String(1024), unique=True)
    path: Mapped[list[str]] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(16))  # VIRTUAL or FILES
    sql: Mapped[str | None] = mapped_column(Text, default=None)
    dialect: Mapped[str] = mapped_column(String(16), default="duckdb")
    context: Mapped[list[str]] = mapped_column(JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    staleness_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EngineDependency(Base):
    """Dataset `dataset_id` reads the dataset at `path_key` directly."""

    __tablename__ = "engine_dependencies"

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("engine_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    path_key: Mapped[str] = mapped_column(String(1024), primary_key=True, index=True)


class EngineDatasetSetting(Base):
    """Per-dataset settings for datasets with no row of their own (lake and source tables)."""

    __tablename__ = "engine_dataset_settings"

    path_key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    staleness_seconds: Mapped[int | None] = mapped_column(Integer, default=None)


class EngineReflection(Base):
    """A raw or aggregation reflection, its refresh policy and its last materialization."""

    __tablename__ = "engine_reflections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    dataset_key: Mapped[str] = mapped_column(String(1024), index=True)
    dataset_path: Mapped[list[str]] = mapped_column(JSON)
    kind: Mapped[str] = mapped_column(String(16))  # RAW or AGGREGATION
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    refresh_policy: Mapped[str] = mapped_column(String(16), default="ON_CHANGE")
    refresh_seconds: Mapped[int | None] = mapped_column(Integer, default=None)
    table_name: Mapped[str | None] = mapped_column(String(255), default=None)
    built_snapshot: Mapped[int | None] = mapped_column(BigInteger, default=None)
    built_inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    refresh_started_at: Mapped[datetime | None] = mapped_column(default=None)
    refreshed_at: Mapped[datetime | None] = mapped_column(default=None)
    refresh_seconds_taken: Mapped[float | None] = mapped_column(Float, default=None)
    refresh_mode: Mapped[str | None] = mapped_column(String(16), default=None)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    considered: Mapped[int] = mapped_column(BigInteger, default=0)
    matched: Mapped[int] = mapped_column(BigInteger, default=0)
    chosen: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EngineGrant(Base):
    """SELECT or ALL on a dataset, or on everything under a container, for a user or a role."""

    __tablename__ = "engine_grants"
    __table_args__ = (
        UniqueConstraint("grantee_kind", "grantee", "privilege", "object_key", "recursive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grantee_kind: Mapped[str] = mapped_column(String(8))  # USER or ROLE
    grantee: Mapped[str] = mapped_column(String(128))
    privilege: Mapped[str] = mapped_column(String(8))  # SELECT or ALL
    object_key: Mapped[str] = mapped_column(String(1024), index=True)
    object_path: Mapped[list[str]] = mapped_column(JSON)
    recursive: Mapped[bool] = mapped_column(Boolean, default=False)
    granted_by: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EngineJob(Base):
    """One SQL query's life, kept for history; its result pages live in a file until expiry."""

    __tablename__ = "engine_jobs"
    __table_args__ = (Index("ix_engine_jobs_user_submitted", "username", "submitted_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(128))
    sql: Mapped[str] = mapped_column(Text)
    dialect: Mapped[str] = mapped_column(String(16), default="duckdb")
    context: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(32))
    query_type: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    planning_ms: Mapped[float | None] = mapped_column(Float, default=None)
    execution_ms: Mapped[float | None] = mapped_column(Float, default=None)
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    datasets: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reflections: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    result_expires_at: Mapped[datetime | None] = mapped_column(default=None)
