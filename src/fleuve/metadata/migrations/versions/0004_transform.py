"""transform: dbt run history and per-node timings

Revision ID: 0004_transform
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_transform"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dbt_run_history",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("project_name", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("models_run", sa.Integer(), nullable=False),
        sa.Column("tests_run", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    with op.batch_alter_table("dbt_run_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dbt_run_history_started_at"), ["started_at"], unique=False
        )
    op.create_table(
        "dbt_run_nodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("unique_id", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("relation", sa.String(length=255), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["dbt_run_history.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dbt_run_nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dbt_run_nodes_run_id"), ["run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dbt_run_nodes_unique_id"), ["unique_id"], unique=False)


def downgrade() -> None:
    op.drop_table("dbt_run_nodes")
    op.drop_table("dbt_run_history")
