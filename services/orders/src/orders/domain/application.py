"""Applying for service (docs/lifecycle.md § 1): one decision on the stored facts, pure.

``decide_application`` makes the checks 2–7 of the table, in that order (check 1, the
customer header, is the handler's), on the ``ApplicationFacts`` the store read, and returns
either the order already stored under the key or the new order with its timeline entry. The
store keeps the new order only if no other application for the line was stored since the
facts were read (the line's version, adapters/store.py); otherwise it is decided again.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from orders.domain.decisions import ENTERED, Order
from orders.domain.eligibility import check_window
from orders.domain.modes import effective_mode, return_address
from orders.domain.money import cny, return_freight_payer
from shared.clock import to_beijing
from shared.errors import ApiError
from shared.ids import new_id

# States after which an order no longer holds quantity of its sales-order line.
RELEASING_STATES = ("rejected", "abandoned", "closed")

# Lifecycle columns of a new order (the rest comes from the application and its merchant).
_FRESH = dict(handler_id=None, customer_responded=False, locked_from=None, arbitration_requested=False,
              audit_opinion=None, audited_at=None, freight_declared=None, freight_to_return=Decimal("0.00"),
              carrier=None, tracking_number=None, shipment_filled_at=None, last_reminded_at=None, received_at=None,
              receipt_condition=None, outcome=None, outcome_details={}, processed_at=None,
              refunded_amount=Decimal("0.00"), refund_completed_by=None, refund_paid_at=None, exchange_sku=None,
              rated=False)


@dataclass
class ApplicationFacts:
    """What the store holds that an application is checked against (read with the line's version)."""

    existing: Order | None  # the order this customer stored under the same key
    in_service: int  # quantity of the line held by orders not in a releasing state
    merchant: Any | None  # mode, category_modes, contact_phone, return_address, served_by_platform,
    #                       disqualified_since; None: not onboarded
    has_catalogue: bool
    sku_category: str | None  # the applied SKU's category in the catalogue; None: not in it


@dataclass
class Application:
    order: Order
    created: bool  # False: a retry answered with the stored order
    timeline: dict[str, Any] | None = None


def new_number(now: datetime) -> str:
    return "AS" + to_beijing(now).strftime("%y%m%d") + f"{secrets.randbelow(10**8):08d}"


def _catalogue_category(body, has_catalogue: bool, sku_category: str | None) -> str:
    """The order's category. A merchant with a catalogue sells only what is in it, and its
    catalogue says what category a SKU is (the category decides the eligibility window and who
    handles the order): the caller's category is replaced by the catalogue's. Without a catalogue
    the caller's category stands."""
    if not has_catalogue:
        return body.category
    if sku_category is None:
        raise ApiError(422, "unknown_sku", f"SKU {body.sku} is not in the catalogue of merchant {body.merchant_id}",
                       {"sku": body.sku, "merchant_id": body.merchant_id})
    return sku_category


def _check_window(body, category: str, now: datetime, windows: dict[str, int]) -> None:
    """The eligibility window of the order's category (the catalogue's, see ``_catalogue_category``)."""
    window = check_window(body.service_type, body.problem_type, body.delivered_at, now,
                          category=category, overrides=windows)
    if not window.allowed:
        raise ApiError(
            422,
            "window_expired" if now > window.deadline else "not_delivered",
            f"{body.service_type}/{body.problem_type} is open for {window.window_days} days after delivery "
            f"(until {to_beijing(window.deadline):%Y-%m-%d %H:%M} Beijing time)",
            {"window_days": window.window_days, "deadline": window.deadline.isoformat()},
        )


def decide_application(body, facts: ApplicationFacts, *, idempotency_key: str, digest: str, now: datetime,
                       windows: dict[str, int], platform_return_address: str,
                       number: str | None = None, order_id: str | None = None) -> Application:
    """``body``: the validated application (``schemas.ApplicationIn``); ``digest``: its hash,
    which tells a retry from another application under the same key."""
    if facts.existing is not None:
        if facts.existing.request_hash != digest:
            raise ApiError(409, "idempotency_key_reused", "this Idempotency-Key was used for a different application")
        return Application(facts.existing, created=False)
    if body.quantity > body.purchased_quantity:
        raise ApiError(422, "quantity_exceeds_purchase", "quantity is larger than the purchased quantity")
    merchant = facts.merchant
    if merchant is None:
        raise ApiError(422, "unknown_merchant", f"merchant {body.merchant_id} is not onboarded")
    category = _catalogue_category(body, facts.has_catalogue, facts.sku_category)
    _check_window(body, category, now, windows)
    available = body.purchased_quantity - int(facts.in_service or 0)
    if body.quantity > available:
        raise ApiError(422, "quantity_exceeds_available", f"only {available} of this line can still be applied for")
    mode, on_behalf = effective_mode(merchant.mode, merchant.category_modes or {}, category,
                                     merchant.served_by_platform or merchant.disqualified_since is not None)
    order = Order(
        **_FRESH,
        id=order_id or new_id(),
        number=number or new_number(now),
        version=1,
        state="pending_claim",
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=now,
        updated_at=now,
        mode=mode,
        on_behalf=on_behalf,
        merchant_contact_phone=merchant.contact_phone,
        # the address of whoever receives the item in this order's mode (the platform warehouse
        # when the platform does the receipt), as the customer is shown it and the events carry it
        return_address=return_address(mode, merchant.return_address, platform_return_address),
        state_entered_at=now,
        return_freight_payer=return_freight_payer(body.problem_type, body.customer_level),
        armed={"advance_compensation": 1, ENTERED: 1},  # see domain/decisions.py::ARMS
        # two places, as the column stores it: the answer and the event say "199.00" for "199",
        # like every later read
        **(body.model_dump() | {"amount_paid": cny(body.amount_paid), "category": category}),
    )
    timeline = dict(order_id=order.id, version=1, at=now, actor_role="storefront", actor_id=order.customer_id,
                    action="apply", from_state="", to_state=order.state, note=order.description, internal_note=None,
                    customer_visible=True, details={})
    return Application(order, created=True, timeline=timeline)
