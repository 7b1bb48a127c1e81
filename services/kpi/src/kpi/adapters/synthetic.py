"""Synthetic order, SLA and routing events, written directly as envelope bytes.

For benchmarks and load tests: a month of service-order lifecycles for many
merchants, fast enough to make millions of events in seconds. Building them with
``make_envelope`` (which validates each event through the codec) would cost several µs
each; instead each event is one ``%``-format of a template laid out exactly as the shared
codec encodes an envelope (field order, separators, ``Z`` timestamps), with the order's
snapshot rendered once per order. ``tests/test_folder.py`` decodes a sample with the
contracts and checks it byte for byte against the codec's encoding, so these bytes are
what the real producers publish.

Lifecycle mix per order (deterministic for a seed):
  60 % return → approve → ship back → receipt → refund → confirm (5 % of them go
       to arbitration after receipt and the arbitrator refunds; 6 % are refunded by
       the auto-refund timer instead of the merchant);
  14 % exchange → approve → ship back → receipt → exchange → exchange shipped → confirm;
   4 % resend without return (exchange order shipped, no goods back) → confirm;
   4 % repair → approve → ship back → receipt → repair → shipped back → confirm;
   8 % rejected at audit, 4 % abandoned by the customer before audit,
   3 % compensation orders nobody touched: advance compensation after 7 days,
   3 % approved but never shipped back: auto-closed after 30 days.
Half of the completed orders are rated (1–5 stars, recommendation 0–10). Audits
take 1–30 h (some late), processing 1–60 h after receipt; 10 % of received orders
get the 48 h processing penalty from the SLA timer, and every order gets about one
other SLA event (reminders, escalations, breaches) that the KPI service skips.
Each merchant also has 3 consultation routing decisions (some transferred or billed).
Fulfilment modes by merchant (index mod 5): ``full_manufacturer``, ``customer_contact``,
``platform`` (platform operators act), POP self-service for the rest; an order served on
the merchant's behalf (``on_behalf_share``) is in ``platform`` mode.
With ``catalogue=True`` each merchant also publishes 4 SKUs (``catalogue.sku_upserted``;
mostly in its orders' category — for one merchant in four in the next one — and one SKU
re-filed a day later), and ``catalogue_extra`` more merchants publish a catalogue but have no orders.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

ORDER_TOPIC, SLA_TOPIC, ROUTING_TOPIC, CATALOGUE_TOPIC = ("orders.events", "sla.events", "routing.events",
                                                         "catalogue.events")

_ENV = ('{"id":"%s","type":"%s","schema_version":1,"occurred_at":"%s","producer":"%s","key":"%s",'
        '"correlation_id":null,"data":{%s}}')
_TRANS = ('"order_id":"%s","number":"%s","version":%d,"action":"%s","from_state":"%s","to_state":"%s",'
          '"actor_role":"%s","actor_id":"%s","occurred_at":"%s","order":%s,"details":%s')
_CREATED = ('"order_id":"%s","number":"%s","version":1,"state":"pending_claim","merchant_id":"%s",'
            '"customer_id":"%s","customer_phone":"138****%04d","customer_level":"%s","sales_order_id":"so-%s",'
            '"sku":"%s","category":"%s","quantity":1,"amount_paid":"%s","service_type":"%s","problem_type":"%s",'
            '"delivered_at":"%s","created_at":"%s","mode":"%s","on_behalf":%s,"merchant_contact_phone":null,'
            '"return_address":null')
_SNAP = ('{"merchant_id":"%s","customer_id":"%s","customer_phone":"138****%04d","customer_level":"%s",'
         '"sales_order_id":"so-%s","sku":"%s","category":"%s","quantity":1,"amount_paid":"%s","service_type":"%s",'
         '"problem_type":"%s","mode":"%s","created_at":"%s","on_behalf":%s,"merchant_contact_phone":null,'
         '"return_address":null,"order_line_id":"1","handler_id":null}')
_FIRED = ('"timer_id":"%s","order_id":"%s","rule":"%s","action":"%s","order_version":%d,"order_state":"%s",'
          '"due_at":"%s","fired_at":"%s","details":%s')

CATEGORIES = ("phones", "appliances", "computers", "apparel", "beauty", "food_drink", "furniture", "toys")
MODES = ("full_manufacturer", "customer_contact", "platform", "pop_self_service", "pop_self_service")
PROBLEMS = ("quality", "logistics", "not_as_described", "no_reason", "other")
LEVELS = ("regular", "regular", "regular", "gold", "diamond")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_ts_cache: dict[int, str] = {}


def ts(minute: int) -> str:
    """Minutes since the epoch → the ISO form pydantic writes ('…T…Z')."""
    s = _ts_cache.get(minute)
    if s is None:
        s = _ts_cache[minute] = (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return s


def minute_of(at: datetime) -> int:
    return int((at - _EPOCH).total_seconds() // 60)


class Generator:
    """``Generator(merchants, orders, start).events()`` yields (topic, key, bytes).

    ``partition``/``partitions``: generate only the orders n with n mod partitions ==
    partition (and the consultations of merchants likewise), with a random stream
    of their own — so partitions can be generated in parallel and the result does
    not depend on how many processes made it."""

    def __init__(self, merchants: int, orders: int, start: datetime, days: int = 30, seed: int = 7,
                 merchant_prefix: str = "m", skus_per_merchant: int = 20, on_behalf_share: float = 0.1,
                 partition: int = 0, partitions: int = 1, catalogue: bool = False, catalogue_extra: int = 0) -> None:
        self.merchants, self.orders, self.days, self.seed = merchants, orders, days, seed
        self.start = minute_of(start)
        self.prefix = merchant_prefix
        self.skus = skus_per_merchant
        self.on_behalf_share = on_behalf_share
        self.partition, self.partitions = partition, partitions
        self.catalogue, self.catalogue_extra = catalogue, catalogue_extra
        self._eid = 0
        self._id_prefix = "%08x-%04x-4000-8000-" % (seed, partition)
        self.rnd = random.Random(seed * 1000 + partition)
        self._r = self.rnd.random

    def _id(self) -> str:
        self._eid += 1
        return "%s%012x" % (self._id_prefix, self._eid)

    def merchant(self, i: int) -> str:
        return "%s%05d" % (self.prefix, i)

    def order_id(self, n: int) -> str:
        return "%08x-0000-4000-a000-%012x" % (self.seed, n)

    def events(self) -> Iterator[tuple[str, str, bytes]]:
        r, span = self._r, self.days * 1440
        for n in range(self.partition, self.orders, self.partitions):
            yield from self.order_events(n, self.merchant(n % self.merchants), self.start + int(r() * span))
        for i in range(self.partition, self.merchants, self.partitions):
            yield from self.consultations(self.merchant(i))
        if self.catalogue:
            for i in range(self.partition, self.merchants + self.catalogue_extra, self.partitions):
                yield from self.catalogue_events(i)

    def catalogue_events(self, i: int) -> Iterator[tuple[str, str, bytes]]:
        """Merchant i's catalogue: 4 SKUs, 3 in its orders' category (for one merchant in four
        the next one) and one in another; the first re-filed a day later under a third."""
        merchant = self.merchant(i)
        own = CATEGORIES[(i + (i % 4 == 3)) % len(CATEGORIES)]
        at = self.start + int(self._r() * 1440)
        items = [(0, own, at), (1, own, at), (2, own, at), (3, CATEGORIES[(i + 2) % len(CATEGORIES)], at),
                 (0, CATEGORIES[(i + 5) % len(CATEGORIES)], at + 1440)]
        for n, category, minute in items:
            sku = "%s-sku-%02d" % (merchant, n)
            yield CATALOGUE_TOPIC, sku, (_ENV % (self._id(), "catalogue.sku_upserted", ts(minute), "orders", sku, (
                '"sku":"%s","manufacturer_id":"%s","category":"%s","merchant_kind":null')
                % (sku, merchant, category))).encode()

    def order_events(self, n: int, merchant: str, created: int, scenario: float | None = None,
                     order_id: str | None = None) -> Iterator[tuple[str, str, bytes]]:
        """One order's events, in publication order."""
        r = self._r
        oid = order_id or self.order_id(n)
        number = "SO%09d" % n
        x = r() if scenario is None else scenario
        if x < 0.60:
            kind, service = "refund", "return"
        elif x < 0.74:
            kind, service = "exchange", "exchange"
        elif x < 0.78:
            kind, service = "resend", "exchange"
        elif x < 0.82:
            kind, service = "repair", "repair"
        elif x < 0.90:
            kind, service = "reject", "return"
        elif x < 0.94:
            kind, service = "abandon", "return"
        elif x < 0.97:
            kind, service = "advance", "compensation"
        else:
            kind, service = "noship", "return"
        mi = int(merchant[-5:]) if merchant[-5:].isdigit() else 0
        category = CATEGORIES[mi % len(CATEGORIES)]
        problem = PROBLEMS[int(r() * 5)]
        level = LEVELS[int(r() * 5)]
        sku = "%s-sku-%02d" % (merchant, int(r() * self.skus))
        amount = "%d.00" % (19 + int(r() * 2000))
        on_behalf = "true" if r() < self.on_behalf_share else "false"
        mode = "platform" if on_behalf == "true" else MODES[mi % len(MODES)]
        cust = "c%07d" % int(r() * 10_000_000)
        phone = int(r() * 10000)
        cts = ts(created)
        snap = _SNAP % (merchant, cust, phone, level, number, sku, category, amount, service, problem, mode, cts,
                        on_behalf)
        yield ORDER_TOPIC, oid, (_ENV % (self._id(), "service_order.created", cts, "orders", oid, _CREATED % (
            oid, number, merchant, cust, phone, level, number, sku, category, amount, service, problem,
            ts(created - 1440 * (1 + int(r() * 6))), cts, mode, on_behalf))).encode()
        # one template per order: what stays the same in all its transitions is filled in once
        tmpl = (('{"id":"%s","type":"service_order.transitioned","schema_version":1,"occurred_at":"%s",'
                 '"producer":"orders","key":"' + oid + '","correlation_id":null,"data":{"order_id":"' + oid
                 + '","number":"' + number + '","version":%d,"action":"%s","from_state":"%s","to_state":"%s",'
                 '"actor_role":"%s","actor_id":"%s","occurred_at":"%s","order":') + snap.replace("%", "%%")
                + ',"details":%s}}')
        t, v, state = created, 1, "pending_claim"
        merchant_role = "platform_operator" if mode == "platform" else "merchant_main"
        actor = "u-" + merchant
        new_id = self._id

        def step(action, to, minutes, role=merchant_role, who=actor, details="{}"):
            nonlocal t, v, state
            t += minutes
            v += 1
            at = ts(t)
            raw = (tmpl % (new_id(), at, v, action, state, to, role, who, at, details)).encode()
            state = to
            return ORDER_TOPIC, oid, raw

        def sla(action, rule, due, details="{}"):
            at = ts(due)
            return SLA_TOPIC, oid, (_ENV % (new_id(), "sla.deadline_fired", at, "sla-timer", oid, _FIRED % (
                new_id(), oid, rule, action, v, state, at, at, details))).encode()

        def hours(lo, hi):
            return 60 * (lo + int(r() * (hi - lo + 1)))

        if kind == "abandon":
            yield step("abandon", "abandoned", hours(1, 20), "customer", cust)
            return
        if kind == "advance":
            yield sla("advance_compensation", "advance_compensation", created + 7 * 1440)
            yield step("system.advance_compensation", "refunded_by_system", 7 * 1440, "system", "sla-timer",
                       '{"amount":"%s","completed_by":"system","executed_by":"platform",'
                       '"kind":"advance_compensation","goods_recovered":false,"charged_to":"merchant"}' % amount)
            return
        claim = 1 + int(r() * 50)
        if r() < 0.05:  # nobody claimed it within 30 minutes
            claim = 31 + int(r() * 30)
            yield sla("escalate", "first_response", created + 30, '{"level":1,"to":"supervisor"}')
        yield step("claim", "pending_audit", claim, details='{"handler_id":"%s"}' % actor)
        audit_h = _AUDIT_HOURS[int(r() * len(_AUDIT_HOURS))]
        audit_at = created + 60 * audit_h
        if audit_h > 12:
            yield sla("breach", "audit_deadline", created + 720, '{"indicator":"F2"}')
        if kind == "reject":
            yield step("audit.reject", "rejected", audit_at - t, details='{"decision":"reject","opinion":"n/a"}')
            return
        if kind == "resend":
            yield step("audit.resend_without_return", "provisionally_completed", audit_at - t,
                       details='{"decision":"resend_without_return","sku":"%s","unit_price":"%s","quantity":1}'
                       % (sku, amount))
            yield step("exchange.shipped", state, hours(2, 24), details='{"carrier":"sf","tracking_number":"T1"}')
            yield step("confirm", "completed", hours(1, 72), "customer", cust)
            yield from self._rating(step, cust)
            return
        yield step("audit.approve_return", "awaiting_return_shipment", audit_at - t,
                   details='{"decision":"approve_return","opinion":"ok"}')
        if kind == "noship":
            yield step("system.auto_close", "closed", 30 * 1440, "system", "sla-timer")
            return
        yield step("fill_shipment", "awaiting_receipt", hours(1, 72), "customer", cust,
                   '{"carrier":"sf","tracking_number":"T0","freight_paid":"10.00"}')
        if kind == "refund" and r() < 0.06:
            yield sla("auto_refund", "auto_refund", t + 15 * 1440)
            yield step("system.auto_refund", "refunded_by_system", 15 * 1440, "system", "sla-timer",
                       '{"amount":"%s","completed_by":"system","executed_by":"platform","kind":"auto_refund"}'
                       % amount)
            return
        yield step("register_receipt", "pending_process", hours(24, 72),
                   details='{"condition":"ok","registered_by":"merchant"}')
        received = t
        process_h = _PROCESS_HOURS[int(r() * len(_PROCESS_HOURS))]
        if process_h > 12:
            yield sla("breach", "processing_kpi", received + 720, '{"indicator":"F3"}')
        if process_h > 48 or r() < 0.08:
            yield sla("penalty", "processing_penalty", received + 48 * 60, '{"amount_cny":"2000.00"}')
        if kind == "refund" and r() < 0.05:
            yield step("arbitration.request", "arbitration", hours(1, 10), "customer", cust,
                       '{"requested_by":"customer","reason":"slow"}')
            yield step("arbitration.decide", "completed", hours(2, 48), "arbitrator", "arb-1",
                       '{"amount":"%s","outcome":"refund","binding":true,"locked_from":"pending_process",'
                       '"completed_by":"platform"}' % amount)
            return
        process_at = received + 60 * process_h
        if kind == "refund":
            by = "platform" if mode == "platform" else "merchant"
            yield step("process.refund", "provisionally_completed", process_at - t,
                       details='{"amount":"%s","reason":"quality","remark":"","full":true,"executed_by":"%s",'
                       '"completed_by":"%s","decision":"refund"}' % (amount, by, by))
        elif kind == "exchange":
            yield step("process.exchange", "provisionally_completed", process_at - t,
                       details='{"sku":"%s","unit_price":"%s","quantity":1,"decision":"exchange"}' % (sku, amount))
            yield step("exchange.shipped", state, _SHIP_HOURS[int(r() * len(_SHIP_HOURS))] * 60,
                       details='{"carrier":"sf","tracking_number":"T2"}')
        else:
            yield step("process.repair", "provisionally_completed", process_at - t,
                       details='{"repair":true,"decision":"repair"}')
            yield step("repair.shipped_back", state, hours(24, 72), details='{"carrier":"sf","tracking_number":"T3"}')
        if r() < 0.8:
            yield step("confirm", "completed", hours(1, 100), "customer", cust)
        else:
            yield step("system.auto_confirm", "completed", 7 * 1440, "system", "sla-timer")
        yield from self._rating(step, cust)

    def _rating(self, step, cust):
        r = self._r
        if r() < 0.5:
            stars = _STARS[int(r() * len(_STARS))]
            rec = int(r() * 11)
            yield step("rate", "completed", 10 + int(r() * 4000), "customer", cust,
                       '{"stars":%d,"text":"","recommend":%d,"satisfied":%s}' % (
                           stars, rec, "true" if stars >= 4 else "false"))

    def consultations(self, merchant: str) -> Iterator[tuple[str, str, bytes]]:
        r = self._r
        for _ in range(3):
            at = ts(self.start + int(r() * self.days * 1440))
            did = self._id()
            target = "manufacturer" if r() < 0.7 else "platform"
            reason = "enrolled" if target == "manufacturer" else ("no_agents" if r() < 0.5 else "out_of_hours")
            yield ROUTING_TOPIC, merchant, (_ENV % (did, "routing.decided", at, "consultation-routing", merchant, (
                '"decision_id":"%s","decided_at":"%s","channel":"im","entry_point":"product_page",'
                '"phase":"pre_sale","target":"%s","reason":"%s","sku":null,"manufacturer_id":"%s",'
                '"category":null,"queue_id":null,"customer_id":null,"sales_order_id":null,'
                '"service_order_id":null') % (did, at, target, reason, merchant))).encode()
            if target == "platform":
                eid = self._id()
                yield ROUTING_TOPIC, merchant, (_ENV % (eid, "routing.billable_consultation", at,
                                                        "consultation-routing", merchant, (
                    '"consultation_id":"%s","manufacturer_id":"%s","package":%d,"cause":"%s","channel":"im",'
                    '"category":null,"occurred_at":"%s"') % (did, merchant, 1 + int(r() * 2), reason,
                                                             at))).encode()
            elif r() < 0.3:
                eid = self._id()
                yield ROUTING_TOPIC, merchant, (_ENV % (eid, "routing.transferred", at, "consultation-routing",
                                                        merchant, (
                    '"transfer_id":"%s","decision_id":"%s","manufacturer_id":"%s","agent_id":"a-1",'
                    '"reason":"cannot answer","transferred_at":"%s","sku":null') % (eid, did, merchant,
                                                                                     at))).encode()


_AUDIT_HOURS = (1, 2, 4, 6, 8, 11, 12, 12, 13, 20, 30)
_PROCESS_HOURS = (1, 3, 6, 10, 12, 12, 13, 20, 30, 60)
_SHIP_HOURS = (2, 6, 12, 17, 18, 19, 30)
_STARS = (1, 2, 3, 4, 4, 5, 5, 5)


def _write_partition(directory: str, merchants: int, orders: int, start: datetime, seed: int, partition: int,
                     partitions: int, kw: dict) -> dict:
    from pathlib import Path

    d = Path(directory)
    files = {t: open(d / f"{t}.{partition}.jsonl", "wb", buffering=16 << 20)
             for t in (ORDER_TOPIC, SLA_TOPIC, ROUTING_TOPIC) + ((CATALOGUE_TOPIC,) if kw.get("catalogue") else ())}
    counts = dict.fromkeys(files, 0)
    buffers: dict[str, list[bytes]] = {t: [] for t in files}
    try:
        gen = Generator(merchants, orders, start, seed=seed, partition=partition, partitions=partitions, **kw)
        for topic, _key, raw in gen.events():
            buf = buffers[topic]
            buf.append(raw)
            if len(buf) >= 20000:
                files[topic].write(b"\n".join(buf) + b"\n")
                counts[topic] += len(buf)
                buf.clear()
        for topic, buf in buffers.items():
            if buf:
                files[topic].write(b"\n".join(buf) + b"\n")
                counts[topic] += len(buf)
    finally:
        for f in files.values():
            f.close()
    return counts


def write_files(directory, merchants: int, orders: int, start: datetime, seed: int = 7, partitions: int = 6,
                workers: int = 1, **kw) -> dict:
    """Write ``<topic>.<partition>.jsonl`` files (one envelope a line, like a topic
    export: the form ``kpi replay --from-dir`` reads) into ``directory``; partitions
    are generated by ``workers`` processes. Returns the event count per topic."""
    import multiprocessing
    from pathlib import Path

    Path(directory).mkdir(parents=True, exist_ok=True)
    args = [(str(directory), merchants, orders, start, seed, p, partitions, kw) for p in range(partitions)]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.starmap(_write_partition, args)
    else:
        results = [_write_partition(*a) for a in args]
    total: dict[str, int] = {}
    for r in results:
        for t, n in r.items():
            total[t] = total.get(t, 0) + n
    return total
