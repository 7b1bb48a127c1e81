"""Outgoing events: every transition and timeline-worthy in-state action is published."""
from __future__ import annotations

from datetime import datetime

from orders.models import ServiceOrder
from shared.contracts.orders import OrderSnapshot, ServiceOrderTransitioned
from shared.events import make_envelope


def snapshot(o: ServiceOrder) -> OrderSnapshot:
    return OrderSnapshot(
        merchant_id=o.merchant_id, customer_id=o.customer_id, customer_phone=o.customer_phone,
        customer_level=o.customer_level, sales_order_id=o.sales_order_id, sku=o.sku, category=o.category,
        quantity=o.quantity, amount_paid=o.amount_paid, service_type=o.service_type, problem_type=o.problem_type,
        mode=o.mode, created_at=o.created_at, on_behalf=o.on_behalf,
        merchant_contact_phone=o.merchant_contact_phone or None, return_address=o.return_address or None,
        order_line_id=o.order_line_id, handler_id=o.handler_id,
    )


def transitioned(rt, o: ServiceOrder, *, action: str, from_state: str, actor_role: str, actor_id: str,
                 at: datetime, details: dict):
    data = ServiceOrderTransitioned(
        order_id=o.id, number=o.number, version=o.version, action=action, from_state=from_state,
        to_state=o.state, actor_role=actor_role, actor_id=actor_id, occurred_at=at, order=snapshot(o),
        details=details,
    )
    return make_envelope(type_="service_order.transitioned", key=o.id, producer=rt.name, occurred_at=at, data=data)
