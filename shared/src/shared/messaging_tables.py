"""Tables every service keeps in its own database for reliable messaging:
the transactional outbox, the processed-events inbox and parked (dead-letter) messages."""
from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

from shared.db import BigIntPK, UTCDateTime, partial_index


class MessagingTables:
    def __init__(self, metadata: MetaData) -> None:
        self.outbox = Table(
            "outbox",
            metadata,
            Column("id", BigIntPK, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False, unique=True),
            Column("topic", String(200), nullable=False),
            Column("key", String(200), nullable=False),
            Column("event_type", String(120), nullable=False),
            Column("payload", Text, nullable=False),
            Column("created_at", UTCDateTime(), nullable=False),
            Column("published_at", UTCDateTime(), nullable=True),
            Column("attempts", Integer, nullable=False, default=0),
            Column("last_error", Text, nullable=True),
            Index("ix_outbox_unpublished", "published_at", "id"),  # sent rows by time: purge, republish
            # the relay's read: rows not sent yet, in order (create_outbox_pending_index_v2)
            partial_index("ix_outbox_pending", "id", where=PENDING),
        )
        self.processed_events = Table(
            "processed_events",
            metadata,
            Column("consumer", String(100), primary_key=True),
            Column("event_id", String(36), primary_key=True),
            Column("event_type", String(120), nullable=False),
            Column("processed_at", UTCDateTime(), nullable=False),
            # the purge's read: ids applied longer ago than the retention (create_inbox_age_index_v3)
            Index("ix_processed_events_processed_at", "processed_at"),
        )
        self.dead_letters = Table(
            "dead_letters",
            metadata,
            Column("id", BigIntPK, primary_key=True, autoincrement=True),
            Column("consumer", String(100), nullable=False),
            Column("topic", String(200), nullable=False),
            Column("partition", Integer, nullable=False),
            Column("offset", BigIntPK, nullable=False),
            Column("key", Text, nullable=True),
            Column("payload", Text, nullable=False),
            Column("error", Text, nullable=False),
            Column("created_at", UTCDateTime(), nullable=False),
        )


PENDING = "published_at IS NULL"


def create_outbox_pending_index_v2(op) -> None:
    """The relay's read (the rows not sent yet, in id order) through a partial index of its own.

    Through (published_at, id) it walked the entries of the rows sent since the last vacuum:
    on PostgreSQL they stay in the index until vacuum, and the scan could not mark them dead
    while inserts kept changing the same rightmost pages (tens of milliseconds a read under
    load). Here the sent rows' entries fall behind, on pages nothing writes to any more,
    and one pass marks them dead for good."""
    import sqlalchemy as sa

    op.create_index("ix_outbox_pending", "outbox", ["id"], postgresql_where=sa.text(PENDING),
                    sqlite_where=sa.text(PENDING))


def drop_outbox_pending_index_v2(op) -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")


def create_inbox_age_index_v3(op) -> None:
    """The inbox purge finds the ids applied before its cutoff through an index on their time
    (``OutboxRelay.purge``); without it each round would scan the whole inbox."""
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])


def drop_inbox_age_index_v3(op) -> None:
    op.drop_index("ix_processed_events_processed_at", table_name="processed_events")


def create_messaging_tables_v1(op) -> None:
    """Alembic ops for the first migration of every service (kept here so the
    five services create identical tables)."""
    import sqlalchemy as sa

    op.create_table(
        "outbox",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(120), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "id"])
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(120), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", BigIntPK, nullable=False),
        sa.Column("key", sa.Text, nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
