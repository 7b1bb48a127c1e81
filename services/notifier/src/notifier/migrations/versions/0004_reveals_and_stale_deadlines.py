"""phone reveal audit; transitions seen and deadline facts on messages (stale deadlines)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from shared.db import BigIntPK, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phone_reveals",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("message_id", BigIntPK, nullable=True),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_phone_reveals"),
    )
    op.create_index("ix_phone_reveals_order_id", "phone_reveals", ["order_id", "id"])
    op.create_table(
        "order_transitions",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(40), nullable=False),
        sa.Column("to_state", sa.String(40), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "version", name="pk_order_transitions"),
    )
    op.add_column("messages", sa.Column("deadline_version", sa.Integer, nullable=True))
    op.add_column("messages", sa.Column("deadline_cancelled_by", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("deadline_cancelled_by")
        batch.drop_column("deadline_version")
    op.drop_table("order_transitions")
    op.drop_index("ix_phone_reveals_order_id", table_name="phone_reveals")
    op.drop_table("phone_reveals")
