"""The marketplace the workload plays, as data: merchants of every fulfilment mode with
their catalogues and quality, customers, and what each side does next with an order.

Everything here is pure and seeded: the same seed gives the same merchants, the same
orders (customer, SKU, service and problem type, amounts) and, for an order in a given
state, the same next step and the same delay before it. What a run does is still shaped
by time (the deadlines the virtual clock fires decide some orders before their actors
do); the scenario — who would do what, when — is the seed's."""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

H, D = 3600.0, 86400.0
MODES = ("pop_self_service", "full_manufacturer", "customer_contact", "platform")
CATEGORIES = {  # category -> (product, unit price); each product in two colours of one price
    "phones": [("phone-x", "2999.00"), ("phone-lite", "1299.00")],
    "laptops": [("book-pro", "8999.00"), ("book-air", "5499.00")],
    "audio": [("buds", "399.00"), ("speaker", "699.00")],
    "appliances": [("kettle", "199.00"), ("blender", "459.00")],
    "apparel": [("jacket", "899.00"), ("sneaker", "599.00")],
}
COLOURS = ("black", "white")
# Responsibility per mode and step (the orders service's table: who audits, receives, processes).
RESPONSIBLE = {
    "platform": {"assign": "platform", "audit": "platform", "receipt": "platform", "process": "platform",
                 "service": "platform"},
    "customer_contact": {"assign": "merchant", "audit": "merchant", "receipt": "platform", "process": "merchant",
                         "service": "merchant"},
    "full_manufacturer": {s: "merchant" for s in ("assign", "audit", "receipt", "process", "service")},
    "pop_self_service": {s: "merchant" for s in ("assign", "audit", "receipt", "process", "service")},
}
TERMINAL = frozenset({"completed", "rejected", "abandoned", "closed", "refunded_by_system"})
ENDED = TERMINAL - {"completed"}


def rng_for(*parts) -> random.Random:
    """A generator of its own for one thing of the scenario (stable across Python runs)."""
    return random.Random(int.from_bytes(hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest(),
                                        "big"))


def cny(v) -> Decimal:
    return Decimal(str(v)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ------------------------------------------------------------------------------ merchants
@dataclass
class Sku:
    sku: str
    category: str
    price: str
    twin: str  # the other colour: same price, a valid exchange


@dataclass
class Merchant:
    id: str
    kind: str  # pop_seller | manufacturer
    mode: str
    quality: str  # fast | slow | negligent
    categories: list[str]
    skus: list[Sku]
    served_by_platform: bool = False
    enrolled: bool = False  # service express (consultation routing)
    agents: int = 0  # agents online it reports to routing
    contact_phone: str = "400-000-0000"
    # filled in by onboarding
    main: str = ""  # client ids
    auditor: str = ""
    processor: str = ""

    @property
    def effective_mode(self) -> str:
        return "platform" if self.served_by_platform else self.mode


def merchants(seed: int, n: int, tag: str = "") -> list[Merchant]:
    """``n`` merchants cycling through the four modes and three qualities; manufacturers
    enrolled in service express (some with agents online, some without: billable), one
    served by the platform on its behalf (billing) when there are five or more."""
    out = []
    cats = sorted(CATEGORIES)
    for i in range(n):
        r = rng_for(seed, "merchant", i)
        mode = MODES[i % len(MODES)]
        kind = "pop_seller" if mode == "pop_self_service" else "manufacturer"
        mid = f"{tag or f'w{seed}'}m{i}-{mode.split('_')[0][:4]}"
        own = r.sample(cats, 2)
        skus = []
        for c in own:
            for product, price in CATEGORIES[c]:
                a, b = (f"{mid}-{product}-{col}" for col in COLOURS)
                skus += [Sku(a, c, price, b), Sku(b, c, price, a)]
        quality = ("fast", "slow", "negligent")[i % 3]
        m = Merchant(id=mid, kind=kind, mode=mode, quality=quality, categories=own, skus=skus,
                     contact_phone=f"400-{600 + i:03d}-{r.randrange(1000, 9999)}")
        if kind == "manufacturer":
            m.enrolled = True
            m.agents = r.choice((0, 3, 5))
        out.append(m)
    if n >= 5:
        out[4].served_by_platform = True
    return out


# ------------------------------------------------------------------------------ orders
@dataclass
class OrderPlan:
    """One customer's application and the personas around it."""

    index: int
    merchant: Merchant
    sku: Sku
    customer_id: str
    customer_phone: str
    customer_level: str
    service_type: str
    problem_type: str
    purchased_quantity: int
    quantity: int
    amount_paid: str
    delivered_days_ago: float
    idempotency_key: str

    @property
    def goods_amount(self) -> Decimal:
        paid = Decimal(self.amount_paid)
        if self.quantity >= self.purchased_quantity:
            return cny(paid)
        return cny(paid * self.quantity / self.purchased_quantity)

    def application(self, delivered_at_iso: str) -> dict:
        return {"merchant_id": self.merchant.id, "customer_id": self.customer_id,
                "customer_phone": self.customer_phone, "customer_level": self.customer_level,
                "sales_order_id": f"so-{self.idempotency_key}", "order_line_id": "1", "sku": self.sku.sku,
                "category": self.sku.category, "purchased_quantity": self.purchased_quantity,
                "quantity": self.quantity, "amount_paid": self.amount_paid, "service_type": self.service_type,
                "problem_type": self.problem_type, "delivered_at": delivered_at_iso,
                "description": f"workload order {self.index}"}


def order_plan(seed: int, index: int, shops: list[Merchant], tag: str = "", customers: int = 500) -> OrderPlan:
    r = rng_for(seed, "order", index)
    m = shops[r.randrange(len(shops))]
    sku = r.choice(m.skus)
    service_type = r.choices(("return", "exchange", "repair", "compensation"), (50, 20, 10, 20))[0]
    problem = r.choices(("quality", "logistics", "not_as_described", "no_reason", "other"), (40, 15, 20, 20, 5))[0]
    purchased = r.choice((1, 1, 1, 2, 3))
    c = r.randrange(customers)
    return OrderPlan(
        index=index, merchant=m, sku=sku, customer_id=f"{tag or f'w{seed}'}c{c}",
        customer_phone=f"13{(seed * 7919 + c) % 10**9:09d}",
        customer_level=r.choices(("regular", "gold", "diamond"), (70, 20, 10))[0],
        service_type=service_type, problem_type=problem, purchased_quantity=purchased,
        quantity=r.randint(1, purchased), amount_paid=str(cny(Decimal(sku.price) * purchased)),
        delivered_days_ago=r.uniform(0.5, 5.0), idempotency_key=f"{tag or f'w{seed}'}-{index}")


# ------------------------------------------------------------------------------ next steps
@dataclass
class Step:
    """One API call the workload makes for an order."""

    actor: str  # customer | merchant_auditor | merchant_processor | merchant_main | operator | arbitrator
    action: str  # the URL's last segment (audit, process, shipment…) or a platform call
    body: dict = field(default_factory=dict)
    kind: str = ""  # the order action it stands for (for the statistics), e.g. audit.approve_return


def merchant_delay(quality: str, r: random.Random) -> float | None:
    """Seconds after a state was entered at which the merchant acts (None: never)."""
    if quality == "fast":
        return r.uniform(0.1 * H, 8 * H)
    if quality == "slow":
        return r.uniform(6 * H, 40 * H)
    return None if r.random() < 0.35 else r.uniform(20 * H, 80 * H)


@dataclass
class Track:
    """What the workload knows of one order it created."""

    plan: OrderPlan
    id: str
    state: str
    version: int
    entered_at: float  # virtual seconds when its state was entered (as the workload saw it)
    entered_version: int = 1
    outcome: str | None = None
    rated: bool = False
    exchange_pending: bool = False
    exchange_shipped: bool = False
    repair_pending: bool = False
    refund_to_pay: bool = False
    refund_paid: bool = False
    reminded: bool = False
    freight_edited: bool = False
    replied: bool = False
    feedback_rounds: int = 0
    done_side: set[str] = field(default_factory=set)

    @property
    def mode(self) -> str:
        return self.plan.merchant.effective_mode

    def party(self, step: str) -> str:
        return RESPONSIBLE[self.mode][step]

    def handler(self, step: str, staff: str) -> str:
        """Who acts for the handler's side of ``step``: platform operator or merchant staff."""
        return "operator" if self.party(step) == "platform" else staff

    def rng(self, seed: int, what: str) -> random.Random:
        # one decision per (order, state entry, purpose): stable whatever the timing
        return rng_for(seed, "step", self.plan.index, self.entered_version, what)


class Due:
    """The time gates of one look at an order: whether ``waited`` (virtual seconds in its
    state) has reached an actor's delay, and the smallest delay not reached yet. Every
    decision is drawn before its gate is asked, whatever the time, so until that delay has
    passed the look takes the same path and finds nobody due again: the driver looks at the
    order next at ``entered_at + wake`` rather than at every tick."""

    __slots__ = ("waited", "wake")

    def __init__(self, waited: float) -> None:
        self.waited = waited
        self.wake = math.inf

    def __call__(self, what: str, delay: float | None) -> bool:
        if delay is None:
            return False
        if self.waited >= delay:
            return True
        if delay < self.wake:
            self.wake = delay
        return False


def next_step(t: Track, seed: int, now: float) -> Step | None:
    """The next call for order ``t`` at virtual time ``now`` (None: nobody acts yet)."""
    return look(t, seed, now)[0]


def look(t: Track, seed: int, now: float) -> tuple[Step | None, float]:
    """``next_step`` and, when nobody is due, the virtual time from which someone may be
    (``inf``: nobody until the order moves on)."""
    due = Due(now - t.entered_at)
    step = _next_step(t, seed, due)
    return step, (now if step is not None else t.entered_at + due.wake)


def _next_step(t: Track, seed: int, due: Due) -> Step | None:
    q = t.plan.merchant.quality
    p = t.plan
    s = t.state
    if s == "pending_claim":
        r = t.rng(seed, "claim")
        if r.random() < 0.04 and due("abandon", r.uniform(1 * H, 30 * H)):
            return Step("customer", "abandon", {"reason": "no longer needed"}, "abandon")
        if not due("claim", merchant_delay(q, r)):
            return None
        if t.party("assign") == "merchant" and r.random() < 0.3:
            return Step("merchant_main", "assign", {"staff_id": p.merchant.auditor}, "assign")
        return Step(t.handler("audit", "merchant_auditor"), "claim", {}, "claim")
    if s == "pending_audit":
        r = t.rng(seed, "audit")
        if r.random() < 0.04 and due("abandon", r.uniform(1 * H, 20 * H)):
            return Step("customer", "abandon", {"reason": "solved it myself"}, "abandon")
        delay = merchant_delay(q, r)
        if not due("audit", delay if t.feedback_rounds == 0 else r.uniform(0.2 * H, 6 * H)):
            return None
        if t.feedback_rounds:
            decision = "approve_return"
        else:
            decision = r.choices(("approve_return", "request_feedback", "reject", "resend_without_return", "abandon"),
                                 (60, 12, 12, 8, 4))[0]
        body = {"decision": decision, "opinion": f"audit: {decision}"}
        if decision == "resend_without_return":
            body["sku"] = p.sku.twin
        if decision == "abandon":
            body["note"] = "customer withdrew by phone"
        return Step(t.handler("audit", "merchant_auditor"), "audit", body, f"audit.{decision}")
    if s == "awaiting_customer_feedback":
        r = t.rng(seed, "feedback")
        if r.random() < 0.7 and due("feedback", r.uniform(1 * H, 6 * D)):
            return Step("customer", "feedback", {"text": "here are more photos", "evidence": ["photo-1"]},
                        "customer_feedback")
        return None
    if s == "awaiting_return_shipment":
        r = t.rng(seed, "ship")
        choice = r.choices(("soon", "late", "never", "abandon"), (65, 20, 12, 3))[0]
        if choice == "abandon" and due("abandon", r.uniform(1 * H, 3 * D)):
            return Step("customer", "abandon", {"reason": "keeping it"}, "abandon")
        if choice in ("soon", "late") and due("ship", r.uniform(0.5 * H, 3 * D) if choice == "soon"
                                              else r.uniform(5 * D, 20 * D)):
            return Step("customer", "shipment", {"carrier": "SF", "tracking_number": f"SF{p.index:08d}",
                                                 "freight_paid": "12.00"}, "fill_shipment")
        if not t.reminded and t.party("service") == "merchant" and r.random() < 0.4 and due("remind", 2 * D):
            return Step("merchant_main", "remind-to-ship", {"note": "please ship"}, "remind_to_ship")
        return None
    if s == "awaiting_receipt":
        r = t.rng(seed, "receipt")
        if r.random() < 0.03 and due("arb", r.uniform(1 * D, 6 * D)):
            return Step("customer", "arbitration", {"reason": "the seller does not answer"}, "arbitration.request")
        if due("receipt", merchant_delay(q, r) if t.party("receipt") == "merchant" else r.uniform(0.5 * H, 2 * D)):
            return Step(t.handler("receipt", "merchant_processor"), "receipt", {"condition": "intact"},
                        "register_receipt")
        return None
    if s == "pending_process":
        r = t.rng(seed, "process")
        if not t.freight_edited and r.random() < 0.1 and due("freight", 0.5 * H):
            return Step(t.handler("process", "merchant_processor"), "freight", {"freight_to_return": "10.00"},
                        "freight.edit")
        if r.random() < 0.03 and due("arb", r.uniform(1 * H, 3 * D)):
            return Step("customer", "arbitration", {"reason": "no decision yet"}, "arbitration.request")
        if not due("process", merchant_delay(q, r)):
            return None
        return Step(t.handler("process", "merchant_processor"), "process", process_body(t, r), "")
    if s == "provisionally_completed":
        side = side_step(t, seed, due)
        if side:
            return side
        r = t.rng(seed, "confirm")
        if t.outcome in ("return_original", "offline_exchange") and t.party("process") == "merchant" \
                and r.random() < 0.1 and due("cancel", 1 * H):
            return Step("merchant_processor", "cancel-outcome", {"note": "customer changed their mind"},
                        "cancel_outcome")
        choice = r.choices(("confirm", "message", "silent"), (50, 15, 35))[0]
        if choice == "confirm" and due("confirm", r.uniform(1 * H, 5 * D)):
            return Step("customer", "confirm", {}, "confirm")
        if choice == "message" and due("message", r.uniform(1 * H, 4 * D)):
            return Step("customer", "messages", {"text": "it still does not work"}, "message")
        return None
    if s == "unresolved":
        side = side_step(t, seed, due)
        if side:
            return side
        r = t.rng(seed, "unresolved")
        choice = r.choices(("resolve", "arbitration", "offline", "ignore"), (60, 20, 10, 10))[0]
        if choice == "arbitration" and due("arb", r.uniform(2 * H, 3 * D)):
            return Step("customer", "arbitration", {"reason": "unhappy with the outcome"}, "arbitration.request")
        if choice == "offline" and due("offline", r.uniform(2 * H, 2 * D)):
            return Step(t.handler("process", "merchant_processor"), "process",
                        {"decision": "offline_exchange", "tracking_number": f"OX{p.index:08d}",
                         "note": "exchanged at the shop"}, "process.offline_exchange")
        if choice == "resolve" and not t.replied and due("reply", r.uniform(0.5 * H, 1 * D)):
            return Step(t.handler("service", "merchant_main"), "replies", {"text": "we will call you"}, "reply")
        if choice == "resolve" and t.replied and due("resolve", r.uniform(1 * D, 3 * D)):
            return Step(t.handler("service", "merchant_main"), "resolve", {"note": "called the customer, solved"},
                        "mark_resolved")
        return None
    if s == "arbitration":
        r = t.rng(seed, "arbitrate")
        if not due("decide", r.uniform(1 * H, 2 * D)):
            return None
        outcome = r.choices(("refund", "reject", "return_original", "exchange"), (50, 30, 10, 10))[0]
        body = {"outcome": outcome, "note": f"arbitrated: {outcome}"}
        if outcome == "refund":
            body["amount"] = str(t.plan.goods_amount)
        if outcome == "exchange":
            body["sku"] = p.sku.twin
        return Step("arbitrator", "arbitration-decision", body, "arbitration.decide")
    if s == "completed":
        side = side_step(t, seed, due)
        if side:
            return side
        r = t.rng(seed, "rate")
        if not t.rated and r.random() < 0.7 and due("rate", r.uniform(0.5 * H, 3 * D)):
            stars = r.choices((1, 2, 3, 4, 5), (5, 5, 10, 30, 50))[0]
            body = {"stars": stars, "text": "ok" if stars > 3 else "meh"}
            if r.random() < 0.6:
                body["recommend"] = r.randint(0, 10)
            return Step("customer", "rating", body, "rate")
        return None
    if s == "refunded_by_system":
        return side_step(t, seed, due)
    return None


def process_body(t: Track, r: random.Random) -> dict:
    p = t.plan
    goods = p.goods_amount
    if p.service_type == "repair" and r.random() < 0.8:
        return {"decision": "repair", "note": "sent to the workshop"}
    roll = r.random()
    if roll < 0.05:
        return {"decision": "return_original", "customer_agreed_by_phone": True, "note": "agreed by phone"}
    if roll < 0.10:
        return {"decision": "offline_exchange", "tracking_number": f"OX{p.index:08d}", "note": "swapped offline"}
    if p.service_type == "exchange" and roll < 0.8:
        return {"decision": "exchange", "sku": p.sku.twin}
    if roll < 0.85 or goods < Decimal("2.00"):
        return {"decision": "refund", "amount": str(goods), "reason": "defective",
                **({"remark": "exchange turned into a refund"} if p.service_type == "exchange" else {})}
    return {"decision": "refund", "amount": str(cny(goods / 2)), "reason": "partly damaged",
            "remark": "half refund agreed"}


def side_step(t: Track, seed: int, due: Due) -> Step | None:
    """Follow-ups that do not wait for the customer: the exchange shipment, the repaired item
    shipped back, finance confirming a refund payout (each once, some late, some never)."""
    if t.exchange_pending and not t.exchange_shipped:
        r = t.rng(seed, "exship")
        delay = r.uniform(1 * H, 12 * H) if t.plan.merchant.quality == "fast" else r.uniform(6 * H, 40 * H)
        if due("exship", delay):
            return Step(t.handler("process", "merchant_processor"), "exchange-shipment",
                        {"carrier": "SF", "tracking_number": f"EX{t.plan.index:08d}"}, "exchange.shipped")
    if t.repair_pending:
        r = t.rng(seed, "repair")
        if due("repair", r.uniform(1 * D, 5 * D)):
            return Step(t.handler("process", "merchant_processor"), "repair-shipped-back",
                        {"carrier": "SF", "tracking_number": f"RP{t.plan.index:08d}"}, "repair.shipped_back")
    if t.refund_to_pay and not t.refund_paid:
        r = t.rng(seed, "payout")
        choice = r.choices(("soon", "late", "never"), (50, 30, 20))[0]
        if choice != "never" and due("payout", r.uniform(1 * H, 20 * H) if choice == "soon"
                                     else r.uniform(1 * D, 4 * D)):
            return Step("operator", "refund-paid", {"payout_reference": f"PAY-{t.plan.index}"}, "refund.paid")
    return None
