"""timers keep the order's merchant and category (who may read them); audit log of
operator overrides

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

from shared.db import BigIntPK, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: timers stored before this revision have no merchant (platform roles only).
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("merchant_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("category", sa.String(64), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(60), nullable=True),
        sa.Column("scope", sa.String(20), nullable=True),
        sa.Column("scope_id", sa.String(60), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_kind", "audit_log", ["kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_kind", table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("category")
        batch.drop_column("merchant_id")
