"""schedule: the lake snapshot a schedule run on new data last looked at

Revision ID: 0008_schedule_new_data
Revises: 0007_schedule
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_schedule_new_data"
down_revision = "0007_schedule"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("schedule_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seen_snapshot", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("schedule_states", schema=None) as batch_op:
        batch_op.drop_column("seen_snapshot")
