"""order mode, merchants' catalogue; counters recomputed with the new rules

- ``order_facts.mode``: the order's fulfilment mode (service-express membership, and
  self-completion: orders the platform serves are never the merchant's own). Facts
  recorded before this revision have none until ``kpi replay`` reads it from the events.
- ``catalogue_skus``: each merchant's catalogue (``catalogue.sku_upserted``), the source
  of its category for the composite index.
- ``kpi_counters`` recomputed from the facts by this release's projection (the
  self-completion rule changed; the live consumer applies differences of contributions,
  which must be those of the counters it adds to).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

from shared.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = 200
CHUNK = 5000


def upgrade() -> None:
    from kpi.domain import projection as P

    with op.batch_alter_table("order_facts") as b:
        b.add_column(sa.Column("mode", sa.String(ID), nullable=True))
    op.create_table(
        "catalogue_skus",
        sa.Column("merchant_id", sa.String(ID), nullable=False),
        sa.Column("sku", sa.String(ID), nullable=False),
        sa.Column("category", sa.String(ID), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_id", "sku", name="pk_catalogue_skus"),
    )

    bind = op.get_bind()
    def cols(names):
        return [sa.column(n, UTCDateTime()) if n.endswith("_at") or n == "at" else sa.column(n) for n in names]

    facts = sa.table("order_facts", *cols(P.FIELDS))
    cf = sa.table("consultation_facts", *cols(P.CONSULT_FIELDS))
    tally = P.Tally()
    last = None  # read in pages by primary key (a server-side cursor would outlive the migration's statements)
    while True:
        q = sa.select(facts).order_by(facts.c.order_id).limit(CHUNK)
        part = bind.execute(q if last is None else q.where(facts.c.order_id > last)).all()
        for r in part:
            tally.add(P.contributions(P.OrderFact.from_tuple(tuple(r))))
        if len(part) < CHUNK:
            break
        last = part[-1][0]
    for r in bind.execute(sa.select(cf)).all():
        tally.add(P.consultation_contributions(tuple(r)))
    counters = sa.table("kpi_counters", *[sa.column(c) for c in ("family", "merchant_id", "period", "dim",
                                                                 "a", "b", "c", "d")])
    op.execute(counters.delete())
    rows = [dict(zip(("family", "merchant_id", "period", "dim", "a", "b", "c", "d"), (*k, *v)))
            for k, v in tally.counters().items()]
    for i in range(0, len(rows), CHUNK):
        op.bulk_insert(counters, rows[i:i + CHUNK])


def downgrade() -> None:
    raise NotImplementedError("the projection cannot go back to revision 0004; rebuild it with 'kpi replay'")
