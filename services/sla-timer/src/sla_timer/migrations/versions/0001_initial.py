"""initial: messaging tables, timers, rule overrides, calendar overrides

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
        "timers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("order_version", sa.Integer, nullable=False),
        sa.Column("order_state", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_by", sa.String(80), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
    )
    op.create_index("ix_timers_state_due", "timers", ["state", "due_at"])
    op.create_index("ix_timers_order", "timers", ["order_id", "state"])
    op.create_table(
        "rule_overrides",
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("scope_id", sa.String(60), nullable=False),
        sa.Column("rule", sa.String(60), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("after_seconds", sa.Integer, nullable=True),
        sa.Column("working_days", sa.Integer, nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "scope_id", "rule", name="pk_rule_overrides"),
    )
    op.create_table(
        "calendar_overrides",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_calendar_overrides"),
    )


def downgrade() -> None:
    for t in ("calendar_overrides", "rule_overrides", "timers", "dead_letters", "processed_events", "outbox"):
        op.drop_table(t)
