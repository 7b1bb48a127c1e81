"""routing tables: manufacturers, catalogue_skus, queue_states, transfers

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
        "manufacturers",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("hours", sa.JSON, nullable=False),
        sa.Column("serve_non_working_days", sa.Boolean, nullable=False),
        sa.Column("im_queue_id", sa.String(100), nullable=False),
        sa.Column("phone_extension", sa.String(20), nullable=False),
        sa.Column("hover_text", sa.Text, nullable=True),
        sa.Column("min_agents", sa.Integer, nullable=False),
        sa.Column("max_queue_length", sa.Integer, nullable=True),
        sa.Column("max_expected_wait_s", sa.Integer, nullable=True),
        sa.Column("package", sa.Integer, nullable=False),
        sa.Column("disqualified", sa.Boolean, nullable=False),
        sa.Column("disqualified_reason", sa.Text, nullable=True),
        sa.Column("disqualified_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_manufacturers"),
    )
    op.create_index("ix_manufacturers_updated", "manufacturers", ["updated_at"])
    op.create_table(
        "catalogue_skus",
        sa.Column("sku", sa.String(100), nullable=False),
        sa.Column("manufacturer_id", sa.String(100), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_catalogue_skus"),
    )
    op.create_index("ix_catalogue_skus_updated", "catalogue_skus", ["updated_at"])
    op.create_table(
        "queue_states",
        sa.Column("manufacturer_id", sa.String(100), nullable=False),
        sa.Column("agents_online", sa.Integer, nullable=False),
        sa.Column("queue_length", sa.Integer, nullable=False),
        sa.Column("expected_wait_s", sa.Integer, nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("manufacturer_id", name="pk_queue_states"),
    )
    op.create_index("ix_queue_states_updated", "queue_states", ["updated_at"])
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("manufacturer_id", sa.String(100), nullable=False),
        sa.Column("agent_id", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("sku", sa.String(100), nullable=True),
        sa.Column("transferred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_transfers"),
        sa.UniqueConstraint("decision_id", name="uq_transfers_decision_id"),
    )


def downgrade() -> None:
    for t in ("transfers", "queue_states", "catalogue_skus", "manufacturers"):
        op.drop_table(t)
