"""Events as the services publish them (through the shared codec), for the console's tests."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import shared.contracts  # noqa: F401 - registers event types
from shared.events import make_envelope


def snapshot(merchant_id: str, created_at: datetime, mode: str) -> dict:
    return {"merchant_id": merchant_id, "customer_id": "c-1", "customer_phone": "13800138000",
            "customer_level": "regular", "sales_order_id": "so-1", "sku": "sku-1", "category": "phones",
            "quantity": 1, "amount_paid": "199.00", "service_type": "return", "problem_type": "quality",
            "created_at": created_at.isoformat(), "mode": mode}


class Order:
    """One order's events, versions counting up."""

    def __init__(self, merchant_id: str = "m-1", mode: str = "pop_self_service", at: datetime | None = None) -> None:
        self.order_id = str(uuid.uuid4())
        self.merchant_id, self.mode = merchant_id, mode
        self.version, self.state = 0, "pending_claim"
        self.created_at = at

    def created(self, at: datetime):
        self.version, self.created_at = 1, at
        data = {**snapshot(self.merchant_id, at, self.mode), "order_id": self.order_id,
                "number": "SO" + self.order_id[:8], "version": 1, "state": "pending_claim",
                "delivered_at": (at - timedelta(days=2)).isoformat()}
        return make_envelope(type_="service_order.created", key=self.order_id, producer="orders", occurred_at=at,
                             data=data)

    def act(self, action: str, to_state: str, at: datetime, **details):
        self.version += 1
        data = {"order_id": self.order_id, "number": "SO" + self.order_id[:8], "version": self.version,
                "action": action, "from_state": self.state, "to_state": to_state, "actor_role": "merchant_main",
                "actor_id": "u-1", "occurred_at": at.isoformat(),
                "order": snapshot(self.merchant_id, self.created_at, self.mode), "details": details}
        self.state = to_state
        return make_envelope(type_="service_order.transitioned", key=self.order_id, producer="orders",
                             occurred_at=at, data=data)

    def fired(self, rule: str, action: str, due_at: datetime, fired_at: datetime, **details):
        data = {"timer_id": str(uuid.uuid4()), "order_id": self.order_id, "rule": rule, "action": action,
                "order_version": self.version, "order_state": self.state, "due_at": due_at.isoformat(),
                "fired_at": fired_at.isoformat(), "details": details}
        return make_envelope(type_="sla.deadline_fired", key=self.order_id, producer="sla-timer",
                             occurred_at=fired_at, data=data)


def decided(at: datetime, target: str, reason: str, channel: str = "phone", manufacturer_id: str | None = "mfr-1"):
    data = {"decision_id": str(uuid.uuid4()), "decided_at": at.isoformat(), "channel": channel,
            "entry_point": "product_page", "phase": "after_sale", "target": target, "reason": reason,
            "sku": "sku-1", "manufacturer_id": manufacturer_id, "category": "phones"}
    return make_envelope(type_="routing.decided", key=manufacturer_id or "platform", producer="consultation-routing",
                         occurred_at=at, data=data)


def transferred(at: datetime, manufacturer_id: str = "mfr-1"):
    data = {"transfer_id": str(uuid.uuid4()), "decision_id": str(uuid.uuid4()), "manufacturer_id": manufacturer_id,
            "agent_id": "a-1", "reason": "needs the platform", "transferred_at": at.isoformat()}
    return make_envelope(type_="routing.transferred", key=manufacturer_id, producer="consultation-routing",
                         occurred_at=at, data=data)
