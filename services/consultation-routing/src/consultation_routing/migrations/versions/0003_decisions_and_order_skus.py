"""decisions (transfers name a real decision) and order_skus (route by service / sales order)

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("manufacturer_id", sa.String(100), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("sku", sa.String(100), nullable=True),
        sa.Column("category", sa.String(100), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_decisions"),
        sqlite_with_rowid=False,  # SQLite: one B-tree less to write per decision
    )
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])
    op.create_table(
        "order_skus",
        sa.Column("service_order_id", sa.String(64), nullable=False),
        sa.Column("sales_order_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("service_order_id", name="pk_order_skus"),
    )
    op.create_index("ix_order_skus_updated", "order_skus", ["updated_at"])
    op.create_index("ix_order_skus_created", "order_skus", ["created_at"])


def downgrade() -> None:
    op.drop_table("order_skus")
    op.drop_table("decisions")
