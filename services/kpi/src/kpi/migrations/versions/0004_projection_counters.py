"""one fact row per order, counters, paid transactions; one consumer group

- ``order_facts`` becomes one wide row per order (the milestones of
  ``order_milestones`` become columns); existing facts are carried over and their
  counters computed with this release's projection (``kpi.domain.projection``).
- ``kpi_counters``: the sums the figures are read from.
- ``paid_transactions``: the ingest API's counts.
- the three consumer groups ``kpi.orders``/``kpi.sla``/``kpi.routing`` become one,
  ``kpi.facts``: their processed-event records are copied over.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = 200


def _order_facts_columns():
    dt = UTCDateTime
    return [
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("snap_version", sa.Integer()),
        sa.Column("merchant_id", sa.String(ID)),
        sa.Column("category", sa.String(ID)),
        sa.Column("sku", sa.String(ID)),
        sa.Column("service_type", sa.String(20)),
        sa.Column("problem_type", sa.String(20)),
        sa.Column("amount_cents", sa.BigInteger()),
        sa.Column("created_at", dt()),
        sa.Column("on_behalf", sa.Boolean()),
        sa.Column("audited_at", dt()),
        sa.Column("audit_action", sa.String(60)),
        sa.Column("received_at", dt()),
        sa.Column("processed_at", dt()),
        sa.Column("process_action", sa.String(60)),
        sa.Column("exchange_created_at", dt()),
        sa.Column("exchange_shipped_at", dt()),
        sa.Column("shipped_back_at", dt()),
        sa.Column("rated_at", dt()),
        sa.Column("stars", sa.Integer()),
        sa.Column("recommend_at", dt()),
        sa.Column("recommend", sa.Integer()),
        sa.Column("arbitration_at", dt()),
        sa.Column("refund_at", dt()),
        sa.Column("refund_cents", sa.BigInteger()),
        sa.Column("refund_by", sa.String(16)),
        sa.Column("closed_at", dt()),
        sa.Column("closed_role", sa.String(40)),
        sa.Column("advance_at", dt()),
        sa.Column("advance_cents", sa.BigInteger()),
        sa.Column("penalty_at", dt()),
        sa.Column("penalty_cents", sa.BigInteger()),
        sa.Column("audit_late", sa.Boolean(), nullable=False, server_default=sa.false()),
    ]


def _old_rows(bind):
    """The facts of revision 0003 as ``kpi.domain.projection.OrderFact`` rows."""
    from kpi.domain import projection as P

    of = sa.table("order_facts", sa.column("order_id"), sa.column("merchant_id"), sa.column("category"),
                  sa.column("sku"), sa.column("service_type"), sa.column("problem_type"),
                  sa.column("amount_paid", sa.Numeric(12, 2)), sa.column("created_at", UTCDateTime()),
                  sa.column("on_behalf", sa.Boolean()))
    om = sa.table("order_milestones", sa.column("order_id"), sa.column("kind"), sa.column("at", UTCDateTime()),
                  sa.column("value", sa.Integer()), sa.column("amount", sa.Numeric(12, 2)))
    rows = {}
    for r in bind.execute(sa.select(of)).all():
        rows[r.order_id] = P.OrderFact(r.order_id, snap_version=1, merchant_id=r.merchant_id, category=r.category,
                                       sku=r.sku, service_type=r.service_type, problem_type=r.problem_type,
                                       amount_cents=P.cents(r.amount_paid), created_at=r.created_at,
                                       on_behalf=bool(r.on_behalf))
    simple = {"audited": "audited_at", "received": "received_at", "exchange_created": "exchange_created_at",
              "exchange_shipped": "exchange_shipped_at", "arbitration": "arbitration_at"}
    for m in bind.execute(sa.select(om)).all():
        row = rows.get(m.order_id)
        if row is None:
            continue
        if m.kind in simple:
            setattr(row, simple[m.kind], m.at)
        elif m.kind == "processed":
            row.processed_at = m.at
            if m.amount is not None:
                row.refund_at, row.refund_cents, row.refund_by = m.at, P.cents(m.amount), "merchant"
        elif m.kind == "rated":
            row.rated_at, row.stars = m.at, m.value
        elif m.kind == "recommended":
            row.recommend_at, row.recommend = m.at, m.value
        elif m.kind == "penalty_48h":
            row.penalty_at, row.penalty_cents = m.at, P.cents(m.amount) or P.DEFAULT_PENALTY_CENTS
        elif m.kind == "advance_compensation":
            row.advance_at, row.advance_cents = m.at, P.cents(m.amount) or 0
            row.refund_at, row.refund_cents, row.refund_by = m.at, row.advance_cents, "system"
    return list(rows.values())


def upgrade() -> None:
    from kpi.domain import projection as P

    bind = op.get_bind()
    rows = _old_rows(bind)
    cf = sa.table("consultation_facts", sa.column("fact_id"), sa.column("kind"), sa.column("manufacturer_id"),
                  sa.column("at", UTCDateTime()), sa.column("target"), sa.column("reason"),
                  sa.column("package", sa.Integer()))
    consultations = [tuple(r) for r in bind.execute(sa.select(cf)).all()]

    op.drop_table("order_milestones")
    op.drop_table("order_facts")
    facts = op.create_table("order_facts", *_order_facts_columns(),
                            sa.PrimaryKeyConstraint("order_id", name="pk_order_facts"))
    op.create_index("ix_order_facts_merchant_created", "order_facts", ["merchant_id", "created_at"])
    counters = op.create_table(
        "kpi_counters",
        sa.Column("family", sa.String(8), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("merchant_id", sa.String(ID), nullable=False),
        sa.Column("dim", sa.String(ID + 40), nullable=False),
        sa.Column("a", sa.BigInteger(), nullable=False),
        sa.Column("b", sa.BigInteger(), nullable=False),
        sa.Column("c", sa.BigInteger(), nullable=False),
        sa.Column("d", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("family", "period", "merchant_id", "dim", name="pk_kpi_counters"),
    )
    op.create_index("ix_kpi_counters_merchant", "kpi_counters", ["family", "merchant_id", "period"])
    op.create_table(
        "paid_transactions",
        sa.Column("merchant_id", sa.String(ID), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "day", name="pk_paid_transactions"),
    )
    op.create_index("ix_paid_transactions_day", "paid_transactions", ["day"])
    with op.batch_alter_table("consultation_facts") as b:
        b.alter_column("fact_id", type_=sa.String(240), existing_type=sa.String(80), existing_nullable=False)
        b.alter_column("manufacturer_id", type_=sa.String(ID), existing_type=sa.String(64), existing_nullable=True)

    if rows:
        cols = P.FIELDS + ("audit_late",)
        here = set(facts.c.keys())  # fields later revisions add (e.g. ``mode``, 0005) are not columns yet
        op.bulk_insert(facts, [{k: v for k, v in zip(cols, r.as_tuple() + (r.audit_late,)) if k in here}
                               for r in rows])
    acc = P.counters_of(rows, consultations)
    if acc:
        op.bulk_insert(counters, [dict(zip(("family", "merchant_id", "period", "dim", "a", "b", "c", "d"), (*k, *v)))
                                  for k, v in acc.items()])
    op.execute("INSERT INTO processed_events (consumer, event_id, event_type, processed_at) "
               "SELECT 'kpi.facts', event_id, event_type, processed_at FROM processed_events "
               "WHERE consumer IN ('kpi.orders', 'kpi.sla', 'kpi.routing')")


def downgrade() -> None:
    raise NotImplementedError("the projection cannot go back to revision 0003; rebuild it with 'kpi replay'")
