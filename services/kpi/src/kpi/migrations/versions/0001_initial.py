"""initial: messaging tables and order facts

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime
from shared.messaging_tables import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables_v1(op)
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("service_type", sa.String(20), nullable=False),
        sa.Column("problem_type", sa.String(20), nullable=False),
        sa.Column("amount_paid", sa.Numeric(12, 2), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_facts"),
    )
    op.create_index("ix_order_facts_merchant_created", "order_facts", ["merchant_id", "created_at"])


def downgrade() -> None:
    op.drop_table("order_facts")
    for t in ("dead_letters", "processed_events", "outbox"):
        op.drop_table(t)
