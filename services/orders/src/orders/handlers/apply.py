"""Application services of the orders service: one transaction each."""
from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
import weakref

import asyncpg
from sqlalchemy import func, select, text

from orders.adapters import direct
from orders.domain.eligibility import check_window
from orders.domain.modes import effective_mode, return_address
from orders.domain.money import cny, return_freight_payer
from orders.models import Merchant, ServiceOrder, Sku, TimelineEntry
from orders.schemas import ApplicationIn
from shared.clock import to_beijing
from shared.auth import Principal
from shared.contracts.orders import ServiceOrderCreated
from shared.errors import ApiError
from shared.events import make_envelope
from shared.runtime import Runtime

# States after which an order no longer holds quantity of its sales-order line.
RELEASING_STATES = ("rejected", "abandoned", "closed")


def _request_hash(body: ApplicationIn) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _new_number(now) -> str:
    return "AS" + to_beijing(now).strftime("%y%m%d") + f"{secrets.randbelow(10**8):08d}"


def _created_event(rt: Runtime, order, now):
    return make_envelope(type_="service_order.created", key=order.id, producer=rt.name, occurred_at=now,
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


def _check_quantity(body: ApplicationIn) -> None:
    if body.quantity > body.purchased_quantity:
        raise ApiError(422, "quantity_exceeds_purchase", "quantity is larger than the purchased quantity")


def _catalogue_category(body: ApplicationIn, has_catalogue: bool, sku_category: str | None) -> str:
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


def _check_window(rt: Runtime, body: ApplicationIn, category: str, now) -> None:
    """The eligibility window of the order's category (the catalogue's, see ``_catalogue_category``)."""
    window = check_window(body.service_type, body.problem_type, body.delivered_at, now,
                          category=category, overrides=rt.settings.eligibility_windows)
    if not window.allowed:
        raise ApiError(
            422,
            "window_expired" if now > window.deadline else "not_delivered",
            f"{body.service_type}/{body.problem_type} is open for {window.window_days} days after delivery "
            f"(until {to_beijing(window.deadline):%Y-%m-%d %H:%M} Beijing time)",
            {"window_days": window.window_days, "deadline": window.deadline.isoformat()},
        )


def _check_available(body: ApplicationIn, in_service) -> None:
    if body.quantity > body.purchased_quantity - int(in_service or 0):
        raise ApiError(
            422,
            "quantity_exceeds_available",
            f"only {body.purchased_quantity - int(in_service or 0)} of this line can still be applied for",
        )


def _order_fields(rt: Runtime, body: ApplicationIn, merchant, category: str, idempotency_key: str, digest: str,
                  now) -> dict:
    mode, on_behalf = effective_mode(merchant.mode, merchant.category_modes or {}, category,
                                     merchant.served_by_platform or merchant.disqualified_since is not None)
    return dict(
        id=str(uuid.uuid4()),
        number=_new_number(now),
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
        return_address=return_address(mode, merchant.return_address, rt.settings.platform_return_address),
        state_entered_at=now,
        return_freight_payer=return_freight_payer(body.problem_type, body.customer_level),
        armed={"advance_compensation": 1, "entered": 1},  # see handlers/lifecycle.py::ARMS, ENTERED
        # two places, as the column stores it: the answer, the event and the hot path's cached
        # copy say "199.00" for "199", like every later read
        **(body.model_dump() | {"amount_paid": cny(body.amount_paid), "category": category}),
    )


def _apply_timeline(order, now) -> dict:
    return dict(order_id=order.id, version=1, at=now, actor_role="storefront", actor_id=order.customer_id,
                action="apply", from_state="", to_state=order.state, note=order.description, internal_note=None,
                customer_visible=True, details={})


def line_lock_key(sales_order_id: str, order_line_id: str) -> int:
    """A signed 64-bit key naming one sales-order line (PostgreSQL advisory locks)."""
    digest = hashlib.blake2b(f"{sales_order_id}\x00{order_line_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# SQLite (one process, the embedded default): applications for one line wait for each other here.
_LINE_LOCKS: "weakref.WeakValueDictionary[int, asyncio.Lock]" = weakref.WeakValueDictionary()


def _sqlite_line_lock(key: int) -> asyncio.Lock:
    lock = _LINE_LOCKS.get(key)
    if lock is None:
        lock = _LINE_LOCKS[key] = asyncio.Lock()
    return lock


class _Collided(Exception):
    """The insert hit a unique key (same key raced in, order number taken): rolled back."""


async def _apply_direct(rt: Runtime, body: ApplicationIn, idempotency_key: str, digest: str, now):
    """PostgreSQL: in one transaction holding the line's advisory lock (so concurrent
    applications for one line are checked one after the other and the quantity in service
    never exceeds the purchase), the stored facts in one read, then the order, its timeline
    entry and its event in one statement. None when the key is already stored or an insert
    collided: the session path then answers."""
    async with direct.connection(rt) as conn:
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", line_lock_key(body.sales_order_id,
                                                                                     body.order_line_id))
                facts = await direct.application_facts(conn, body.customer_id, idempotency_key,
                                                       body.sales_order_id, body.order_line_id, RELEASING_STATES,
                                                       body.merchant_id, body.sku)
                if facts["existing"]:
                    return None
                _check_quantity(body)
                if facts["merchant"] is None:
                    raise ApiError(422, "unknown_merchant", f"merchant {body.merchant_id} is not onboarded")
                category = _catalogue_category(body, facts["has_catalogue"], facts["sku_category"])
                _check_window(rt, body, category, now)
                _check_available(body, facts["in_service"])
                order = direct.new_order(_order_fields(rt, body, direct.Merchant(facts), category, idempotency_key,
                                                       digest, now))
                event = _created_event(rt, order, now)
                try:
                    await direct.insert_rows(conn, [
                        ("service_orders", order.__dict__), ("timeline", _apply_timeline(order, now)),
                        ("outbox", direct.outbox_row(rt, event))])
                except asyncpg.exceptions.UniqueViolationError:
                    raise _Collided from None
        except _Collided:
            return None
    direct.cache_for(rt).put(order)
    rt.relay.wake()
    return order


async def apply_for_service(rt: Runtime, p: Principal, body: ApplicationIn,
                            idempotency_key: str) -> tuple[ServiceOrder, bool]:
    """Create a service order; returns (order, created). A retry with the same key returns the first order."""
    if p.customer_id != body.customer_id:
        raise ApiError(403, "customer_mismatch", "X-Customer-Id must name the customer who applies")
    now = rt.clock.now()
    digest = _request_hash(body)
    if direct.is_postgres(rt):
        order = await _apply_direct(rt, body, idempotency_key, digest, now)
        if order is not None:
            return order, True
    if rt.settings.is_sqlite:
        async with _sqlite_line_lock(line_lock_key(body.sales_order_id, body.order_line_id)):
            return await _apply_in_session(rt, body, idempotency_key, digest, now)
    return await _apply_in_session(rt, body, idempotency_key, digest, now)


async def _apply_in_session(rt: Runtime, body: ApplicationIn, idempotency_key: str, digest: str, now):
    async with rt.uow() as s:
        if not rt.settings.is_sqlite:  # the line's lock, held until commit (see _apply_direct)
            await s.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                            {"k": line_lock_key(body.sales_order_id, body.order_line_id)})
        existing = await s.scalar(
            select(ServiceOrder).where(
                ServiceOrder.customer_id == body.customer_id, ServiceOrder.idempotency_key == idempotency_key
            )
        )
        if existing is not None:
            if existing.request_hash != digest:
                raise ApiError(409, "idempotency_key_reused", "this Idempotency-Key was used for a different application")
            return existing, False
        _check_quantity(body)
        merchant = await s.get(Merchant, body.merchant_id)
        if merchant is None:
            raise ApiError(422, "unknown_merchant", f"merchant {body.merchant_id} is not onboarded")
        catalogue = (await s.execute(select(
            select(Sku.id).where(Sku.merchant_id == body.merchant_id).exists(),
            select(Sku.category).where(Sku.merchant_id == body.merchant_id, Sku.sku == body.sku).scalar_subquery(),
        ))).one()
        category = _catalogue_category(body, catalogue[0], catalogue[1])
        _check_window(rt, body, category, now)
        in_service = await s.scalar(
            select(func.coalesce(func.sum(ServiceOrder.quantity), 0)).where(
                ServiceOrder.sales_order_id == body.sales_order_id,
                ServiceOrder.order_line_id == body.order_line_id,
                ServiceOrder.state.not_in(RELEASING_STATES),
            )
        )
        _check_available(body, in_service)
        order = ServiceOrder(**_order_fields(rt, body, merchant, category, idempotency_key, digest, now))
        s.add(order)
        s.add(TimelineEntry(**_apply_timeline(order, now)))
        await s.flush()
        await rt.outbox.add_many(s, [_created_event(rt, order, now)])
    return order, True


