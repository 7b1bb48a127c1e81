"""replay cache of signed webhooks (SMS delivery receipts)

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
    op.create_table(
        "webhook_nonces",
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name="pk_webhook_nonces"),
    )
    op.create_index("ix_webhook_nonces_expires_at", "webhook_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_nonces_expires_at", table_name="webhook_nonces")
    op.drop_table("webhook_nonces")
