"""fired deadlines waiting for their order's events

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deferred_deadlines",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("deferred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_deferred_deadlines"),
    )
    op.create_index("ix_deferred_deadlines_order_id", "deferred_deadlines", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_deferred_deadlines_order_id", table_name="deferred_deadlines")
    op.drop_table("deferred_deadlines")
