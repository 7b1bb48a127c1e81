"""The order store: the one port through which the orders use cases read and commit.

A handler opens a *unit* (``OrderStore.transition()`` for an action on an order,
``OrderStore.application(line)`` for an application), loads what the domain decides on, and
commits the decision in one transaction: the versioned order row, its timeline entry and side
records, and its events in the outbox. Both are optimistic: an action's write applies only if
the order still has the version it was decided on, an application's only if its sales-order
line still has the version read with its facts (``SalesLine``); otherwise nothing is written
and the handler decides again on fresh facts.

Two adapters implement it (docs/lifecycle.md § 6):

- ``adapters/session_store.py``: SQLAlchemy sessions, SQLite and PostgreSQL (and every
  consumer, whose inbox record shares the transaction);
- ``adapters/direct.py``: PostgreSQL through asyncpg, a decision committed in one statement.

What the units read is written once, here, as SQLAlchemy Core statements: the session
adapter executes them through the session, the direct adapter their compiled PostgreSQL
text on its connection. The services' own contract tests run every behaviour against the
configured adapter, and one test runs the same actions through both.
"""
from __future__ import annotations

import asyncio
import secrets
import weakref
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Mapping, Protocol, Sequence

from sqlalchemy import Select, and_, bindparam, exists, func, literal, select

from orders.domain.application import RELEASING_STATES, Application, ApplicationFacts
from orders.domain.decisions import Decision, Facts, FactsNeeded, Order
from orders.models import (Attachment, ExchangeOrder, Merchant, Rating, SalesLine, ServiceOrder, Sku, Staff,
                           TimelineEntry)

_SO = ServiceOrder.__table__
_SKU = Sku.__table__
_M = Merchant.__table__
_XO = ExchangeOrder.__table__
_SL = SalesLine.__table__

# The tables a decision writes, by name (``Decision.inserts`` / ``updates``).
TABLES = {t.name: t for t in (_SO, TimelineEntry.__table__, Rating.__table__, Attachment.__table__, _XO)}

ORDER_BY_ID = select(_SO).where(_SO.c.id == bindparam("order_id"))
CATALOGUE = select(_SKU.c.sku, _SKU.c.category, _SKU.c.price).where(
    _SKU.c.merchant_id == bindparam("merchant_id"),
    (_SKU.c.sku == bindparam("sku")) | (_SKU.c.sku == bindparam("order_sku")))
STAFF = select(Staff.permissions, Staff.categories, Staff.active).where(
    Staff.id == bindparam("staff_id"), Staff.merchant_id == bindparam("merchant_id"))
OPEN_EXCHANGE = select(_XO.c.id, _XO.c.created_at).where(_XO.c.order_id == bindparam("order_id"),
                                                          _XO.c.status == "created")
# Everything an application is checked against, in one read (the catalogue lookups use the
# (merchant, SKU) unique index).
APPLICATION_FACTS = select(
    select(_SO.c.id).where(_SO.c.customer_id == bindparam("customer_id"),
                           _SO.c.idempotency_key == bindparam("idempotency_key")).scalar_subquery().label("existing"),
    select(func.coalesce(func.sum(_SO.c.quantity), 0)).where(
        _SO.c.sales_order_id == bindparam("sales_order_id"), _SO.c.order_line_id == bindparam("order_line_id"),
        # one comparison per state, not an IN list (rendered per execution: see adapters/direct.py)
        and_(*(_SO.c.state != state for state in RELEASING_STATES))).scalar_subquery().label("in_service"),
    exists().where(_SKU.c.merchant_id == bindparam("merchant_id")).label("has_catalogue"),
    select(_SKU.c.category).where(_SKU.c.merchant_id == bindparam("merchant_id"),
                                  _SKU.c.sku == bindparam("sku")).scalar_subquery().label("sku_category"),
    _M.c.id.label("merchant"), _M.c.mode, _M.c.category_modes, _M.c.contact_phone, _M.c.return_address,
    _M.c.served_by_platform, _M.c.disqualified_since,
    select(_SL.c.version).where(
        _SL.c.sales_order_id == bindparam("sales_order_id"),
        _SL.c.order_line_id == bindparam("order_line_id")).scalar_subquery().label("line_version"),
).select_from(select(literal(1).label("one")).subquery("one").outerjoin(_M, _M.c.id == bindparam("merchant_id")))


class Collided(Exception):
    """The new order was not stored: another application for its line was stored since its
    facts were read (the line's version moved), or it hit a unique key (the same key raced in,
    or its number was taken). Deciding again on fresh facts answers it."""


class LineVersion:
    """The version of a sales-order line an application read with its facts, and the write
    that replaces it (``SalesLine``): a new random token, stored only where the line still
    holds ``read`` (0: no row yet, so the write creates it and any row created meanwhile
    makes it fail)."""

    __slots__ = ("sales_order_id", "order_line_id", "read", "new")

    def __init__(self, sales_order_id: str, order_line_id: str, read: int) -> None:
        self.sales_order_id = sales_order_id
        self.order_line_id = order_line_id
        self.read = read
        self.new = secrets.randbits(62) + 1  # never 0, which means "no row"

    def row(self, now: datetime) -> dict[str, Any]:
        return {"sales_order_id": self.sales_order_id, "order_line_id": self.order_line_id, "version": self.new,
                "updated_at": now}


# Applications for one line in this process take turns here, so they meet the line's version
# one after the other instead of colliding on it (a collision costs a second decision); the
# version is what checks them against other processes and replicas.
_LINE_TURNS: "weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock]" = weakref.WeakValueDictionary()


@asynccontextmanager
async def line_turn(sales_order_id: str, order_line_id: str) -> AsyncIterator[None]:
    key = (sales_order_id, order_line_id)
    lock = _LINE_TURNS.get(key)
    if lock is None:
        lock = _LINE_TURNS[key] = asyncio.Lock()
    async with lock:
        yield


class OrderUnit:
    """One unit of work of the port. The reads are here; an adapter supplies ``_rows`` (run
    one of the statements above) and the writes, ``commit`` and ``create``."""

    async def _rows(self, stmt: Select, params: dict[str, Any]) -> Sequence[Mapping[str, Any]]:
        raise NotImplementedError

    async def load(self, order_id: str) -> tuple[Order | None, bool]:
        """The order and whether it may be stale (a copy kept from earlier: a refusal or a lost
        version race decided on it is decided again on ``load_fresh``)."""
        return await self.load_fresh(order_id), False

    async def load_fresh(self, order_id: str) -> Order | None:
        rows = await self._rows(ORDER_BY_ID, {"order_id": order_id})
        return Order(**dict(rows[0].items())) if rows else None

    async def facts(self, order: Order, needs: FactsNeeded) -> Facts:
        facts = Facts()
        if needs.skus:
            rows = await self._rows(CATALOGUE, {"merchant_id": order.merchant_id, "sku": needs.skus[0],
                                                "order_sku": order.sku})
            facts.skus = {r["sku"]: (r["category"], r["price"]) for r in rows}
        if needs.staff_id:
            rows = await self._rows(STAFF, {"staff_id": needs.staff_id, "merchant_id": order.merchant_id})
            facts.staff = dict(rows[0].items()) if rows else None
        if needs.open_exchange:
            rows = await self._rows(OPEN_EXCHANGE, {"order_id": order.id})
            facts.open_exchange = dict(rows[0].items()) if rows else None
        return facts

    line: LineVersion | None = None  # set by ``application_facts``, written by ``create``

    async def application_facts(self, body, idempotency_key: str) -> ApplicationFacts:
        (row,) = await self._rows(APPLICATION_FACTS, {
            "customer_id": body.customer_id, "idempotency_key": idempotency_key,
            "sales_order_id": body.sales_order_id, "order_line_id": body.order_line_id,
            "merchant_id": body.merchant_id, "sku": body.sku})
        self.line = LineVersion(body.sales_order_id, body.order_line_id, row["line_version"] or 0)
        existing = await self.load_fresh(row["existing"]) if row["existing"] is not None else None
        merchant = None
        if row["merchant"] is not None:
            merchant = Order(**{k: row[k] for k in ("mode", "category_modes", "contact_phone", "return_address",
                                                    "served_by_platform", "disqualified_since")})
        return ApplicationFacts(existing=existing, in_service=int(row["in_service"] or 0), merchant=merchant,
                                has_catalogue=bool(row["has_catalogue"]), sku_category=row["sku_category"])

    async def commit(self, decision: Decision, events: list) -> bool:
        """Write the decision and its events (envelopes) atomically; False, writing nothing, when
        the order is no longer at ``decision.expected_version``."""
        raise NotImplementedError

    async def create(self, application: Application, events: list) -> None:
        """Store a new order with its timeline entry and events, and the new version of its line,
        if the line still has the version read with the facts; ``Collided`` (nothing stored)
        if it does not or on a unique key."""
        raise NotImplementedError

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a metric update) once the last ``commit`` is durable; here at once,
        for a unit whose every ``commit`` is its own transaction (the direct adapter's)."""
        action()


class OrderStore(Protocol):
    def transition(self) -> AbstractAsyncContextManager[OrderUnit]:
        """A unit for actions on orders (each ``commit`` is atomic on its own)."""

    def application(self, sales_order_id: str, order_line_id: str) -> AbstractAsyncContextManager[OrderUnit]:
        """A unit for one application: its facts, then ``create``, which stores the order only
        if no other application for the line was stored in between (the line's version), so
        the quantity in service never exceeds the purchase. Applications for one line in this
        process take turns (``line_turn``)."""

    async def close(self) -> None:
        """Release the store's own connections (when the service stops)."""
