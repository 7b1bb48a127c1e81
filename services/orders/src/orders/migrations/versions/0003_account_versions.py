"""api_clients.version / version_changed_at: revocation of tokens issued before an account change

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
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("version_changed_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_api_clients_version_changed_at", ["version_changed_at"])


def downgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_index("ix_api_clients_version_changed_at")
        batch.drop_column("version_changed_at")
        batch.drop_column("version")
