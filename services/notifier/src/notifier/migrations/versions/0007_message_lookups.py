"""indexes for an order's messages, its deadline messages and a phone's recent SMS

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_order", "messages", ["order_id"])
    op.create_index("ix_messages_deadline_order", "messages", ["order_id"],
                    postgresql_where=sa.text("deadline_version IS NOT NULL"),
                    sqlite_where=sa.text("deadline_version IS NOT NULL"))
    op.create_index("ix_messages_phone_sent", "messages", ["phone", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_phone_sent", table_name="messages")
    op.drop_index("ix_messages_deadline_order", table_name="messages")
    op.drop_index("ix_messages_order", table_name="messages")
