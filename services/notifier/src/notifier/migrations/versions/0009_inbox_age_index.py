"""the inbox purge finds old processed event ids through an index on processed_at

Revision ID: 0009
Revises: 0008
"""
from alembic import op

from shared.messaging_tables import create_inbox_age_index_v3, drop_inbox_age_index_v3

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_inbox_age_index_v3(op)


def downgrade() -> None:
    drop_inbox_age_index_v3(op)
