"""the outbox relay reads the rows not sent yet through a partial index (ix_outbox_pending)

Revision ID: 0006
Revises: 0005
"""
from alembic import op

from shared.messaging_tables import create_outbox_pending_index_v2, drop_outbox_pending_index_v2

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_pending_index_v2(op)


def downgrade() -> None:
    drop_outbox_pending_index_v2(op)
