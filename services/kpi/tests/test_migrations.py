"""Migrations: one head; revision 0004 carries the facts of 0003 over into the
wide fact rows and their counters, on SQLite and PostgreSQL; the migrated schema
is the one the models describe."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from kpi_gen import bj

from kpi.domain import projection as P
from kpi.app import MIGRATIONS
from kpi.models import Base
from shared.db import UTCDateTime, create_engine
from shared.migrations import alembic_config, upgrade

H = timedelta(hours=1)


def test_single_head():
    script = ScriptDirectory.from_config(alembic_config(MIGRATIONS, "sqlite://"))
    assert script.get_heads() == ["0007"]
    assert [r.revision for r in script.walk_revisions()] == ["0007", "0006", "0005", "0004", "0003", "0002", "0001"]


async def test_0003_facts_are_carried_over_and_counted(database_url):
    url = await database_url("kpi_mig")
    await upgrade(MIGRATIONS, url, "0003")
    c = bj(2026, 11, 17, 8)
    of = sa.table("order_facts", *[sa.column(n) for n in ("order_id", "merchant_id", "category", "sku", "service_type",
                                                          "problem_type", "on_behalf")],
                  sa.column("amount_paid", sa.Numeric(12, 2)), sa.column("created_at", UTCDateTime()))
    om = sa.table("order_milestones", sa.column("order_id"), sa.column("kind"), sa.column("at", UTCDateTime()),
                  sa.column("value"), sa.column("amount", sa.Numeric(12, 2)))
    cf = sa.table("consultation_facts", sa.column("fact_id"), sa.column("kind"), sa.column("manufacturer_id"),
                  sa.column("at", UTCDateTime()), sa.column("target"), sa.column("reason"), sa.column("package"))
    pe = sa.table("processed_events", sa.column("consumer"), sa.column("event_id"), sa.column("event_type"),
                  sa.column("processed_at", UTCDateTime()))
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(sa.insert(of), [
            dict(order_id="o1", merchant_id="m1", category="phones", sku="s1", service_type="return",
                 problem_type="quality", amount_paid=Decimal("199.00"), on_behalf=False, created_at=c),
            dict(order_id="o2", merchant_id="m2", category="apparel", sku="s2", service_type="compensation",
                 problem_type="other", amount_paid=Decimal("150.00"), on_behalf=True, created_at=c)])
        await conn.execute(sa.insert(om), [
            dict(order_id="o1", kind="audited", at=c + 13 * H, value=None, amount=None),
            dict(order_id="o1", kind="received", at=c + 20 * H, value=None, amount=None),
            dict(order_id="o1", kind="processed", at=c + 30 * H, value=None, amount=Decimal("199.00")),
            dict(order_id="o1", kind="rated", at=c + 40 * H, value=5, amount=None),
            dict(order_id="o1", kind="recommended", at=c + 40 * H, value=9, amount=None),
            dict(order_id="o2", kind="penalty_48h", at=c + 68 * H, value=None, amount=Decimal("2000.00")),
            dict(order_id="o2", kind="advance_compensation", at=c + 168 * H, value=None, amount=Decimal("150.00")),
            dict(order_id="o3", kind="audited", at=c, value=None, amount=None)])  # its creation never came
        await conn.execute(sa.insert(cf), [dict(fact_id="decided:d1", kind="decided", manufacturer_id="m2",
                                                at=c, target="manufacturer", reason="enrolled", package=None)])
        await conn.execute(sa.insert(pe), [dict(consumer="kpi.orders", event_id="e1", event_type="x", processed_at=c),
                                           dict(consumer="kpi.routing", event_id="e2", event_type="y",
                                                processed_at=c)])
    await upgrade(MIGRATIONS, url)

    o1 = P.OrderFact("o1", snap_version=1, merchant_id="m1", category="phones", sku="s1", service_type="return",
                     problem_type="quality", amount_cents=19900, created_at=c, on_behalf=False,
                     audited_at=c + 13 * H, received_at=c + 20 * H, processed_at=c + 30 * H,
                     refund_at=c + 30 * H, refund_cents=19900, refund_by="merchant", rated_at=c + 40 * H, stars=5,
                     recommend_at=c + 40 * H, recommend=9)
    o2 = P.OrderFact("o2", snap_version=1, merchant_id="m2", category="apparel", sku="s2",
                     service_type="compensation", problem_type="other", amount_cents=15000, created_at=c,
                     on_behalf=True, penalty_at=c + 68 * H, penalty_cents=200000, advance_at=c + 168 * H,
                     advance_cents=15000, refund_at=c + 168 * H, refund_cents=15000, refund_by="system")
    consult = ("decided:d1", "decided", "m2", c, "manufacturer", "enrolled", None)
    async with engine.connect() as conn:
        facts = (await conn.execute(sa.select(*[Base.metadata.tables["order_facts"].c[f]
                                                for f in P.FIELDS + ("audit_late",)]))).all()
        counters = {tuple(r[:4]): list(r[4:]) for r in (await conn.execute(sa.text(
            "SELECT family, merchant_id, period, dim, a, b, c, d FROM kpi_counters"))).all()}
        processed = sorted(tuple(r) for r in (await conn.execute(sa.text(
            "SELECT consumer, event_id FROM processed_events"))).all())
        diff = await conn.run_sync(lambda sc: compare_metadata(MigrationContext.configure(sc), Base.metadata))
    await engine.dispose()
    assert sorted(tuple(f) for f in facts) == [o1.as_tuple() + (True,), o2.as_tuple() + (False,)]
    assert counters == P.counters_of([o1, o2], [consult])
    # hand-checked: m1's late audit (13 h) in the week of 2026-11-16, received and processed 10 h later
    assert counters[("sc", "m1", "2026-11-16", "F2")] == [0, 1, 0, 0]
    assert counters[("sc", "m1", "2026-11-16", "F3")] == [1, 1, 0, 0]
    assert counters[("pen", "m2", "2026-11-16", "unprocessed_48h")] == [1, 0, 200000, 0]
    assert counters[("pen", "m2", "2026-11-23", "advance_compensation")] == [1, 0, 15000, 0]
    assert counters[("bill", "m2", "2026-11", "service_order")] == [1, 0, 0, 0]
    assert counters[("cons", "m2", "2026-11-16", "")] == [1, 1, 0, 0]
    assert processed == [("kpi.facts", "e1"), ("kpi.facts", "e2"), ("kpi.orders", "e1"), ("kpi.routing", "e2")]
    assert diff == []


async def test_0005_adds_the_mode_and_recounts_with_this_release_rules(database_url):
    """Facts of revision 0004 (no mode) keep their values; the counters are computed
    again by this release's projection — e.g. a case closed by the ship-back timeout is
    no longer the merchant's own completion — so the live consumer's differences apply
    to counters of the same rules."""
    url = await database_url("kpi_mig5")
    await upgrade(MIGRATIONS, url, "0004")
    c = bj(2026, 11, 17, 8)
    cols = [f for f in P.FIELDS if f != "mode"]
    timeout = P.OrderFact("o1", snap_version=1, merchant_id="m1", category="phones", sku="s1", service_type="return",
                          problem_type="quality", amount_cents=19900, created_at=c, on_behalf=False,
                          audited_at=c + H, closed_at=c + 31 * 24 * H, closed_role="system")
    own = P.OrderFact("o2", snap_version=1, merchant_id="m1", category="phones", sku="s2", service_type="return",
                      problem_type="quality", amount_cents=19900, created_at=c, on_behalf=False,
                      refund_at=c + 5 * H, refund_cents=19900, refund_by="merchant")
    engine = create_engine(url)
    of = sa.table("order_facts", *[sa.column(f, UTCDateTime()) if f.endswith("_at") else sa.column(f) for f in cols])
    kc = sa.table("kpi_counters", *[sa.column(n) for n in ("family", "merchant_id", "period", "dim", "a", "b", "c",
                                                           "d")])
    async with engine.begin() as conn:
        await conn.execute(sa.insert(of), [{f: getattr(r, f) for f in cols} for r in (timeout, own)])
        # what revision 0004's projection counted: the timeout close as self-completed (d = 2)
        await conn.execute(sa.insert(kc), [dict(family="ix", merchant_id="m1", period="2026-11-17",
                                                dim="return_and_refund", a=0, b=1, c=0, d=1)])
    await upgrade(MIGRATIONS, url)
    async with engine.connect() as conn:
        facts = sorted(tuple(r) for r in (await conn.execute(sa.select(*[
            Base.metadata.tables["order_facts"].c[f] for f in P.FIELDS]))).all())
        counters = {tuple(r[:4]): list(r[4:]) for r in (await conn.execute(sa.text(
            "SELECT family, merchant_id, period, dim, a, b, c, d FROM kpi_counters"))).all()}
        tables = await conn.run_sync(lambda sc: sa.inspect(sc).get_table_names())
    await engine.dispose()
    assert facts == [timeout.as_tuple(), own.as_tuple()]  # mode null: unknown until a replay
    assert counters == P.counters_of([timeout, own])
    assert counters[("ix", "m1", "2026-12-18", "refund_before_shipment")] == [0, 1, 2678400, 0]  # not its own
    assert counters[("ix", "m1", "2026-11-17", "refund_before_shipment")] == [0, 1, 18000, 1]
    assert "catalogue_skus" in tables
