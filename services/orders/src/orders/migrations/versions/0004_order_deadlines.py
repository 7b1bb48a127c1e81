"""order_deadlines: the due times the sla-timer armed (sla.deadlines_armed), for the expected completion

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_deadlines",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("order_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "rule", name=op.f("pk_order_deadlines")),
    )


def downgrade() -> None:
    op.drop_table("order_deadlines")
