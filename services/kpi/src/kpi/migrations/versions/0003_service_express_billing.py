"""consultation facts, on-behalf orders, disqualifications, flag records

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
    with op.batch_alter_table("order_facts") as b:
        b.add_column(sa.Column("on_behalf", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "consultation_facts",
        sa.Column("fact_id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("manufacturer_id", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("target", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("package", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("fact_id", name="pk_consultation_facts"),
    )
    op.create_index("ix_consultation_facts_manufacturer_at", "consultation_facts", ["manufacturer_id", "at"])
    op.create_table(
        "disqualifications",
        sa.Column("manufacturer_id", sa.String(64), nullable=False),
        sa.Column("disqualified", sa.Boolean(), nullable=False),
        sa.Column("since_period", sa.String(10), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("manufacturer_id", name="pk_disqualifications"),
    )
    op.create_table(
        "flag_records",
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("week", sa.String(10), nullable=False),
        sa.Column("flagged_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "week", name="pk_flag_records"),
    )


def downgrade() -> None:
    op.drop_table("flag_records")
    op.drop_table("disqualifications")
    op.drop_table("consultation_facts")
    with op.batch_alter_table("order_facts") as b:
        b.drop_column("on_behalf")
