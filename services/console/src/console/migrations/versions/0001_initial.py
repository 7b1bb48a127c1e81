"""initial: messaging tables, the read model (orders, counters, fired deadlines, routing), sessions

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime
from shared.messaging_tables import create_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables_v1(op)
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(40), nullable=False),
        sa.Column("service_type", sa.String(20), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("entered_state_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_orders"),
    )
    op.create_index("ix_orders_open_created", "orders", ["is_open", "created_at"])
    op.create_index("ix_orders_state_entered", "orders", ["state", "entered_state_at"])
    op.create_index("ix_orders_merchant_open", "orders", ["merchant_id", "is_open", "created_at"])
    op.create_table(
        "state_counts",
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("state", "mode", name="pk_state_counts"),
    )
    op.create_table(
        "hourly_orders",
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", name="pk_hourly_orders"),
    )
    op.create_table(
        "merchant_backlog",
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("open_n", sa.Integer(), nullable=False),
        sa.Column("total_n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", name="pk_merchant_backlog"),
    )
    op.create_index("ix_merchant_backlog_open", "merchant_backlog", ["open_n"])
    op.create_table(
        "fired_deadlines",
        sa.Column("timer_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("to", sa.String(60), nullable=True),
        sa.Column("indicator", sa.String(20), nullable=True),
        sa.Column("order_state", sa.String(40), nullable=False),
        sa.Column("order_version", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("timer_id", name="pk_fired_deadlines"),
    )
    op.create_index("ix_fired_deadlines_fired", "fired_deadlines", ["fired_at"])
    op.create_index("ix_fired_deadlines_action", "fired_deadlines", ["action", "order_id"])
    op.create_table(
        "routing_hourly",
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("manufacturer_id", sa.String(100), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "target", "reason", "channel", "manufacturer_id", name="pk_routing_hourly"),
    )
    op.create_table(
        "transfers_hourly",
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("manufacturer_id", sa.String(100), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "manufacturer_id", name="pk_transfers_hourly"),
    )
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("token_expires_at", UTCDateTime(), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_expires", "sessions", ["expires_at"])


def downgrade() -> None:
    for t in ("sessions", "transfers_hourly", "routing_hourly", "fired_deadlines", "merchant_backlog",
              "hourly_orders", "state_counts", "orders", "dead_letters", "processed_events", "outbox"):
        op.drop_table(t)
