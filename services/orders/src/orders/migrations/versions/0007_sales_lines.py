"""sales_lines: the version concurrent applications for a sales-order line are checked against
(replaces the line's advisory lock)

Revision ID: 0007
Revises: 0006

No backfill: a line without a row reads as version 0 and its next application creates the
row. Upgrade note: replicas of the previous release serialize applications with an advisory
lock that this release no longer takes; during a rolling upgrade, applications for one line
landing on an old and a new replica at the same instant are not checked against each other.
Upgrade with the storefront's applications drained, or all replicas at once.
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sales_lines",
        sa.Column("sales_order_id", sa.String(64), nullable=False),
        sa.Column("order_line_id", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sales_order_id", "order_line_id", name=op.f("pk_sales_lines")),
    )


def downgrade() -> None:
    op.drop_table("sales_lines")
