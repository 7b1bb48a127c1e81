"""messages of fired deadlines keep when their timer fired

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the rows written before: the retraction then compares their created_at, as it did
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("deadline_fired_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("deadline_fired_at")
