"""A generated month of order, SLA and routing events (deterministic, seeded)."""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import shared.contracts  # noqa: F401
from shared.events import Envelope, make_envelope
from shared.topics import ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS

START = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)  # 2026-11-01 00:00 Beijing


def _snap(m: str, created: datetime, rnd: random.Random, on_behalf: bool) -> dict:
    return {"merchant_id": m, "customer_id": "c", "customer_phone": "13800138000", "customer_level": "regular",
            "sales_order_id": "so", "sku": f"sku-{rnd.randint(1, 50)}", "category": rnd.choice(["phones", "apparel"]),
            "quantity": 1, "amount_paid": Decimal("99.00"), "service_type": "return",
            "problem_type": rnd.choice(["quality", "logistics", "other"]), "created_at": created,
            "on_behalf": on_behalf}


def month_events(merchants: int, orders_per_merchant: int, seed: int = 7) -> list[tuple[str, Envelope]]:
    """(topic, envelope) in publication order."""
    rnd = random.Random(seed)
    out: list[tuple[str, Envelope]] = []
    uid = lambda: str(uuid.UUID(int=rnd.getrandbits(128)))  # noqa: E731

    for i in range(merchants):
        m = f"m{i:05d}"
        for _ in range(orders_per_merchant):
            oid = uid()
            c = START + timedelta(minutes=rnd.randint(0, 29 * 24 * 60))
            snap = _snap(m, c, rnd, rnd.random() < 0.1)
            out.append((ORDER_EVENTS, make_envelope(
                type_="service_order.created", key=oid, producer="orders", occurred_at=c,
                data={**snap, "order_id": oid, "number": "N", "version": 1, "state": "pending_claim",
                      "delivered_at": c})))
            t, v = c, 1
            steps = [("claim", 1), ("audit.approve_return", rnd.choice([2, 11, 12, 13, 30])),
                     ("register_receipt", rnd.randint(24, 72)),
                     (rnd.choice(["process.refund", "process.exchange"]), rnd.choice([3, 12, 13, 50])),
                     ("exchange.shipped", rnd.choice([5, 18, 19])), ("rate", rnd.randint(1, 48))]
            for action, hours in steps:
                if action == "exchange.shipped" and getattr(out[-1][1].data, "action", None) != "process.exchange":
                    continue
                t, v = t + timedelta(hours=hours), v + 1
                details = {"stars": rnd.randint(1, 5)} if action == "rate" else (
                    {"amount": "99.00"} if action == "process.refund" else {})
                out.append((ORDER_EVENTS, make_envelope(
                    type_="service_order.transitioned", key=oid, producer="orders", occurred_at=t,
                    data={"order_id": oid, "number": "N", "version": v, "action": action,
                          "from_state": "pending_audit", "to_state": "pending_process", "actor_role": "merchant_main",
                          "actor_id": "u", "occurred_at": t, "order": snap, "details": details})))
                if action == "register_receipt" and rnd.random() < 0.1:
                    due = t + timedelta(hours=48)
                    out.append((SLA_EVENTS, make_envelope(
                        type_="sla.deadline_fired", key=oid, producer="sla-timer", occurred_at=due,
                        data={"timer_id": uid(), "order_id": oid, "rule": "processing_penalty", "action": "penalty",
                              "order_version": v, "order_state": "pending_process", "due_at": due, "fired_at": due,
                              "details": {"amount_cny": "2000.00"}})))
        for _ in range(3):
            t = START + timedelta(minutes=rnd.randint(0, 29 * 24 * 60))
            did = uid()
            target = rnd.choice(["manufacturer", "platform"])
            out.append((ROUTING_EVENTS, make_envelope(
                type_="routing.decided", key=m, producer="routing", occurred_at=t,
                data={"decision_id": did, "decided_at": t, "channel": "im", "entry_point": "product_page",
                      "phase": "pre_sale", "target": target,
                      "reason": "enrolled" if target == "manufacturer" else "no_agents", "manufacturer_id": m})))
            if target == "platform":
                out.append((ROUTING_EVENTS, make_envelope(
                    type_="routing.billable_consultation", key=m, producer="routing", occurred_at=t,
                    data={"consultation_id": did, "manufacturer_id": m, "package": rnd.choice([1, 2]),
                          "cause": "no_agents", "channel": "im", "occurred_at": t})))
            elif rnd.random() < 0.3:
                out.append((ROUTING_EVENTS, make_envelope(
                    type_="routing.transferred", key=m, producer="routing", occurred_at=t,
                    data={"transfer_id": uid(), "decision_id": did, "manufacturer_id": m, "agent_id": "a",
                          "reason": "cannot answer", "transferred_at": t})))
    out.sort(key=lambda te: te[1].occurred_at)
    return out
