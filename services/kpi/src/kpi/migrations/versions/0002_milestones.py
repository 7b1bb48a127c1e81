"""order milestones (audit, receipt, processing, exchange, rating, penalties)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_milestones",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=True),
        sa.PrimaryKeyConstraint("order_id", "kind", name="pk_order_milestones"),
    )
    op.create_index("ix_order_milestones_kind_at", "order_milestones", ["kind", "at"])


def downgrade() -> None:
    op.drop_table("order_milestones")
