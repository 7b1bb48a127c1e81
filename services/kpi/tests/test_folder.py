"""The rebuild's per-event engine (``kpi.adapters.folder.Folder``): every event through the
shared codec, folded by the projection; order-insensitive and idempotent. The synthetic
generator (benchmark data) writes exactly what the producers publish."""
from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timezone

from kpi.adapters.folder import Folder
from kpi.adapters.synthetic import Generator
from kpi.domain import projection as P
from shared.clock import BEIJING
from shared.events import decode, make_envelope

START = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)


def _synthetic(orders=2000, merchants=300, **kw):
    return [raw for _t, _k, raw in Generator(merchants, orders, START, seed=5, **kw).events()]


def _facts(f: Folder):
    return {k: r.as_tuple() for k, r in f.rows.items()}, dict(f.consultations)


def test_synthetic_events_fold_every_milestone():
    raws = _synthetic()
    f = Folder()
    for raw in raws:
        f.feed(raw)
    assert (f.slow, f.invalid, f.ignored) == (len(raws), 0, 0)
    assert len(f.rows) == 2000
    # the generated lifecycles reach every milestone the projection reads
    for name in ("audited_at", "received_at", "processed_at", "exchange_created_at", "exchange_shipped_at",
                 "shipped_back_at", "rated_at", "recommend_at", "arbitration_at", "refund_at", "closed_at",
                 "advance_at", "penalty_at"):
        assert any(getattr(r, name) is not None for r in f.rows.values()), name
    assert {r.refund_by for r in f.rows.values()} >= {"merchant", "platform", "system"}


def _transition(oid, merchant, action, at, created, version=2, **details):
    snap = {"merchant_id": merchant, "customer_id": "c", "customer_phone": "138", "customer_level": "regular",
            "sales_order_id": "so", "sku": "s-1", "category": "phones", "quantity": 1, "amount_paid": "10.50",
            "service_type": "return", "problem_type": "quality", "created_at": created}
    return make_envelope(type_="service_order.transitioned", key=oid, producer="orders", occurred_at=at,
                         data={"order_id": oid, "number": "N", "version": version, "action": action,
                               "from_state": "pending_audit", "to_state": "awaiting_return_shipment",
                               "actor_role": "merchant_main", "actor_id": "u", "occurred_at": at, "order": snap,
                               "details": details})


def test_offsets_escapes_invalid_and_unknown_events():
    created = datetime(2026, 11, 17, 8, tzinfo=BEIJING)  # written with +08:00
    oid = str(uuid.uuid4())
    beijing = _transition(oid, "m-1", "audit.approve_return", datetime(2026, 11, 17, 20, 0, 0, 1, tzinfo=BEIJING),
                          created)
    assert b"+08:00" in beijing.to_bytes()
    escaped = _transition(str(uuid.uuid4()), 'm-"quoted"', "rate", datetime(2026, 11, 18, tzinfo=timezone.utc),
                          created, stars=5, recommend=9)
    unicode = _transition(str(uuid.uuid4()), "商家-1", "process.refund", datetime(2026, 11, 18, tzinfo=timezone.utc),
                          created, amount="10.50")
    naive = json.loads(beijing.to_bytes())
    naive["id"], naive["data"]["occurred_at"] = str(uuid.uuid4()), "2026-11-17T20:00:00"
    beyond = json.loads(beijing.to_bytes())  # past the last UTC date: the live consumer parks it too
    beyond["id"], beyond["data"]["occurred_at"] = str(uuid.uuid4()), "9999-12-31T23:59:59-12:00"
    unknown = make_envelope(type_="exchange_order.created", key=oid, producer="orders", occurred_at=created,
                            data={"exchange_order_id": "x", "order_id": oid, "number": "N", "merchant_id": "m-1",
                                  "customer_id": "c", "sku": "s", "quantity": 1, "unit_price": "1.00",
                                  "auto_approved": True, "source": "process.exchange", "created_at": created})
    raws = [beijing.to_bytes(), escaped.to_bytes(), unicode.to_bytes(), json.dumps(naive).encode(), b"{not json",
            json.dumps(beyond).encode(), unknown.to_bytes()]
    f = Folder()
    for raw in raws:
        f.feed(raw)
    assert (f.slow, f.invalid, f.ignored) == (3, 3, 1)
    row = f.rows[oid]
    assert row.audited_at == datetime(2026, 11, 17, 12, 0, 0, 1, tzinfo=timezone.utc)
    assert row.created_at == datetime(2026, 11, 17, 0, tzinfo=timezone.utc) and row.amount_cents == 1050
    assert {r.merchant_id for r in f.rows.values()} == {"m-1", 'm-"quoted"', "商家-1"}
    # a decoded envelope folds the same as its bytes
    g = Folder()
    for raw in raws[:3]:
        g.feed_envelope(decode(raw))
    assert _facts(g) == _facts(f)

def test_fold_is_order_insensitive_and_idempotent():
    raws = _synthetic(orders=400, merchants=40, catalogue=True, catalogue_extra=3)
    base = Folder()
    for raw in raws:
        base.feed(raw)
    rnd = random.Random(1)
    for _ in range(3):
        mixed = raws + rnd.sample(raws, 200)
        rnd.shuffle(mixed)
        f = Folder()
        for raw in mixed:
            f.feed(raw)
        assert _facts(f) == _facts(base)
        assert f.catalogue == base.catalogue and len(base.catalogue) == 4 * 43  # the newer entry wins
        assert P.counters_of(f.rows.values(), f.consultations.values(), f.catalogue.values()) == P.counters_of(
            base.rows.values(), base.consultations.values(), base.catalogue.values())


def test_synthetic_events_are_what_the_producers_publish():
    raws = _synthetic(orders=500, merchants=50, catalogue=True)
    types = set()
    for raw in raws:
        env = decode(raw)  # valid for the registered contract
        types.add(env.type)
        # byte for byte what the codec writes for the same event
        again = make_envelope(type_=env.type, key=env.key, producer=env.producer, occurred_at=env.occurred_at,
                              data=env.data, event_id=env.id, correlation_id=env.correlation_id)
        assert again.to_bytes() == raw
    assert types == {"service_order.created", "service_order.transitioned", "sla.deadline_fired",
                     "routing.decided", "routing.transferred", "routing.billable_consultation",
                     "catalogue.sku_upserted"}


def test_the_difference_of_contributions_is_new_minus_old():
    """The live consumer adds only the units that differ (``add_difference``): the same
    counters as subtracting all of the old contributions and adding all of the new."""
    raws = _synthetic(orders=300, merchants=30)
    f = Folder()
    checked = 0
    for raw in raws:
        env = decode(raw)
        oid = getattr(env.data, "order_id", None)
        if env.type not in P.ORDER_TYPES or oid is None:
            continue
        before = f.rows[oid].copy() if oid in f.rows else P.OrderFact(oid)
        f.feed(raw)
        after = f.rows[oid]
        old, new = P.contributions(before), P.contributions(after)
        want: dict = {}
        P.add_contributions(want, old, -1)
        P.add_contributions(want, new, 1)
        got: dict = {}
        P.add_difference(got, old, new)
        assert {k: v for k, v in got.items() if any(v)} == {k: v for k, v in want.items() if any(v)}
        checked += old != new
    assert checked > 1000
    # repeated units (a multiset) are handled too
    got = {}
    P.add_difference(got, ([("x", "m", "p", "d", 0)] * 2, []),
                     ([("x", "m", "p", "d", 0)], [(("x", "m", "p", "d", 2), 5)]))
    assert got == {("x", "m", "p", "d"): [-1, 0, 5, 0]}


def test_beijing_period_keys_of_utc_times():
    from datetime import timedelta

    from shared.clock import BEIJING

    t = datetime(2026, 10, 25, 0, 0, tzinfo=timezone.utc)
    for h in range(0, 24 * 16, 1):
        at = t + timedelta(hours=h, minutes=59, seconds=59, microseconds=999999) if h % 2 else t + timedelta(hours=h)
        bj = at.astimezone(BEIJING).date()
        monday = bj - timedelta(days=bj.weekday())
        assert (P.day_key(at), P.week_key(at), P.month_key(at)) == (
            bj.isoformat(), monday.isoformat(), bj.isoformat()[:7]), at
        # any other representation of the same instant gives the same keys
        assert P.week_key(at.astimezone(BEIJING).astimezone(timezone.utc)) == monday.isoformat()
    assert P.day_key(datetime(2026, 10, 31, 15, 59, 59, 999999, tzinfo=timezone.utc)) == "2026-10-31"
    assert P.day_key(datetime(2026, 10, 31, 16, tzinfo=timezone.utc)) == "2026-11-01"
