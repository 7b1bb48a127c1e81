"""initial: messaging tables

Revision ID: 0001
Revises:
"""
from alembic import op

from shared.messaging_tables import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables_v1(op)


def downgrade() -> None:
    for t in ("dead_letters", "processed_events", "outbox"):
        op.drop_table(t)
