"""Performing an action on a service order: one transaction, one timeline entry, one event."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from orders.adapters import direct
from orders.adapters.order_writes import insert_row, update_order
from orders.domain import actions as rules
from orders.domain.access import can_see, check_action, not_found, party_of
from orders.domain.modes import EXECUTION
from orders.domain.states import target
from orders.handlers.events import transitioned
from orders.models import Attachment, ExchangeOrder, ServiceOrder, Sku, Staff
from shared.auth import Principal
from shared.contracts.orders import ExchangeOrderCreated
from shared.errors import ApiError
from shared.events import make_envelope

# Which deadline each transition arms (the timer's order_version is the version of that event).
ARMS = {
    "audit.request_feedback": "feedback",
    "audit.approve_return": "ship_back",
    "fill_shipment": "auto_refund",
}
ARM_FOR_STATE = {"provisionally_completed": "auto_confirm"}
# ``armed[ENTERED]``: the version of the transition that entered the current state. A deadline
# the sla-timer armed at that version is the one ending this step (handlers/queries.py).
ENTERED = "entered"


def conflict() -> ApiError:
    return ApiError(409, "version_conflict", "the order changed meanwhile; reload it and retry")


# Statements built once: SQLAlchemy then reuses their cache keys and compiled forms
# instead of rebuilding them on every request.
_LOAD = select(ServiceOrder).where(ServiceOrder.id == bindparam("oid"))
_LOAD_FOR_UPDATE = _LOAD.with_for_update()


async def load_visible(s, p: Principal, order_id: str, *, for_update: bool = False) -> ServiceOrder:
    q = _LOAD_FOR_UPDATE if for_update and s.bind.dialect.name == "postgresql" else _LOAD
    order = await s.scalar(q, {"oid": order_id})
    if order is None or not can_see(p, order):
        raise not_found(order_id)
    return order


async def _context(s, order: ServiceOrder, action: str, data: dict, party: str, actor_id: str, now) -> rules.Context:
    ctx = rules.Context(now=now, actor_party=party, actor_id=actor_id)
    if action in ("audit.resend_without_return", "process.exchange", "arbitration.decide") and data.get("sku"):
        rows = await s.execute(select(Sku.sku, Sku.category, Sku.price).where(
            Sku.merchant_id == order.merchant_id, Sku.sku.in_({data["sku"], order.sku})))
        ctx.skus = {r.sku: (r.category, r.price) for r in rows}
    if action == "assign" and data.get("staff_id"):
        st = await s.get(Staff, data["staff_id"])
        if st is not None and st.merchant_id == order.merchant_id:
            ctx.staff = {"permissions": st.permissions, "categories": st.categories, "active": st.active}
    return ctx


def _new_values(order, action: str, eff: rules.Effect, from_state: str, to_state: str, now: datetime) -> dict:
    """The order's columns after the transition (its next version included)."""
    expected = order.version
    values = dict(eff.changes)
    values["state"] = to_state
    if to_state != from_state:
        values["state_entered_at"] = now
    values["updated_at"] = now
    values["version"] = expected + 1
    arm = ARMS.get(action) or (ARM_FOR_STATE.get(to_state) if to_state != from_state else None)
    if arm or to_state != from_state:
        armed = dict(order.armed or {})
        if arm:
            armed[arm] = expected + 1
        if to_state != from_state:
            armed[ENTERED] = expected + 1
        values["armed"] = armed
    return values


def _timeline_row(order, action: str, eff: rules.Effect, from_state: str, to_state: str, actor_role: str,
                  actor_id: str, now: datetime, details: dict) -> dict:
    return {"order_id": order.id, "version": order.version, "at": now, "actor_role": actor_role,
            "actor_id": actor_id, "action": action, "from_state": from_state, "to_state": to_state,
            "note": eff.note, "internal_note": eff.internal_note,
            "customer_visible": action not in rules.INTERNAL_ACTIONS, "details": details}


async def apply_action(rt, s, order: ServiceOrder, action: str, data: dict, *, actor_role: str, actor_id: str,
                       party: str, now: datetime, expected_version: int | None = None) -> ServiceOrder:
    """Validate with the rules, then write the change, its timeline entry and its event.

    Any flush may find the order's version moved on (another writer won): 409 ``version_conflict``."""
    direct.forget(rt, order.id)  # the hot path's cached copy will be stale
    try:
        return await _apply(rt, s, order, action, data, actor_role=actor_role, actor_id=actor_id, party=party,
                            now=now, expected_version=expected_version)
    except StaleDataError:
        raise conflict() from None


async def _apply(rt, s, order: ServiceOrder, action: str, data: dict, *, actor_role: str, actor_id: str,
                 party: str, now: datetime, expected_version: int | None) -> ServiceOrder:
    if expected_version is not None and expected_version != order.version:
        raise conflict()
    to_state = target(order.state, action, data.get("outcome"))
    if to_state is None:
        raise ApiError(422, "bad_outcome", "no such arbitration outcome")
    ctx = await _context(s, order, action, data, party, actor_id, now)
    eff = rules.decide(order, action, data, ctx)
    from_state = order.state
    if action == "register_receipt" and from_state == "arbitration":
        to_state = "arbitration"
    # The order row is written with one UPDATE that checks the version (not an ORM flush,
    # which costs several times more CPU for the same statement) and the loaded object is
    # brought up to date as committed state, so no second write happens at commit.
    expected = order.version
    values = _new_values(order, action, eff, from_state, to_state, now)
    if not await update_order(s, order.id, expected, values):
        raise StaleDataError(f"service order {order.id} is no longer at version {expected}")
    for k, v in values.items():
        set_committed_value(order, k, v)
    details = dict(eff.details)
    events = []  # written to the outbox together, in this order, in one statement
    if eff.attachments:
        store = rt.blobstore
        ids = []
        for f in eff.attachments:
            att_id = str(uuid.uuid4())
            await store.put(att_id, f["content"])
            s.add(Attachment(id=att_id, order_id=order.id, filename=f["filename"], content_type=f["content_type"],
                             size=f["size"], blob_key=att_id, uploaded_by=actor_id, created_at=now))
            ids.append(att_id)
        details["attachment_count"] = len(ids)
    if eff.exchange_sku:
        xo = ExchangeOrder(id=str(uuid.uuid4()), order_id=order.id, sku=eff.exchange_sku, quantity=order.quantity,
                           unit_price=rules.money.cny(details.get("unit_price", "0")),
                           auto_approved=EXECUTION[order.mode]["exchange_auto_approved"], status="created",
                           created_at=now)
        s.add(xo)
        details.update(exchange_order_id=xo.id, exchange_auto_approved=xo.auto_approved)
        events.append(make_envelope(
            type_="exchange_order.created", key=order.id, producer=rt.name, occurred_at=now,
            data=ExchangeOrderCreated(exchange_order_id=xo.id, order_id=order.id, number=order.number,
                                      merchant_id=order.merchant_id, customer_id=order.customer_id, sku=xo.sku,
                                      quantity=xo.quantity, unit_price=xo.unit_price, auto_approved=xo.auto_approved,
                                      source=action, created_at=now)))
    if eff.exchange_shipped:
        xo = await s.scalar(select(ExchangeOrder).where(ExchangeOrder.order_id == order.id,
                                                        ExchangeOrder.status == "created"))
        if xo is None:
            raise ApiError(409, "exchange_already_shipped", "the exchange order was already shipped")
        xo.status, xo.shipped_at = "shipped", now
        xo.carrier, xo.tracking_number = eff.exchange_shipped["carrier"], eff.exchange_shipped["tracking_number"]
        details.update(exchange_order_id=xo.id,
                       shipping_seconds=int((now - xo.created_at).total_seconds()))
    if eff.rating:
        await insert_row(s, "ratings", {"order_id": order.id, "stars": eff.rating["stars"],
                                        "text": eff.rating["text"], "recommend": eff.rating["recommend"],
                                        "created_at": now})
    if eff.note:
        details.setdefault("note", eff.note)
    await insert_row(s, "timeline", _timeline_row(order, action, eff, from_state, to_state, actor_role, actor_id,
                                                  now, details))
    events.append(transitioned(rt, order, action=action, from_state=from_state, actor_role=actor_role,
                               actor_id=actor_id, at=now, details=details))
    await rt.outbox.add_many(s, events)
    if s.new or s.dirty:  # attachments, exchange orders
        await s.flush()
    return order


# Actions whose rules need more than the order (catalogue, staff) or write more than the
# order row, its timeline entry, its rating and its events (attachments, exchange orders):
# these take the session path below on every database.
_SESSION_ONLY = frozenset({"assign", "audit.resend_without_return", "process.exchange", "arbitration.decide",
                           "exchange.shipped"})


async def perform(rt, p: Principal, order_id: str, action: str, data: dict,
                  expected_version: int | None = None) -> ServiceOrder:
    if action not in _SESSION_ONLY and not data.get("attachments") and direct.is_postgres(rt):
        return await _perform_direct(rt, p, order_id, action, data, expected_version)
    now = rt.clock.now()
    try:
        async with rt.uow() as s:
            order = await load_visible(s, p, order_id, for_update=False)
            check_action(p, order, action)
            return await apply_action(rt, s, order, action, data, actor_role=p.role, actor_id=p.customer_id
                                      if p.role == "storefront" else p.subject, party=party_of(p), now=now,
                                      expected_version=expected_version)
    except StaleDataError:
        raise conflict() from None


async def _perform_direct(rt, p: Principal, order_id: str, action: str, data: dict,
                          expected_version: int | None):
    """``perform`` on PostgreSQL: the order from this process's cache or one SELECT, the
    same rules, one atomic write (adapters/direct.py). A refusal or a lost version race
    on a cached copy is re-decided once on a fresh read (the copy may be stale)."""
    now = rt.clock.now()
    actor_role = p.role
    actor_id = p.customer_id if actor_role == "storefront" else p.subject
    party = party_of(p)
    cache = direct.cache_for(rt)
    async with direct.connection(rt) as conn:
        cached = cache.get(order_id)
        while True:
            order = cached if cached is not None else await direct.load_order(conn, order_id)
            try:
                written = await _decide_and_write(rt, conn, p, order_id, order, action, data, expected_version,
                                                  now=now, actor_role=actor_role, actor_id=actor_id, party=party)
            except ApiError:
                cache.forget(order_id)
                if cached is None:
                    raise
                cached = None
                continue
            except BaseException:
                cache.forget(order_id)
                raise
            if written:
                break
            cache.forget(order_id)
            if cached is None:
                raise conflict()
            cached = None
    cache.put(order)
    rt.relay.wake()
    return order


async def _decide_and_write(rt, conn, p: Principal, order_id: str, order, action: str, data: dict,
                            expected_version: int | None, *, now: datetime, actor_role: str, actor_id: str,
                            party: str) -> bool:
    if order is None or not can_see(p, order):
        raise not_found(order_id)
    check_action(p, order, action)
    if expected_version is not None and expected_version != order.version:
        raise conflict()
    to_state = target(order.state, action, data.get("outcome"))
    if to_state is None:
        raise ApiError(422, "bad_outcome", "no such arbitration outcome")
    eff = rules.decide(order, action, data, rules.Context(now=now, actor_party=party, actor_id=actor_id))
    if eff.attachments or eff.exchange_sku or eff.exchange_shipped:  # pragma: no cover - see _SESSION_ONLY
        raise RuntimeError(f"{action} writes more than the direct path does")
    from_state = order.state
    if action == "register_receipt" and from_state == "arbitration":
        to_state = "arbitration"
    expected = order.version
    values = _new_values(order, action, eff, from_state, to_state, now)
    order.__dict__.update(values)
    details = dict(eff.details)
    if eff.note:
        details.setdefault("note", eff.note)
    rating = None
    if eff.rating:
        rating = {"order_id": order.id, "stars": eff.rating["stars"], "text": eff.rating["text"],
                  "recommend": eff.rating["recommend"], "created_at": now}
    event = transitioned(rt, order, action=action, from_state=from_state, actor_role=actor_role,
                         actor_id=actor_id, at=now, details=details)
    return await direct.write_transition(
        conn, order.id, expected, values,
        _timeline_row(order, action, eff, from_state, to_state, actor_role, actor_id, now, details),
        rating, [direct.outbox_row(rt, event)])


async def perform_batch(rt, p: Principal, order_ids: list[str], action: str, data: dict) -> list[dict]:
    """Each order in its own transaction: one failure does not undo the others."""
    results = []
    for oid in order_ids:
        try:
            o = await perform(rt, p, oid, action, data)
            results.append({"id": oid, "ok": True, "state": o.state, "version": o.version})
        except ApiError as e:
            results.append({"id": oid, "ok": False, "error": {"code": e.code, "message": e.message}})
    return results
