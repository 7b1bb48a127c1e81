"""Outgoing events of a decision (docs/events.md § 3): every accepted action publishes
``service_order.transitioned``; an application ``service_order.created``; an exchange
decision also ``exchange_order.created``."""
from __future__ import annotations

from datetime import datetime

from orders.domain.decisions import Decision
from shared.contracts.orders import ExchangeOrderCreated, OrderSnapshot, ServiceOrderCreated, ServiceOrderTransitioned
from shared.events import make_envelope


def snapshot(o) -> OrderSnapshot:
    return OrderSnapshot(
        merchant_id=o.merchant_id, customer_id=o.customer_id, customer_phone=o.customer_phone,
        customer_level=o.customer_level, sales_order_id=o.sales_order_id, sku=o.sku, category=o.category,
        quantity=o.quantity, amount_paid=o.amount_paid, service_type=o.service_type, problem_type=o.problem_type,
        mode=o.mode, created_at=o.created_at, on_behalf=o.on_behalf,
        merchant_contact_phone=o.merchant_contact_phone or None, return_address=o.return_address or None,
        order_line_id=o.order_line_id, handler_id=o.handler_id,
    )


def decision_events(producer: str, d: Decision) -> list:
    """The envelopes of a decision, in the order they are published."""
    o = d.order
    events = []
    xo = d.exchange_order
    if xo is not None:
        events.append(make_envelope(
            type_="exchange_order.created", key=o.id, producer=producer, occurred_at=d.at,
            data=ExchangeOrderCreated(exchange_order_id=xo["id"], order_id=o.id, number=o.number,
                                      merchant_id=o.merchant_id, customer_id=o.customer_id, sku=xo["sku"],
                                      quantity=xo["quantity"], unit_price=xo["unit_price"],
                                      auto_approved=xo["auto_approved"], source=d.action, created_at=d.at)))
    events.append(make_envelope(
        type_="service_order.transitioned", key=o.id, producer=producer, occurred_at=d.at,
        data=ServiceOrderTransitioned(
            order_id=o.id, number=o.number, version=o.version, action=d.action, from_state=d.from_state,
            to_state=o.state, actor_role=d.actor.role, actor_id=d.actor.id, occurred_at=d.at, order=snapshot(o),
            details=d.details)))
    return events


def created_event(producer: str, order, now: datetime):
    return make_envelope(type_="service_order.created", key=order.id, producer=producer, occurred_at=now,
                         data=ServiceOrderCreated(
                             order_id=order.id, number=order.number, version=order.version, state=order.state,
                             merchant_id=order.merchant_id, customer_id=order.customer_id,
                             customer_phone=order.customer_phone, customer_level=order.customer_level,
                             sales_order_id=order.sales_order_id, sku=order.sku, category=order.category,
                             quantity=order.quantity, amount_paid=order.amount_paid,
                             service_type=order.service_type, problem_type=order.problem_type,
                             delivered_at=order.delivered_at, created_at=order.created_at, mode=order.mode,
                             on_behalf=order.on_behalf,
                             merchant_contact_phone=order.merchant_contact_phone or None,
                             return_address=order.return_address or None))
