"""indexes for an order's messages and a phone's recent SMS

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_order", "messages", ["order_id", "status"])
    op.create_index("ix_messages_phone_sent", "messages", ["phone", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_phone_sent", table_name="messages")
    op.drop_index("ix_messages_order", table_name="messages")
