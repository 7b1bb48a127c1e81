"""What each action does to an order, given its validated input: pure rules (docs/lifecycle.md).

``decide(order, action, data, ctx)`` returns an ``Effect`` (field changes, event
details, notes, side records) or raises ``ApiError`` 422/409. It never touches
storage; the handler applies the effect in one transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from orders.domain import money
from orders.domain.modes import EXECUTION
from shared.errors import ApiError

MAX_ATTACHMENTS = 3
MAX_ATTACHMENT_BYTES = 800 * 1024
REMIND_INTERVAL = timedelta(hours=24)  # manual remind-to-ship: at most once a day per order
INTERNAL_ACTIONS = frozenset({"claim", "assign", "freight.edit"})


@dataclass
class Effect:
    changes: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    internal_note: str | None = None
    exchange_sku: str | None = None  # create an exchange order for this SKU
    exchange_shipped: dict | None = None
    attachments: list[dict] = field(default_factory=list)
    rating: dict | None = None


@dataclass
class Context:
    """What the rules need beyond the order: the actor and the merchant's catalogue."""

    now: datetime
    actor_party: str  # customer | merchant | platform | arbitrator | system
    actor_id: str
    skus: dict[str, tuple[str, Decimal]] = field(default_factory=dict)  # sku -> (category, price)
    staff: dict[str, Any] | None = None  # assign: the assignee (permissions, categories, active)


def _s(v: Decimal) -> str:
    return str(money.cny(v))


def invalid(code: str, message: str, details=None) -> ApiError:
    return ApiError(422, code, message, details)


def goods(order) -> Decimal:
    return money.goods_amount(order.amount_paid, order.quantity, order.purchased_quantity)


def _require(data: dict, key: str, code: str, message: str):
    v = data.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        raise invalid(code, message)
    return v


def _exchange_sku(order, sku: str, ctx: Context) -> Decimal:
    """1-for-1 from the merchant's own store at the original line's price."""
    if sku not in ctx.skus:
        raise invalid("sku_not_in_store", f"SKU {sku} is not in this merchant's store")
    _cat, price = ctx.skus[sku]
    original = ctx.skus.get(order.sku)
    expected = original[1] if original else money.cny(Decimal(order.amount_paid) / order.purchased_quantity)
    if money.cny(price) != money.cny(expected):
        raise invalid("exchange_price_mismatch",
                      f"the exchange SKU costs {_s(price)}, the original item {_s(expected)}; they must be equal",
                      {"sku_price": _s(price), "original_price": _s(expected)})
    return money.cny(price)


def _refund(order, data: dict, ctx: Context, *, by_arbitrator: bool = False) -> Effect:
    amount = money.cny(_require(data, "amount", "amount_required", "a refund needs an amount"))
    if amount <= 0:
        raise invalid("refund_not_positive", "the refund amount must be above 0.00")
    limit = money.refund_limit(goods(order), order.freight_to_return)
    # Refunds are irrevocable and add up (a merchant's refund, then an arbitrator's): together
    # they never exceed what was paid for the returned quantity plus the freight to return.
    already = order.refunded_amount or Decimal("0")
    if amount > limit - already:
        remaining = max(limit - already, Decimal("0"))
        raise invalid("refund_exceeds_paid",
                      f"the refund {_s(amount)} is above what was paid for the returned quantity plus the "
                      f"freight to return ({_s(limit)})"
                      + (f", of which {_s(already)} was already refunded" if already else ""),
                      {"limit": _s(limit), "already_refunded": _s(already), "remaining": _s(remaining)})
    full = amount >= goods(order)
    reason = data.get("reason") or ""
    remark = data.get("remark") or ""
    if not by_arbitrator and not reason.strip():
        raise invalid("reason_required", "a refund needs a reason")
    if not by_arbitrator and (not full or order.service_type == "exchange") and not remark.strip():
        raise invalid("remark_required", "a remark is required for a partial refund or when an exchange becomes a refund")
    executed_by = "platform" if by_arbitrator else EXECUTION[order.mode]["executed_by"]
    completed_by = "platform" if (by_arbitrator or order.mode == "platform") else "merchant"
    return Effect(
        changes={"refunded_amount": already + amount, "refund_completed_by": completed_by},
        details={"amount": _s(amount), "reason": reason, "remark": remark, "full": full,
                 "executed_by": executed_by, "completed_by": completed_by, "irrevocable": True,
                 "goods_amount": _s(goods(order)), "freight_to_return": _s(order.freight_to_return)},
    )


def _system_refund(order, kind: str) -> Effect:
    amount = goods(order)
    details = {"amount": _s(amount), "completed_by": "system", "executed_by": "platform", "kind": kind}
    if kind == "advance_compensation":
        details.update(goods_recovered=False, charged_to="merchant")
    return Effect(changes={"refunded_amount": amount, "refund_completed_by": "system"}, details=details)


def decide(order, action: str, data: dict, ctx: Context) -> Effect:
    fn = _RULES.get(action)
    if fn is None:
        return Effect(note=data.get("note"))
    return fn(order, data, ctx)


# ---------------------------------------------------------------- per-action rules
def _claim(order, data, ctx):
    return Effect(changes={"handler_id": ctx.actor_id}, details={"handler_id": ctx.actor_id})


def _assign(order, data, ctx):
    staff_id = _require(data, "staff_id", "staff_required", "name the staff member to assign")
    st = ctx.staff
    if st is None or not st.get("active", True):
        raise invalid("unknown_staff", f"no active staff member {staff_id} in this merchant")
    if "audit" not in st["permissions"]:
        raise invalid("staff_cannot_audit", f"{staff_id} has no audit permission")
    if order.category not in st["categories"]:
        raise invalid("staff_category_mismatch", f"{staff_id} does not handle category {order.category}")
    return Effect(changes={"handler_id": staff_id}, details={"handler_id": staff_id})


def _audit(decision: str):
    def rule(order, data, ctx):
        opinion = (data.get("opinion") or "").strip()
        files = data.get("attachments") or []
        if len(files) > MAX_ATTACHMENTS:
            raise invalid("too_many_attachments", f"at most {MAX_ATTACHMENTS} audit attachments")
        for f in files:
            if f["size"] >= MAX_ATTACHMENT_BYTES:
                raise invalid("attachment_too_large", f"{f['filename']} is {f['size']} bytes; the limit is under 800 KB")
        eff = Effect(changes={"audit_opinion": opinion or None, "audited_at": ctx.now, "customer_responded": False},
                     details={"decision": decision, "opinion": opinion,
                              "audit_seconds": int((ctx.now - order.created_at).total_seconds())},
                     note=opinion or None, attachments=files)
        if decision == "approve_return":
            eff.details.update(return_address=order.return_address, merchant_contact_phone=order.merchant_contact_phone,
                               return_freight_payer=order.return_freight_payer)
        elif decision == "resend_without_return":
            sku = _require(data, "sku", "sku_required", "name the SKU to send")
            price = _exchange_sku(order, sku, ctx)
            eff.exchange_sku = sku
            eff.changes.update(outcome="resend_without_return", exchange_sku=sku, processed_at=ctx.now)
            eff.details.update(sku=sku, unit_price=_s(price), quantity=order.quantity)
        elif decision == "abandon":
            if ctx.actor_party != "customer":
                _require(data, "note", "note_required", "abandoning on the customer's behalf needs a note of the conversation")
                eff.internal_note = data["note"]
        return eff
    return rule


def _feedback(order, data, ctx):
    text = _require(data, "text", "text_required", "the feedback needs a text")
    return Effect(changes={"customer_responded": True}, details={"evidence": data.get("evidence") or []}, note=text)


def _abandon(order, data, ctx):
    eff = Effect(note=data.get("reason"), details={"by": ctx.actor_party})
    if ctx.actor_party != "customer":
        eff.internal_note = _require(data, "note", "note_required",
                                     "abandoning on the customer's behalf needs a note of the conversation")
    return eff


def _fill_shipment(order, data, ctx):
    carrier = _require(data, "carrier", "carrier_required", "carrier is required")
    tracking = _require(data, "tracking_number", "tracking_required", "tracking number is required")
    freight = money.cny(data.get("freight_paid") or 0)
    if freight < 0:
        raise invalid("freight_negative", "freight cannot be negative")
    to_return = money.initial_freight_to_return(freight, order.problem_type, order.customer_level)
    return Effect(
        changes={"carrier": carrier, "tracking_number": tracking, "freight_declared": freight,
                 "freight_to_return": to_return, "shipment_filled_at": ctx.now},
        details={"carrier": carrier, "tracking_number": tracking, "freight_paid": _s(freight),
                 "freight_to_return": _s(to_return), "return_freight_payer": order.return_freight_payer,
                 "filled_by": ctx.actor_party, "merchant_contact_phone": order.merchant_contact_phone},
    )


def _remind(order, data, ctx):
    if order.last_reminded_at is not None and ctx.now - order.last_reminded_at < REMIND_INTERVAL:
        raise ApiError(429, "remind_rate_limited", "the customer was reminded less than 24 hours ago",
                       {"next_allowed_at": (order.last_reminded_at + REMIND_INTERVAL).isoformat()})
    return Effect(changes={"last_reminded_at": ctx.now}, details={"customer_phone": order.customer_phone})


def _receipt(order, data, ctx):
    condition = _require(data, "condition", "condition_required", "describe the received item's condition")
    ch = {"received_at": ctx.now, "receipt_condition": condition}
    if order.state == "arbitration":
        ch["locked_from"] = "pending_process"  # locked: freight stays as it is
    return Effect(changes=ch, note=data.get("note"),
                  details={"condition": condition, "registered_by": ctx.actor_party,
                           "receipt_seconds": int((ctx.now - (order.shipment_filled_at or order.created_at)).total_seconds())})


def _freight_edit(order, data, ctx):
    if order.arbitration_requested:
        raise ApiError(409, "freight_locked", "freight cannot be edited after arbitration was requested")
    amount = money.cny(_require(data, "freight_to_return", "freight_required", "freight_to_return is required"))
    if amount < 0:
        raise invalid("freight_negative", "freight cannot be negative")
    return Effect(changes={"freight_to_return": amount},
                  details={"freight_to_return": _s(amount), "previous": _s(order.freight_to_return)})


def _process(decision: str):
    def rule(order, data, ctx):
        common = {"processed_at": ctx.now, "outcome": decision}
        secs = int((ctx.now - (order.received_at or order.created_at)).total_seconds())
        if decision == "refund":
            eff = _refund(order, data, ctx)
        elif decision == "exchange":
            sku = _require(data, "sku", "sku_required", "name the exchange SKU")
            price = _exchange_sku(order, sku, ctx)
            eff = Effect(changes={"exchange_sku": sku}, exchange_sku=sku,
                         details={"sku": sku, "unit_price": _s(price), "quantity": order.quantity,
                                  "outbound_freight_payer": money.OUTBOUND_FREIGHT_PAYER})
        elif decision == "return_original":
            if data.get("customer_agreed_by_phone") is not True:
                raise invalid("customer_agreement_required", "return-original needs the customer's agreement by phone")
            note = _require(data, "note", "note_required", "return-original needs a note of the phone agreement")
            eff = Effect(note=note, details={"outbound_freight_payer": money.OUTBOUND_FREIGHT_PAYER})
        elif decision == "offline_exchange":
            tracking = _require(data, "tracking_number", "tracking_required", "offline exchange needs a tracking number")
            note = _require(data, "note", "note_required", "offline exchange needs a note")
            eff = Effect(note=note, details={"tracking_number": tracking})
        else:  # repair
            eff = Effect(note=data.get("note"), details={"repair": True})
        eff.changes.update(common)
        eff.changes["outcome_details"] = dict(eff.details)
        eff.details.update(decision=decision, processing_seconds=secs,
                           disposal=EXECUTION[order.mode]["disposal"], decided_by=ctx.actor_party)
        return eff
    return rule


def _process_in_unresolved(order, data, ctx):
    # An offline exchange while unresolved ends the order (docs/lifecycle.md).
    if order.state == "unresolved":
        tracking = _require(data, "tracking_number", "tracking_required", "offline exchange needs a tracking number")
        note = _require(data, "note", "note_required", "offline exchange needs a note")
        return Effect(note=note, details={"decision": "offline_exchange", "tracking_number": tracking},
                      changes={"outcome": "offline_exchange", "processed_at": ctx.now})
    return _process("offline_exchange")(order, data, ctx)


def _cancel_outcome(order, data, ctx):
    if order.outcome not in ("return_original", "offline_exchange"):
        raise ApiError(409, "outcome_not_cancellable",
                       f"only a return-original or offline-exchange outcome can be cancelled (this one: {order.outcome})")
    return Effect(changes={"outcome": None, "outcome_details": {}, "processed_at": None},
                  details={"cancelled": order.outcome}, note=data.get("note"))


def _message(order, data, ctx):
    return Effect(note=_require(data, "text", "text_required", "the message needs a text"))


def _mark_resolved(order, data, ctx):
    return Effect(note=_require(data, "note", "note_required", "note how the customer was contacted"))


def _rate(order, data, ctx):
    if order.rated:
        raise ApiError(409, "already_rated", "this order was already rated")
    stars = int(data["stars"])
    rec = data.get("recommend")
    r = {"stars": stars, "text": data.get("text") or "", "recommend": rec}
    return Effect(changes={"rated": True}, rating=r,
                  details={**r, "satisfied": stars >= 4})


def _exchange_shipped(order, data, ctx):
    if not order.exchange_sku:
        raise ApiError(409, "no_exchange_order", "this order has no exchange order")
    carrier = _require(data, "carrier", "carrier_required", "carrier is required")
    tracking = _require(data, "tracking_number", "tracking_required", "tracking number is required")
    return Effect(exchange_shipped={"carrier": carrier, "tracking_number": tracking},
                  details={"carrier": carrier, "tracking_number": tracking, "sku": order.exchange_sku})


def _repair_shipped(order, data, ctx):
    if order.outcome != "repair":
        raise ApiError(409, "no_repair", "this order was not decided as a repair")
    return Effect(details={"carrier": data.get("carrier"), "tracking_number": data.get("tracking_number")},
                  note=data.get("note"))


def _refund_paid(order, data, ctx):
    if not order.refunded_amount or order.refunded_amount <= 0:
        raise ApiError(409, "no_refund", "this order has no refund to pay out")
    if order.refund_paid_at is not None:
        raise ApiError(409, "refund_already_paid", "the refund was already confirmed paid")
    ref = _require(data, "payout_reference", "reference_required", "the payout reference is required")
    return Effect(changes={"refund_paid_at": ctx.now},
                  details={"amount": _s(order.refunded_amount), "payout_reference": ref})


def _arbitration_request(order, data, ctx):
    reason = _require(data, "reason", "reason_required", "say why arbitration is requested")
    return Effect(changes={"locked_from": order.state, "arbitration_requested": True},
                  details={"requested_by": ctx.actor_party, "reason": reason}, note=reason)


def _arbitration_decide(order, data, ctx):
    outcome = data.get("outcome")
    note = _require(data, "note", "note_required", "the arbitration decision needs a note")
    if outcome == "refund":
        eff = _refund(order, data, ctx, by_arbitrator=True)
    elif outcome == "exchange":
        sku = _require(data, "sku", "sku_required", "name the exchange SKU")
        price = _exchange_sku(order, sku, ctx)
        eff = Effect(changes={"exchange_sku": sku}, exchange_sku=sku, details={"sku": sku, "unit_price": _s(price)})
    elif outcome in ("return_original", "reject"):
        eff = Effect()
    else:
        raise invalid("bad_outcome", "outcome must be refund, exchange, return_original or reject")
    eff.note = note
    eff.changes.update(outcome=f"arbitration.{outcome}", locked_from=None, processed_at=ctx.now)
    eff.details.update(outcome=outcome, binding=True, locked_from=order.locked_from)
    return eff


_RULES = {
    "claim": _claim, "assign": _assign,
    **{f"audit.{d}": _audit(d) for d in ("resend_without_return", "approve_return", "request_feedback", "reject", "abandon")},
    "customer_feedback": _feedback, "abandon": _abandon, "fill_shipment": _fill_shipment,
    "remind_to_ship": _remind, "register_receipt": _receipt, "freight.edit": _freight_edit,
    **{f"process.{d}": _process(d) for d in ("refund", "exchange", "return_original", "repair")},
    "process.offline_exchange": _process_in_unresolved,
    "cancel_outcome": _cancel_outcome, "message": _message, "reply": _message, "mark_resolved": _mark_resolved,
    "rate": _rate, "exchange.shipped": _exchange_shipped, "repair.shipped_back": _repair_shipped,
    "refund.paid": _refund_paid, "arbitration.request": _arbitration_request, "arbitration.decide": _arbitration_decide,
    "system.auto_refund": lambda o, d, c: _system_refund(o, "auto_refund"),
    "system.advance_compensation": lambda o, d, c: _system_refund(o, "advance_compensation"),
}
