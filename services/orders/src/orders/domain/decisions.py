"""One decision per action on an order (docs/lifecycle.md § 2): pure, no storage.

``decide`` takes the order as loaded, the action's validated input, who acts and the
facts the rules asked for (``facts_needed``), and returns a ``Decision``: the order's
new column values (its next version included), its timeline entry and every side record
the action writes. The handler turns it into events and hands both to the order store,
which commits them in one transaction (adapters/store.py) — the same decision whichever
adapter stores it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Callable

from orders.domain import actions as rules
from orders.domain.modes import EXECUTION
from orders.domain.money import cny
from orders.domain.states import target
from shared.errors import ApiError
from shared.ids import new_id

# Which deadline each transition arms (the timer's order_version is the version of that event;
# docs/deadlines.md).
ARMS = {
    "audit.request_feedback": "feedback",
    "audit.approve_return": "ship_back",
    "fill_shipment": "auto_refund",
}
ARM_FOR_STATE = {"provisionally_completed": "auto_confirm"}
# ``armed[ENTERED]``: the version of the transition that entered the current state. A deadline
# the sla-timer armed at that version is the one ending this step (handlers/queries.py).
ENTERED = "entered"

# Actions whose rules read the merchant's catalogue (when the input names a SKU).
_READS_CATALOGUE = frozenset({"audit.resend_without_return", "process.exchange", "arbitration.decide"})


class Order(SimpleNamespace):
    """A service order's stored columns as attributes: what the stores load and the rules read."""

    def with_values(self, values: dict[str, Any]) -> "Order":
        return Order(**{**self.__dict__, **values})


@dataclass(frozen=True)
class Actor:
    role: str  # storefront | merchant_main | merchant_staff | platform_operator | arbitrator | system
    id: str
    party: str  # customer | merchant | platform | arbitrator | system


@dataclass(frozen=True)
class FactsNeeded:
    """What the rules of one action read beyond the order (the store loads it)."""

    skus: tuple[str, ...] = ()  # catalogue entries of the order's merchant
    staff_id: str | None = None  # the assignee
    open_exchange: bool = False  # the order's exchange order not shipped yet


def facts_needed(action: str, data: dict) -> FactsNeeded:
    if action in _READS_CATALOGUE and data.get("sku"):
        return FactsNeeded(skus=(data["sku"],))
    if action == "assign" and data.get("staff_id"):
        return FactsNeeded(staff_id=data["staff_id"])
    if action == "exchange.shipped":
        return FactsNeeded(open_exchange=True)
    return FactsNeeded()


@dataclass
class Facts:
    skus: dict[str, tuple[str, Any]] = field(default_factory=dict)  # sku -> (category, price)
    staff: dict[str, Any] | None = None  # permissions, categories, active
    open_exchange: dict[str, Any] | None = None  # id, created_at


@dataclass
class Decision:
    order: Order  # after the action
    action: str
    actor: Actor
    at: datetime
    from_state: str
    expected_version: int  # the version the decision was made on; the write only applies to it
    values: dict[str, Any]  # service_orders columns written
    timeline: dict[str, Any]
    details: dict[str, Any]  # the event's details
    rating: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    blobs: list[tuple[str, bytes]] = field(default_factory=list)  # (blob key, content), stored before the commit
    exchange_order: dict[str, Any] | None = None  # a new exchange order
    exchange_shipped: tuple[str, dict[str, Any]] | None = None  # (exchange order id, new values)

    def inserts(self) -> list[tuple[str, dict[str, Any]]]:
        """(table, row) of every row the decision adds, in order."""
        rows = [("timeline", self.timeline)]
        if self.rating is not None:
            rows.append(("ratings", self.rating))
        rows.extend(("attachments", a) for a in self.attachments)
        if self.exchange_order is not None:
            rows.append(("exchange_orders", self.exchange_order))
        return rows

    def updates(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(table, id, values) of the side rows it changes (besides the order's own row)."""
        return [("exchange_orders", *self.exchange_shipped)] if self.exchange_shipped else []


def conflict() -> ApiError:
    return ApiError(409, "version_conflict", "the order changed meanwhile; reload it and retry")


def _new_values(order, action: str, eff: rules.Effect, from_state: str, to_state: str, now: datetime) -> dict:
    """The order's columns after the transition (its next version included)."""
    values = dict(eff.changes)
    values["state"] = to_state
    if to_state != from_state:
        values["state_entered_at"] = now
    values["updated_at"] = now
    values["version"] = order.version + 1
    arm = ARMS.get(action) or (ARM_FOR_STATE.get(to_state) if to_state != from_state else None)
    if arm or to_state != from_state:
        armed = dict(order.armed or {})
        if arm:
            armed[arm] = order.version + 1
        if to_state != from_state:
            armed[ENTERED] = order.version + 1
        values["armed"] = armed
    return values


def decide(order: Order, action: str, data: dict, actor: Actor, facts: Facts, now: datetime, *,
           expected_version: int | None = None, new_id: Callable[[], str] = new_id) -> Decision:
    """The action's outcome, or ApiError (409 version_conflict, 422 and 409 of the rules).

    The caller has checked that ``actor`` may see the order and do the action in its state
    (``domain/access.py``), or, for the system, that the deadline still applies."""
    if expected_version is not None and expected_version != order.version:
        raise conflict()
    to_state = target(order.state, action, data.get("outcome"))
    if to_state is None:
        raise ApiError(422, "bad_outcome", "no such arbitration outcome")
    ctx = rules.Context(now=now, actor_party=actor.party, actor_id=actor.id, skus=facts.skus, staff=facts.staff)
    eff = rules.decide(order, action, data, ctx)
    from_state = order.state
    if action == "register_receipt" and from_state == "arbitration":
        to_state = "arbitration"  # receipt while locked: the order stays locked
    values = _new_values(order, action, eff, from_state, to_state, now)
    after = order.with_values(values)
    decision = Decision(order=after, action=action, actor=actor, at=now, from_state=from_state,
                        expected_version=order.version, values=values, timeline={}, details=dict(eff.details))
    details = decision.details
    if eff.attachments:
        for f in eff.attachments:
            att_id = new_id()
            decision.blobs.append((att_id, f["content"]))
            decision.attachments.append({"id": att_id, "order_id": order.id, "filename": f["filename"],
                                         "content_type": f["content_type"], "size": f["size"], "blob_key": att_id,
                                         "uploaded_by": actor.id, "created_at": now})
        details["attachment_count"] = len(eff.attachments)
    if eff.exchange_sku:
        xo = {"id": new_id(), "order_id": order.id, "sku": eff.exchange_sku, "quantity": order.quantity,
              "unit_price": cny(details.get("unit_price", "0")),
              "auto_approved": EXECUTION[order.mode]["exchange_auto_approved"], "status": "created",
              "carrier": None, "tracking_number": None, "created_at": now, "shipped_at": None}
        decision.exchange_order = xo
        details.update(exchange_order_id=xo["id"], exchange_auto_approved=xo["auto_approved"])
    if eff.exchange_shipped:
        xo = facts.open_exchange
        if xo is None:
            raise ApiError(409, "exchange_already_shipped", "the exchange order was already shipped")
        decision.exchange_shipped = (xo["id"], {"status": "shipped", "shipped_at": now, **eff.exchange_shipped})
        details.update(exchange_order_id=xo["id"], shipping_seconds=int((now - xo["created_at"]).total_seconds()))
    if eff.rating:
        decision.rating = {"order_id": order.id, **eff.rating, "created_at": now}
    if eff.note:
        details.setdefault("note", eff.note)
    decision.timeline = {
        "order_id": order.id, "version": after.version, "at": now, "actor_role": actor.role, "actor_id": actor.id,
        "action": action, "from_state": from_state, "to_state": to_state, "note": eff.note,
        "internal_note": eff.internal_note, "customer_visible": action not in rules.INTERNAL_ACTIONS,
        "details": details}
    return decision
