"""messages: the SMS queue's and the failures' partial indexes replace the (status, next_attempt_at) index

A message that is sent or delivered adds no entry to them (every message is rewritten as it
moves on), and the queue's index stays the size of the queue, not of the delivery log. On a
large existing table an operator may prefer to build them with CREATE INDEX CONCURRENTLY
before migrating.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

QUEUED_SMS = "status = 'queued' AND channel = 'sms'"
FAILED = "status = 'failed'"


def upgrade() -> None:
    op.create_index("ix_messages_sms_queue", "messages", ["next_attempt_at", "id"],
                    postgresql_where=sa.text(QUEUED_SMS), sqlite_where=sa.text(QUEUED_SMS))
    op.create_index("ix_messages_failed", "messages", ["id"], postgresql_where=sa.text(FAILED),
                    sqlite_where=sa.text(FAILED))
    op.drop_index("ix_messages_due", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_due", "messages", ["status", "next_attempt_at"])
    op.drop_index("ix_messages_failed", table_name="messages")
    op.drop_index("ix_messages_sms_queue", table_name="messages")
