"""timers by due time: a partial index of the pending timers replaces the (state, due_at) index

Every read by due time is of pending timers; an index of only them takes no entry when a
timer fires or is cancelled, and stays the size of the pending queue. On a large existing
table an operator may prefer to build it with CREATE INDEX CONCURRENTLY before migrating.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PENDING = "state = 'pending'"


def upgrade() -> None:
    op.create_index("ix_timers_pending_due", "timers", ["due_at"], postgresql_where=sa.text(PENDING),
                    sqlite_where=sa.text(PENDING))
    op.drop_index("ix_timers_state_due", table_name="timers")


def downgrade() -> None:
    op.create_index("ix_timers_state_due", "timers", ["state", "due_at"])
    op.drop_index("ix_timers_pending_due", table_name="timers")
