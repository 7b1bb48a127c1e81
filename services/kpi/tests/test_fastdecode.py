"""The rebuild's fast decoder folds exactly what the validated (pydantic) path
folds; the synthetic generator writes exactly what the producers publish."""
from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timezone

from kpi_month import month_events

from kpi import projection as P
from kpi.fastdecode import Folder
from kpi.synthetic import Generator
from shared.clock import BEIJING
from shared.events import Envelope, make_envelope, registry

START = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)


def _synthetic(orders=2000, merchants=300, **kw):
    return [raw for _t, _k, raw in Generator(merchants, orders, START, seed=5, **kw).events()]


def _validated(raws) -> Folder:
    f = Folder()
    for raw in raws:
        f.feed_envelope(Envelope.from_bytes(raw))
    return f


def _facts(f: Folder):
    return {k: r.as_tuple() for k, r in f.rows.items()}, dict(f.consultations)


def test_fast_path_equals_validated_path_on_synthetic_events():
    raws = _synthetic()
    fast = Folder()
    for raw in raws:
        fast.feed(raw)
    routing = sum(1 for r in raws if b'"type":"routing.' in r[:120])
    assert (fast.fast, fast.slow, fast.invalid) == (len(raws) - routing, routing, 0)
    slow = _validated(raws)
    assert slow.invalid == 0
    assert _facts(fast) == _facts(slow)
    assert len(fast.rows) == 2000
    # the generated lifecycles reach every milestone the projection reads
    for f in ("audited_at", "received_at", "processed_at", "exchange_created_at", "exchange_shipped_at",
              "shipped_back_at", "rated_at", "recommend_at", "arbitration_at", "refund_at", "closed_at",
              "advance_at", "penalty_at"):
        assert any(getattr(r, f) is not None for r in fast.rows.values()), f
    assert {r.refund_by for r in fast.rows.values()} >= {"merchant", "platform", "system"}


def test_fast_path_on_envelopes_made_by_the_producers_code():
    raws = [env.to_bytes() for _t, env in month_events(merchants=50, orders_per_merchant=4)]
    fast = Folder()
    for raw in raws:
        fast.feed(raw)
    routing = sum(1 for r in raws if b'"type":"routing.' in r[:120])
    assert fast.fast == len(raws) - routing and fast.invalid == 0
    assert _facts(fast) == _facts(_validated(raws))


def _transition(oid, merchant, action, at, created, version=2, **details):
    snap = {"merchant_id": merchant, "customer_id": "c", "customer_phone": "138", "customer_level": "regular",
            "sales_order_id": "so", "sku": "s-1", "category": "phones", "quantity": 1, "amount_paid": "10.50",
            "service_type": "return", "problem_type": "quality", "created_at": created}
    return make_envelope(type_="service_order.transitioned", key=oid, producer="orders", occurred_at=at,
                         data={"order_id": oid, "number": "N", "version": version, "action": action,
                               "from_state": "a", "to_state": "b", "actor_role": "merchant_main", "actor_id": "u",
                               "occurred_at": at, "order": snap, "details": details})


def test_fallbacks_offsets_escapes_invalid_and_unknown_events():
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
    unknown = make_envelope(type_="exchange_order.created", key=oid, producer="orders", occurred_at=created,
                            data={"exchange_order_id": "x", "order_id": oid, "number": "N", "merchant_id": "m-1",
                                  "customer_id": "c", "sku": "s", "quantity": 1, "unit_price": "1.00",
                                  "auto_approved": True, "source": "process.exchange", "created_at": created})
    raws = [beijing.to_bytes(), escaped.to_bytes(), unicode.to_bytes(), json.dumps(naive).encode(), b"{not json",
            unknown.to_bytes()]
    f = Folder()
    for raw in raws:
        f.feed(raw)
    assert (f.fast, f.slow, f.invalid, f.ignored) == (2, 1, 2, 1)  # the quoted merchant id takes the full path
    row = f.rows[oid]
    assert row.audited_at == datetime(2026, 11, 17, 12, 0, 0, 1, tzinfo=timezone.utc)
    assert row.created_at == datetime(2026, 11, 17, 0, tzinfo=timezone.utc) and row.amount_cents == 1050
    assert {r.merchant_id for r in f.rows.values()} == {"m-1", 'm-"quoted"', "商家-1"}
    assert _facts(f) == _facts(_validated([r for r in raws if r not in (b"{not json", raws[3])]))


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
        env = Envelope.from_bytes(raw)
        model = registry.parse_data(env)  # valid for the registered contract
        types.add(env.type)
        # byte for byte the layout of make_envelope(...).to_bytes()
        again = make_envelope(type_=env.type, key=env.key, producer=env.producer, occurred_at=env.occurred_at,
                              data=model, event_id=env.id)
        assert again.to_bytes() == raw
    assert types == {"service_order.created", "service_order.transitioned", "sla.deadline_fired",
                     "routing.decided", "routing.transferred", "routing.billable_consultation",
                     "catalogue.sku_upserted"}


def _fold_live(raws) -> tuple[dict, int, int]:
    """Fold with the live consumer's decoder: (facts, decoded, not decoded)."""
    from kpi.fastdecode import decode_live

    rows, decoded, other = {}, 0, 0
    for raw in raws:
        ev = decode_live(raw)
        if ev is None:
            other += 1
            continue
        decoded += 1
        env = Envelope.from_bytes(raw)
        assert (ev.id, ev.type) == (str(env.id), env.type)
        if ev.order_id is None:  # nothing to fold: an SLA timer other than the penalty
            assert env.type == "sla.deadline_fired" and env.data["action"] != "penalty"
            continue
        assert ev.order_id == env.data["order_id"]
        row = rows.get(ev.order_id)
        if row is None:
            row = rows[ev.order_id] = P.OrderFact(ev.order_id)
        ev.fold(row)
    return {k: r.as_tuple() for k, r in rows.items()}, decoded, other


def test_live_decoder_folds_what_the_validated_path_folds():
    for raws in (_synthetic(), [env.to_bytes() for _t, env in month_events(merchants=50, orders_per_merchant=4)]):
        routing = sum(1 for r in raws if b'"type":"routing.' in r[:120])
        facts, decoded, other = _fold_live(raws)
        assert (decoded, other) == (len(raws) - routing, routing)  # routing events: the validated path
        assert facts == _facts(_validated(raws))[0]


def test_live_decoder_leaves_anything_unusual_to_the_validated_path():
    from kpi.fastdecode import decode_live

    created = datetime(2026, 11, 17, 8, tzinfo=BEIJING)
    at = datetime(2026, 11, 18, tzinfo=timezone.utc)
    good = _transition(str(uuid.uuid4()), "m-1", "audit.approve_return", at, created).to_bytes()
    rated = _transition(str(uuid.uuid4()), "m-1", "rate", at, created, stars=5, recommend=9).to_bytes()
    assert decode_live(good) is not None and decode_live(rated) is not None
    naive = json.loads(good)
    naive["data"]["occurred_at"] = "2026-11-18T00:00:00"
    unusual = [
        _transition(str(uuid.uuid4()), 'm-"quoted"', "rate", at, created, stars=5).to_bytes(),  # escaped
        json.dumps(naive).encode(),  # no time zone (the contracts reject it)
        json.dumps(json.loads(good)).encode(),  # another layout (spaces)
        good[:-1],  # truncated
        good[:-4] + b"x}}",  # broken details
        good.replace(b'"details":{}', b'"details":[]'),  # details not an object
        rated.replace(b'"stars":5', b'"stars":5,'),  # broken details of an action the fold reads
        good.replace(b'"version":2', b'"version":0'),  # versions start at 1
    ]
    for raw in unusual:
        assert decode_live(raw) is None, raw


def test_the_difference_of_contributions_is_new_minus_old():
    """The live consumer adds only the units that differ (``add_difference``): the same
    counters as subtracting all of the old contributions and adding all of the new."""
    raws = _synthetic(orders=300, merchants=30)
    f = Folder()
    checked = 0
    for raw in raws:
        env = Envelope.from_bytes(raw)
        oid = env.data.get("order_id")
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
    P.add_difference(got, ([("x", "m", "p", "d", 0)] * 2, []), ([("x", "m", "p", "d", 0)], [(("x", "m", "p", "d", 2), 5)]))
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


def test_fired_deadlines_carrying_their_cancelling_facts_stay_on_the_fast_path():
    """Timers carry ``cancelled_by`` after ``details``: still decoded by the fast path, with
    the same penalty as the validated path."""
    import uuid
    from datetime import datetime, timezone

    from kpi.fastdecode import decode_live
    from shared.events import make_envelope

    at = datetime(2026, 11, 10, 3, tzinfo=timezone.utc)
    for cancelled_by in (["action:process.refund", "state:closed"], []):
        raw = make_envelope(type_="sla.deadline_fired", key="o-1", producer="sla-timer", occurred_at=at, data={
            "timer_id": str(uuid.uuid4()), "order_id": "o-1", "rule": "processing_penalty", "action": "penalty",
            "order_version": 3, "order_state": "awaiting_processing", "due_at": at, "fired_at": at,
            "details": {"amount_cny": "1500.00"}, "cancelled_by": cancelled_by}).to_bytes()
        ev = decode_live(raw)
        assert ev is not None and ev.order_id == "o-1"
        assert ev._args[1] == {"amount_cny": "1500.00"}
