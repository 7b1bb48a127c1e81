"""the timers table is vacuumed after 1 % of its rows changed (PostgreSQL)

A queue: every timer changes state once (fired or cancelled), and each change leaves a dead
entry where the firing loop's claim reads the (state, due_at) index. The default (20 % of
the table) lets them pile up between vacuums.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SETTINGS = ("autovacuum_vacuum_scale_factor", "autovacuum_vacuum_threshold", "autovacuum_analyze_scale_factor")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE timers SET (autovacuum_vacuum_scale_factor = 0.01, "
                   "autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE timers RESET ({', '.join(SETTINGS)})")
