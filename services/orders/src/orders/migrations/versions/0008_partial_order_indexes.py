"""service_orders: the purge's, the handler's and the tracking number's indexes hold only the rows
they serve (partial indexes), so the orders' every-action row updates add no entries to them

Revision ID: 0008
Revises: 0007

On a large existing table an operator may prefer to build the new indexes with CREATE INDEX
CONCURRENTLY (under other names) before migrating.
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FINISHED = "state IN ('abandoned', 'closed', 'completed', 'refunded_by_system', 'rejected')"
PARTIAL = {
    "ix_service_orders_updated": ("updated_at", FINISHED),
    "ix_service_orders_handler_id": ("handler_id", "handler_id IS NOT NULL"),
    "ix_service_orders_tracking_number": ("tracking_number", "tracking_number IS NOT NULL"),
}


def upgrade() -> None:
    for name, (column, where) in PARTIAL.items():
        op.drop_index(name, table_name="service_orders")
        op.create_index(name, "service_orders", [column], postgresql_where=sa.text(where),
                        sqlite_where=sa.text(where))


def downgrade() -> None:
    for name, (column, _where) in PARTIAL.items():
        op.drop_index(name, table_name="service_orders")
        op.create_index(name, "service_orders", [column])
