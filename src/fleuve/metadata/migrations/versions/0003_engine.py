"""engine: spaces and folders, sources, datasets, reflections, grants, query jobs

Revision ID: 0003_engine
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_engine"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "engine_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "engine_containers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("path_key", sa.String(length=1024), nullable=False),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path_key"),
    )
    op.create_table(
        "engine_sources",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "engine_datasets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("path_key", sa.String(length=1024), nullable=False),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sql", sa.Text(), nullable=True),
        sa.Column("dialect", sa.String(length=16), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("staleness_seconds", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path_key"),
    )
    op.create_table(
        "engine_dependencies",
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("path_key", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["engine_datasets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "path_key"),
    )
    op.create_index(
        "ix_engine_dependencies_path_key", "engine_dependencies", ["path_key"], unique=False
    )
    op.create_table(
        "engine_dataset_settings",
        sa.Column("path_key", sa.String(length=1024), nullable=False),
        sa.Column("staleness_seconds", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("path_key"),
    )
    op.create_table(
        "engine_reflections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("dataset_key", sa.String(length=1024), nullable=False),
        sa.Column("dataset_path", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("refresh_policy", sa.String(length=16), nullable=False),
        sa.Column("refresh_seconds", sa.Integer(), nullable=True),
        sa.Column("table_name", sa.String(length=255), nullable=True),
        sa.Column("built_snapshot", sa.BigInteger(), nullable=True),
        sa.Column("built_inputs", sa.JSON(), nullable=False),
        sa.Column("refresh_started_at", TS, nullable=True),
        sa.Column("refreshed_at", TS, nullable=True),
        sa.Column("refresh_seconds_taken", sa.Float(), nullable=True),
        sa.Column("refresh_mode", sa.String(length=16), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("considered", sa.BigInteger(), nullable=False),
        sa.Column("matched", sa.BigInteger(), nullable=False),
        sa.Column("chosen", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index(
        "ix_engine_reflections_dataset_key", "engine_reflections", ["dataset_key"], unique=False
    )
    op.create_table(
        "engine_grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("grantee_kind", sa.String(length=8), nullable=False),
        sa.Column("grantee", sa.String(length=128), nullable=False),
        sa.Column("privilege", sa.String(length=8), nullable=False),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("object_path", sa.JSON(), nullable=False),
        sa.Column("recursive", sa.Boolean(), nullable=False),
        sa.Column("granted_by", sa.String(length=128), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("grantee_kind", "grantee", "privilege", "object_key", "recursive"),
    )
    op.create_index("ix_engine_grants_object_key", "engine_grants", ["object_key"], unique=False)
    op.create_table(
        "engine_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("dialect", sa.String(length=16), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("query_type", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("planning_ms", sa.Float(), nullable=True),
        sa.Column("execution_ms", sa.Float(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("reflections", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result_path", sa.String(length=1024), nullable=True),
        sa.Column("result_expires_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_engine_jobs_submitted_at", "engine_jobs", ["submitted_at"], unique=False)
    op.create_index(
        "ix_engine_jobs_user_submitted", "engine_jobs", ["username", "submitted_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_engine_jobs_user_submitted", table_name="engine_jobs")
    op.drop_index("ix_engine_jobs_submitted_at", table_name="engine_jobs")
    op.drop_table("engine_jobs")
    op.drop_index("ix_engine_grants_object_key", table_name="engine_grants")
    op.drop_table("engine_grants")
    op.drop_index("ix_engine_reflections_dataset_key", table_name="engine_reflections")
    op.drop_table("engine_reflections")
    op.drop_table("engine_dataset_settings")
    op.drop_index("ix_engine_dependencies_path_key", table_name="engine_dependencies")
    op.drop_table("engine_dependencies")
    op.drop_table("engine_datasets")
    op.drop_table("engine_sources")
    op.drop_table("engine_containers")
    op.drop_table("engine_state")
