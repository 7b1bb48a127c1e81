"""The columnar rebuild engine (DuckDB) folds and counts exactly what the Python
fold does (``kpi.domain.projection`` via ``kpi.adapters.folder.Folder``), and hands every event
outside the canonical form to the Python engine."""
from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

from kpi_month import month_events

from kpi.adapters import columnar
from kpi.domain import projection as P
from kpi.adapters.folder import Folder
from kpi.adapters.synthetic import Generator
from shared.clock import BEIJING
from shared.events import make_envelope

START = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)


def _python(raws):
    f = Folder()
    for raw in raws:
        f.feed(raw)
    facts = {r.order_id: r.as_tuple() + (r.audit_late,) for r in f.rows.values()}
    return f, facts, P.counters_of(f.rows.values())


def _columnar(tmp_path, raws, name="events.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(raws) + b"\n")
    folded = columnar.fold([path], threads=2)
    if folded.odd:
        return folded, None, None
    columnar.count(folded)
    facts = {r[0]: r for r in columnar.rows(folded, "facts", columnar.FACT_COLUMNS)}
    counters = {tuple(r[:4]): [int(v) for v in r[4:]] for r in columnar.rows(folded, "counters",
                                                                             columnar.COUNTER_COLUMNS)}
    return folded, facts, counters


def _orders_only(raws):
    return [r for r in raws if b'"type":"routing.' not in r[:120]]


def test_same_facts_and_counters_as_the_python_fold_on_synthetic_events(tmp_path):
    raws = _orders_only([raw for _t, _k, raw in Generator(300, 2000, START, seed=5).events()])
    f, facts, counters = _python(raws)
    folded, cfacts, ccounters = _columnar(tmp_path, raws)
    assert (folded.odd, folded.fast, folded.orders) == (0, len(raws), 2000)
    assert cfacts == facts
    assert ccounters == counters


def test_any_order_and_duplicates_give_the_same_result(tmp_path):
    raws = _orders_only([raw for _t, _k, raw in Generator(40, 400, START, seed=6).events()])
    _f, facts, counters = _python(raws)
    rnd = random.Random(2)
    mixed = raws + rnd.sample(raws, 300)
    rnd.shuffle(mixed)
    _folded, cfacts, ccounters = _columnar(tmp_path, mixed)
    assert cfacts == facts and ccounters == counters


def test_on_envelopes_made_by_the_producers_code(tmp_path):
    raws = _orders_only([env.to_bytes() for _t, env in month_events(merchants=50, orders_per_merchant=4)])
    _f, facts, counters = _python(raws)
    folded, cfacts, ccounters = _columnar(tmp_path, raws)
    assert folded.odd == 0
    assert cfacts == facts and ccounters == counters


def _transition(oid, merchant, action, at, created, version=2, to_state="pending_process", role="merchant_main",
                snap_amount="10.50", snap=None, **details):
    snap = {"merchant_id": merchant, "customer_id": "c", "customer_phone": "138", "customer_level": "regular",
            "sales_order_id": "so", "sku": "s-1", "category": "phones", "quantity": 1, "amount_paid": snap_amount,
            "service_type": "return", "problem_type": "quality", "created_at": created, **(snap or {})}
    return make_envelope(type_="service_order.transitioned", key=oid, producer="orders", occurred_at=at,
                         data={"order_id": oid, "number": "N", "version": version, "action": action,
                               "from_state": "pending_audit", "to_state": to_state, "actor_role": role, "actor_id": "u",
                               "occurred_at": at, "order": snap, "details": details}).to_bytes()


def test_offsets_microseconds_unicode_and_tie_breaks(tmp_path):
    created = datetime(2026, 11, 17, 8, tzinfo=BEIJING)  # written with +08:00
    at = datetime(2026, 11, 17, 20, 0, 0, 1, tzinfo=BEIJING)
    oid, other = str(uuid.uuid4()), str(uuid.uuid4())
    raws = [
        _transition(oid, "商家-1", "audit.approve_return", at, created),
        _transition(oid, "商家-1", "audit.abandon", at, created),  # same time: the smaller action wins
        _transition(oid, "商家-1", "process.refund", at + timedelta(hours=13), created, version=3, amount=12,
                    to_state="completed", role="platform_operator", completed_by="platform"),
        _transition(oid, "商家-1", "rate", at + timedelta(days=1), created, version=4, stars="5", recommend=7),
        # same version, two snapshots: the smaller by the values' str wins (amount "100.00" < "99.00" as text)
        _transition(other, "m-2", "audit.approve_return", at, created, snap_amount="99.00"),
        _transition(other, "m-2", "audit.approve_return", at, created, snap_amount="100.00"),
        _transition(other, "m-2", "rate", at + timedelta(hours=1), created, version=3, stars=4.5, recommend=True),
        _transition(other, "m-2", "system.advance_compensation", at + timedelta(days=7), created, version=4,
                    to_state="refunded_by_system", role="system", amount=19),
    ]
    f, facts, counters = _python(raws)
    assert f.invalid == 0
    folded, cfacts, ccounters = _columnar(tmp_path, raws)
    assert folded.odd == 0
    assert cfacts == facts and ccounters == counters
    row = cfacts[oid]
    assert row[2] == "商家-1" and row[P.FIELDS.index("audit_action")] == "audit.abandon"
    assert row[P.FIELDS.index("audited_at")] == datetime(2026, 11, 17, 12, 0, 0, 1, tzinfo=timezone.utc)
    assert (row[P.FIELDS.index("refund_cents")], row[P.FIELDS.index("refund_by")]) == (1200, "platform")
    assert (row[P.FIELDS.index("stars")], row[P.FIELDS.index("recommend")]) == (5, 7)
    assert cfacts[other][P.FIELDS.index("amount_cents")] == 10000
    assert cfacts[other][P.FIELDS.index("stars")] is None and cfacts[other][P.FIELDS.index("recommend_at")] is None
    assert cfacts[other][P.FIELDS.index("advance_cents")] == 1900


def test_events_outside_the_canonical_form_are_reported(tmp_path):
    """Each of these is left to the Python engine (the contracts decide)."""
    created = datetime(2026, 11, 17, 8, tzinfo=timezone.utc)
    at = created + timedelta(hours=1)
    good = _transition(str(uuid.uuid4()), "m-1", "audit.approve_return", at, created)
    env = json.loads(good)
    odd = {
        "escaped": _transition(str(uuid.uuid4()), 'm-"q"', "audit.approve_return", at, created),
        "not json": b"{not json",
        "naive time": json.dumps({**env, "data": {**env["data"], "occurred_at": "2026-11-17T09:00:00"}}).encode(),
        "number for a string": json.dumps({**env, "data": {**env["data"], "order": {
            **env["data"]["order"], "merchant_id": 7}}}).encode(),
        "version as text": json.dumps({**env, "data": {**env["data"], "version": "2"}}).encode(),
        "schema 2": json.dumps({**env, "schema_version": 2}).encode(),
        "amount not a number": _transition(str(uuid.uuid4()), "m-1", "process.refund", at, created, amount="abc"),
        "amount of 3 decimals": _transition(str(uuid.uuid4()), "m-1", "process.refund", at, created, amount="1.005"),
        "snapshot amount of 3 decimals": json.dumps({**env, "data": {**env["data"], "order": {
            **env["data"]["order"], "amount_paid": "1.005"}}}).encode(),
        "unknown service type": json.dumps({**env, "data": {**env["data"], "order": {
            **env["data"]["order"], "service_type": "swap"}}}).encode(),
    }
    for name, raw in odd.items():
        folded, _facts, _counters = _columnar(tmp_path, [good, raw], name=f"{len(name)}.jsonl")
        assert folded.odd == 1, name
    folded, *_ = _columnar(tmp_path, [good], name="good.jsonl")
    assert (folded.odd, folded.fast, folded.orders) == (0, 1, 1)


async def test_rebuild_falls_back_to_the_python_engine_on_an_odd_event(tmp_path, database_url):
    import asyncio

    from sqlalchemy import text

    from kpi.app import MIGRATIONS
    from kpi.handlers.replay import dir_sources, rebuild
    from shared.db import create_engine
    from shared.migrations import upgrade

    raws = [raw for _t, _k, raw in Generator(10, 50, START, seed=3).events()]
    orders = [r for r in raws if b'"type":"routing.' not in r[:120]]
    routing = [r for r in raws if b'"type":"routing.' in r[:120]]
    (tmp_path / "orders.events.0.jsonl").write_bytes(b"\n".join(orders) + b"\n")
    (tmp_path / "routing.events.0.jsonl").write_bytes(b"\n".join(routing) + b"\n")
    url = await database_url("kpi_columnar")
    await upgrade(MIGRATIONS, url)
    clean = await asyncio.to_thread(rebuild, url, dir_sources(tmp_path), 2, lambda *_: None)
    assert (clean["engine"], clean["orders"], clean["invalid"]) == ("columnar", 50, 0)
    assert clean["events"] == len(raws)
    engine = create_engine(url)
    async with engine.connect() as c:
        tables = {t: sorted(tuple(r) for r in (await c.execute(text(f"SELECT * FROM {t}"))).all())
                  for t in ("order_facts", "kpi_counters", "consultation_facts")}

    with open(tmp_path / "orders.events.0.jsonl", "ab") as f:
        f.write(b"{not json\n")
    said = []
    odd = await asyncio.to_thread(rebuild, url, dir_sources(tmp_path), 2, said.append)
    assert (odd["engine"], odd["orders"], odd["invalid"], odd["events"]) == ("python", 50, 1, len(raws) + 1)
    assert odd["counters"] == clean["counters"] and "not in the canonical form" in said[0]
    async with engine.connect() as c:  # the same projection
        assert tables == {t: sorted(tuple(r) for r in (await c.execute(text(f"SELECT * FROM {t}"))).all())
                          for t in tables}
    assert len(tables["kpi_counters"]) == clean["counters"]
    await engine.dispose()


def _penalty(oid, fired_at, version=3):
    return make_envelope(type_="sla.deadline_fired", key=oid, producer="sla-timer", occurred_at=fired_at, data={
        "timer_id": str(uuid.uuid4()), "order_id": oid, "rule": "processing_penalty", "action": "penalty",
        "order_version": version, "order_state": "pending_process", "due_at": fired_at, "fired_at": fired_at,
        "details": {"amount_cny": "2000.00"}}).to_bytes()


def test_a_stale_48h_penalty_the_facts_contradict_is_never_charged(tmp_path):
    """Processed 47.5 h after receipt, the timer fired at 48 h before it saw the decision:
    no penalty, in the live fold, the ledger and the columnar rebuild, whatever the order of
    arrival; processed after 48 h: charged."""
    from kpi.domain.penalties import penalty_lines

    created = datetime(2026, 11, 17, 8, tzinfo=BEIJING)
    received = created + timedelta(hours=2)
    stale, due = str(uuid.uuid4()), str(uuid.uuid4())
    raws = [
        _transition(stale, "m-1", "register_receipt", received, created),
        _penalty(stale, received + timedelta(hours=48, minutes=1)),
        _transition(stale, "m-1", "process.refund", received + timedelta(hours=47, minutes=30), created, version=4,
                    amount=10),
        _transition(due, "m-1", "register_receipt", received, created),
        _penalty(due, received + timedelta(hours=48)),
        _transition(due, "m-1", "process.refund", received + timedelta(hours=50), created, version=4, amount=10),
    ]
    for arrival in (raws, list(reversed(raws))):
        f, facts, counters = _python(arrival)
        pen = {k: v for k, v in counters.items() if k[0] == "pen" and k[3] == "unprocessed_48h"}
        assert [v[0] for v in pen.values()] == [1], pen
        assert [x["order_ids"] for x in penalty_lines(f.rows.values()) if x["kind"] == "unprocessed_48h"] == [[due]]
        folded, cfacts, ccounters = _columnar(tmp_path, arrival)
        assert cfacts == facts and ccounters == counters


def _created(oid, merchant, created, **snap):
    data = {"merchant_id": merchant, "customer_id": "c", "customer_phone": "138", "customer_level": "regular",
            "sales_order_id": "so", "sku": "s-1", "category": "phones", "quantity": 1, "amount_paid": "10.50",
            "service_type": "return", "problem_type": "quality", "created_at": created, "order_id": oid,
            "number": "N", "version": 1, "state": "pending_claim", "delivered_at": created, **snap}
    return make_envelope(type_="service_order.created", key=oid, producer="orders", occurred_at=created,
                         data=data).to_bytes()


def test_modes_and_who_carried_out_the_outcome(tmp_path):
    """The mode (service-express membership, platform-served orders) and the self-completion
    rule: both engines agree, whatever the arrival order, on hand-checked values."""
    created = datetime(2026, 11, 17, 8, tzinfo=timezone.utc)
    h = timedelta(hours=1)
    ids = {k: str(uuid.uuid4()) for k in ("plat", "behalf", "timeout", "confirmed", "abandoned", "rejected", "old",
                                          "contact")}
    plat, behalf = {"mode": "platform"}, {"mode": "platform", "on_behalf": True}
    fm, cc = {"mode": "full_manufacturer"}, {"mode": "customer_contact"}
    no_mode = json.loads(_created(ids["old"], "m-old", created, **fm))
    del no_mode["data"]["mode"]  # an older producer's layout: the contracts' default mode
    no_mode_t = json.loads(_transition(ids["old"], "m-old", "audit.reject", created + h, created, to_state="rejected",
                                       snap=fm))
    del no_mode_t["data"]["order"]["mode"]
    raws = [
        _created(ids["plat"], "m-plat", created, service_type="exchange", **plat),
        _transition(ids["plat"], "m-plat", "process.exchange", created + h, created, role="platform_operator",
                    snap={**plat, "service_type": "exchange"}),
        _transition(ids["plat"], "m-plat", "exchange.shipped", created + 5 * h, created, version=3,
                    role="platform_operator", snap={**plat, "service_type": "exchange"}),
        _created(ids["behalf"], "m-fm", created, **behalf),
        _transition(ids["behalf"], "m-fm", "process.refund", created + h, created, snap=behalf, amount="10.50",
                    completed_by="merchant"),
        _created(ids["timeout"], "m-fm", created, **fm),
        _transition(ids["timeout"], "m-fm", "audit.approve_return", created + h, created, snap=fm),
        _transition(ids["timeout"], "m-fm", "system.auto_close", created + 720 * h, created, version=3,
                    to_state="closed", role="system", snap=fm),
        _created(ids["confirmed"], "m-fm", created, **fm),
        _transition(ids["confirmed"], "m-fm", "process.return_original", created + 3 * h, created, snap=fm,
                    to_state="provisionally_completed"),
        _transition(ids["confirmed"], "m-fm", "system.auto_confirm", created + 171 * h, created, version=3,
                    to_state="completed", role="system", snap=fm),
        _transition(ids["abandoned"], "m-pop", "abandon", created + 2 * h, created, to_state="abandoned",
                    role="customer"),
        _transition(ids["rejected"], "m-pop", "audit.reject", created + 2 * h, created, to_state="rejected"),
        json.dumps(no_mode).encode(),
        json.dumps(no_mode_t, separators=(",", ":")).encode(),  # the canonical layout, without the mode
        _created(ids["contact"], "m-cc", created + 200 * h, **cc),
    ]
    f, facts, counters = _python(raws)
    assert f.invalid == 0
    folded, cfacts, ccounters = _columnar(tmp_path, raws)
    assert folded.odd == 0 and cfacts == facts and ccounters == counters
    rnd = random.Random(5)
    for _ in range(3):
        mixed = raws + rnd.sample(raws, 5)
        rnd.shuffle(mixed)
        _f, mfacts, mcounters = _python(mixed)
        _folded, cf, cc_ = _columnar(tmp_path, mixed)
        assert mfacts == facts == cf and mcounters == counters == cc_
    mode = P.FIELDS.index("mode")
    assert {k: facts[v][mode] for k, v in ids.items()} == {
        "plat": "platform", "behalf": "platform", "timeout": "full_manufacturer", "confirmed": "full_manufacturer",
        "abandoned": "pop_self_service", "rejected": "pop_self_service", "old": "pop_self_service",
        "contact": "customer_contact"}
    ix: dict = {}  # (merchant, path) → (completed, by itself), summed over the days
    for k, v in counters.items():
        if k[0] == "ix":
            done, own = ix.get((k[1], k[3]), (0, 0))
            ix[(k[1], k[3])] = (done + v[1], own + v[3])
    assert ix == {("m-plat", "exchange"): (1, 0), ("m-fm", "refund_before_shipment"): (3, 1),
                  ("m-pop", "refund_before_shipment"): (2, 1), ("m-old", "refund_before_shipment"): (1, 1)}
    # service-express membership: orders the manufacturer serves itself in a manufacturer mode, by creation week
    assert {k: v[0] for k, v in counters.items() if k[0] == "sx"} == {
        ("sx", "m-fm", "2026-11-16", ""): 2, ("sx", "m-cc", "2026-11-23", ""): 1}
    # a mode that is not a plain JSON string is left to the contracts (which refuse a number)
    odd = json.loads(raws[0])
    odd["data"]["mode"] = 7
    folded, *_ = _columnar(tmp_path, [raws[1], json.dumps(odd).encode()], name="odd-mode.jsonl")
    assert folded.odd == 1
    assert _python([json.dumps(odd).encode()])[0].invalid == 1
