"""Reading orders: the customer's progress view, the merchant/platform detail, search with counts."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select

from orders.domain.access import can_see, not_found
from orders.domain.decisions import ENTERED
from orders.domain.states import allowed_actions
from orders.handlers.armed_deadlines import STATE_DEADLINE
from orders.models import Attachment, ExchangeOrder, OrderDeadline, Rating, ServiceOrder, TimelineEntry
from shared.auth import Principal
from shared.clock import to_beijing

# Expected completion of the current step while the sla-timer has not reported the deadline it
# armed (or arms none): the default durations, from when the state was entered.
STATE_SLA = {
    "pending_claim": timedelta(hours=12), "pending_audit": timedelta(hours=12),
    "awaiting_customer_feedback": timedelta(days=15), "awaiting_return_shipment": timedelta(days=30),
    "awaiting_receipt": timedelta(days=15), "pending_process": timedelta(hours=48),
    "provisionally_completed": timedelta(days=7), "unresolved": timedelta(hours=48),
}
WAITING_FOR_CUSTOMER = {"awaiting_customer_feedback", "awaiting_return_shipment", "provisionally_completed"}


_LOAD = select(ServiceOrder).where(ServiceOrder.id == bindparam("oid"))


async def load_visible(s, p: Principal, order_id: str) -> ServiceOrder:
    order = await s.scalar(_LOAD, {"oid": order_id})
    if order is None or not can_see(p, order):
        raise not_found(order_id)
    return order


def current_handler(o: ServiceOrder) -> str:
    if o.state == "arbitration":
        return "platform_arbitration"
    if o.state in WAITING_FOR_CUSTOMER:
        return "customer"
    if o.state in ("completed", "rejected", "abandoned", "closed", "refunded_by_system"):
        return "none"
    if o.mode == "platform" or (o.state == "awaiting_receipt" and o.mode == "customer_contact"):
        return "platform"
    return o.handler_id or "merchant_pool"


def expected_completion(o: ServiceOrder, armed: OrderDeadline | None = None) -> datetime | None:
    """When the current step ends: the due time of the deadline the sla-timer armed for it
    (``armed``, overrides applied) if that deadline belongs to this stay in the state — armed by
    the transition that entered it (the audit deadline: at creation, once) — else the default
    estimate. A deadline of an earlier stay (a receipt's 48 h before a cancelled outcome brought
    the order back to ``pending_process``) does not count."""
    if armed is not None and armed.rule == STATE_DEADLINE.get(o.state):
        entered = 1 if o.state in ("pending_claim", "pending_audit") else (o.armed or {}).get(ENTERED)
        if entered is not None and armed.order_version >= entered:
            return armed.due_at
    sla = STATE_SLA.get(o.state)
    if sla is None or o.state_entered_at is None:
        return None
    base = o.created_at if o.state in ("pending_claim", "pending_audit") else o.state_entered_at
    return base + sla


def _entry(e: TimelineEntry, internal: bool) -> dict:
    d = {"at": e.at.isoformat(), "at_beijing": to_beijing(e.at).strftime("%Y-%m-%d %H:%M:%S"), "action": e.action,
         "actor_role": e.actor_role, "from_state": e.from_state, "to_state": e.to_state, "note": e.note}
    if internal:
        d.update(actor_id=e.actor_id, internal_note=e.internal_note, customer_visible=e.customer_visible,
                 details=e.details, version=e.version)
    else:
        d["details"] = {k: v for k, v in (e.details or {}).items() if k in CUSTOMER_DETAIL_KEYS}
    return d


CUSTOMER_DETAIL_KEYS = {"decision", "opinion", "return_address", "carrier", "tracking_number", "amount", "sku",
                        "freight_paid", "outcome", "stars"}


def summary(o: ServiceOrder) -> dict:
    return {"id": o.id, "number": o.number, "state": o.state, "version": o.version, "merchant_id": o.merchant_id,
            "customer_id": o.customer_id, "sku": o.sku, "category": o.category, "quantity": o.quantity,
            "amount_paid": str(o.amount_paid), "service_type": o.service_type, "problem_type": o.problem_type,
            "mode": o.mode, "handler_id": o.handler_id, "customer_responded": o.customer_responded,
            "created_at": o.created_at.isoformat(), "updated_at": o.updated_at.isoformat()}


def brief(o: ServiceOrder, p: Principal) -> dict:
    """What an action answers: the order's new state without re-reading its records."""
    exp = expected_completion(o)
    out = {**summary(o), "current_handler": current_handler(o), "allowed_actions": allowed_actions(o.state),
           "expected_completion": exp.isoformat() if exp else None, "refunded_amount": str(o.refunded_amount),
           "outcome": o.outcome, "audit_opinion": o.audit_opinion}
    if p.role != "storefront":
        out.update(freight_to_return=str(o.freight_to_return), locked_from=o.locked_from,
                   return_freight_payer=o.return_freight_payer)
    return out


async def view(rt, p: Principal, order_id: str) -> dict:
    async with rt.sessions() as s:
        o = await load_visible(s, p, order_id)
        internal = p.role != "storefront"
        q = select(TimelineEntry).where(TimelineEntry.order_id == o.id).order_by(TimelineEntry.id)
        if not internal:
            q = q.where(TimelineEntry.customer_visible.is_(True))
        timeline = (await s.scalars(q)).all()
        xos = (await s.scalars(select(ExchangeOrder).where(ExchangeOrder.order_id == o.id))).all()
        rating = await s.get(Rating, o.id)
        atts = (await s.scalars(select(Attachment).where(Attachment.order_id == o.id))).all() if internal else []
        rule = STATE_DEADLINE.get(o.state)
        armed = await s.get(OrderDeadline, (o.id, rule)) if rule else None
    exp = expected_completion(o, armed)
    out = {
        **summary(o),
        "current_handler": current_handler(o),
        "expected_completion": exp.isoformat() if exp else None,
        "allowed_actions": allowed_actions(o.state),
        "audit_opinion": o.audit_opinion,
        "return_address": o.return_address if o.state != "pending_claim" else None,
        "shipment": {"carrier": o.carrier, "tracking_number": o.tracking_number,
                     "freight_paid": str(o.freight_declared) if o.freight_declared is not None else None},
        "refunded_amount": str(o.refunded_amount),
        "outcome": o.outcome,
        "exchange_orders": [{"id": x.id, "sku": x.sku, "status": x.status, "carrier": x.carrier,
                             "tracking_number": x.tracking_number} for x in xos],
        "rating": {"stars": rating.stars, "text": rating.text, "recommend": rating.recommend} if rating else None,
        "timeline": [_entry(e, internal) for e in timeline],
    }
    if internal:
        out.update(freight_to_return=str(o.freight_to_return), return_freight_payer=o.return_freight_payer,
                   locked_from=o.locked_from, arbitration_requested=o.arbitration_requested,
                   receipt_condition=o.receipt_condition, customer_phone=o.customer_phone,
                   sales_order_id=o.sales_order_id, outcome_details=o.outcome_details, on_behalf=o.on_behalf,
                   attachments=[{"id": a.id, "filename": a.filename, "size": a.size, "content_type": a.content_type}
                                for a in atts])
    return out


async def search(rt, p: Principal, f: dict, limit: int, offset: int) -> dict:
    conds = []
    if p.is_merchant:
        conds.append(ServiceOrder.merchant_id == p.merchant_id)
        if p.role == "merchant_staff":
            conds.append(ServiceOrder.category.in_(sorted(p.categories) or [""]))
    elif f.get("merchant_id"):
        conds.append(ServiceOrder.merchant_id == f["merchant_id"])
    col = {"category": ServiceOrder.category, "sku": ServiceOrder.sku, "sales_order_id": ServiceOrder.sales_order_id,
           "tracking_number": ServiceOrder.tracking_number, "handler_id": ServiceOrder.handler_id,
           "customer_phone": ServiceOrder.customer_phone, "customer_responded": ServiceOrder.customer_responded}
    for k, c in col.items():
        if f.get(k) is not None:
            conds.append(c == f[k])
    if f.get("created_from"):
        conds.append(ServiceOrder.created_at >= f["created_from"])
    if f.get("created_to"):
        conds.append(ServiceOrder.created_at < f["created_to"])
    async with rt.sessions() as s:
        counts = dict((await s.execute(select(ServiceOrder.state, func.count()).where(*conds)
                                       .group_by(ServiceOrder.state))).all())
        if f.get("state"):
            conds.append(ServiceOrder.state == f["state"])
        total = await s.scalar(select(func.count()).select_from(ServiceOrder).where(*conds))
        rows = (await s.scalars(select(ServiceOrder).where(*conds).order_by(ServiceOrder.created_at.desc(),
                                                                            ServiceOrder.id)
                                .limit(limit).offset(offset))).all()
    return {"total": total, "limit": limit, "offset": offset, "counts_by_state": counts,
            "items": [summary(o) for o in rows if can_see(p, o)]}


async def attachment(rt, p: Principal, order_id: str, att_id: str) -> tuple[Attachment, bytes]:
    from shared.errors import ApiError

    async with rt.sessions() as s:
        await load_visible(s, p, order_id)
        a = await s.get(Attachment, att_id)
    if a is None or a.order_id != order_id:
        raise ApiError(404, "attachment_not_found", f"no attachment {att_id}")
    return a, await rt.blobstore.get(a.blob_key)
