"""The order store on SQLAlchemy sessions (SQLite and PostgreSQL; adapters/store.py).

A decision is written with Core statements in the session's transaction: the order's
``UPDATE … WHERE id AND version`` first (no row: the order moved on, nothing else is
written), then its rows, then its events through the shared outbox. An application's write
starts with its line's new version (``INSERT … ON CONFLICT DO UPDATE … WHERE version = read``;
no row: another application for the line was stored, the transaction is rolled back). A consumer's handler
(fired deadlines) commits through ``SessionUnit(session, …)`` on the consumer's own
session, so the inbox record, the change and its events are one transaction.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orders.adapters.store import TABLES, Collided, OrderUnit, line_turn
from orders.domain.application import Application
from orders.domain.decisions import Decision
from orders.models import SalesLine
from shared.metrics import after_commit
from shared.outbox import Outbox

_SO = TABLES["service_orders"]
# Built once: SQLAlchemy reuses their cache keys and compiled forms.
_UPDATE_ORDER = update(_SO).where(_SO.c.id == bindparam("b_id"), _SO.c.version == bindparam("b_version"))
_INSERT = {name: insert(table) for name, table in TABLES.items()}
_UPDATE_BY_ID = {name: update(table).where(table.c.id == bindparam("b_id"))
                 for name, table in TABLES.items() if "id" in table.c}
_SL = SalesLine.__table__


def _line_write(dialect):
    """The line's new version where it still holds the one read (``b_read``; see adapters/store.py)."""
    stmt = dialect.insert(_SL)
    return stmt.on_conflict_do_update(
        index_elements=[_SL.c.sales_order_id, _SL.c.order_line_id],
        set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
        where=_SL.c.version == bindparam("b_read")).returning(_SL.c.version)


_LINE_WRITE = {"postgresql": _line_write(postgresql), "sqlite": _line_write(sqlite)}


class SessionUnit(OrderUnit):
    def __init__(self, session: AsyncSession, outbox: Outbox) -> None:
        self.session = session
        self.outbox = outbox
        self.wrote_events = False

    async def _rows(self, stmt, params: dict[str, Any]):
        return (await self.session.execute(stmt, params)).mappings().all()

    async def commit(self, decision: Decision, events: list) -> bool:
        s = self.session
        result = await s.execute(_UPDATE_ORDER, {"b_id": decision.order.id, "b_version": decision.expected_version,
                                                 **decision.values})
        if result.rowcount != 1:
            return False
        for table, row in decision.inserts():
            await s.execute(_INSERT[table], row)
        for table, row_id, values in decision.updates():
            await s.execute(_UPDATE_BY_ID[table], {"b_id": row_id, **values})
        await self.outbox.add_many(s, events)
        self.wrote_events = self.wrote_events or bool(events)
        return True

    def after_commit(self, action: Callable[[], None]) -> None:
        # the session's transaction (a consumer's included) may still roll back: at its commit
        after_commit(self.session, action)

    async def create(self, application: Application, events: list) -> None:
        s = self.session
        line = (await s.execute(_LINE_WRITE[s.bind.dialect.name],
                                {**self.line.row(application.order.created_at), "b_read": self.line.read})).first()
        if line is None:
            raise Collided
        try:
            await s.execute(_INSERT["service_orders"], vars(application.order))
        except IntegrityError:
            raise Collided from None
        await self.session.execute(_INSERT["timeline"], application.timeline)
        await self.outbox.add_many(self.session, events)
        self.wrote_events = self.wrote_events or bool(events)


class SessionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Outbox, *,
                 after_commit: Callable[[], None]) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.after_commit = after_commit  # wakes the outbox relay

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[SessionUnit]:
        async with self.sessions() as s:
            unit = SessionUnit(s, self.outbox)
            async with s.begin():
                yield unit
            if unit.wrote_events:
                self.after_commit()

    def transition(self):
        return self._transaction()

    async def close(self) -> None:
        """Nothing of its own: the sessions' engine is the runtime's."""

    @asynccontextmanager
    async def application(self, sales_order_id: str, order_line_id: str) -> AsyncIterator[SessionUnit]:
        async with line_turn(sales_order_id, order_line_id), self._transaction() as unit:
            yield unit
