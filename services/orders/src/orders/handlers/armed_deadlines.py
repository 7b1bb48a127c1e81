"""Consumer of ``sla.deadlines_armed``: the due times the sla-timer armed for an order (its
merchant's or category's overrides and the business calendar applied), kept per rule — the
latest arming wins, a late copy of an older one changes nothing — for the expected completion
of the progress view (handlers/queries.py::expected_completion). Only the rules that end a
step the customer waits on are kept."""
from __future__ import annotations

from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from orders.models import OrderDeadline
from shared.bulk import BulkWrite
from shared.consumer import batched
from shared.contracts.sla import DeadlinesArmed

# state → the rule whose deadline ends that step (the sla-timer's rule names)
STATE_DEADLINE = {
    "pending_claim": "audit_deadline", "pending_audit": "audit_deadline",
    "awaiting_customer_feedback": "feedback_timeout", "awaiting_return_shipment": "ship_back_timeout",
    "awaiting_receipt": "auto_refund", "pending_process": "processing_penalty",
    "provisionally_completed": "customer_confirmation",
}
SHOWN_RULES = frozenset(STATE_DEADLINE.values())
TABLE = OrderDeadline.__table__
_upsert = sqlite_insert(TABLE)
# A row replaced only by an arming of the same or a later order version; one statement on
# PostgreSQL whatever the number of rows (shared/bulk.py), an executemany on SQLite.
_WRITE = BulkWrite(
    TABLE, ("order_id", "rule", "due_at", "order_version"),
    pg_suffix="ON CONFLICT (order_id, rule) DO UPDATE SET due_at = EXCLUDED.due_at, "
              "order_version = EXCLUDED.order_version WHERE order_deadlines.order_version <= EXCLUDED.order_version",
    portable=_upsert.on_conflict_do_update(
        index_elements=[TABLE.c.order_id, TABLE.c.rule],
        set_={"due_at": _upsert.excluded.due_at, "order_version": _upsert.excluded.order_version},
        where=TABLE.c.order_version <= _upsert.excluded.order_version))


def _rows(items) -> list[dict]:
    latest: dict[tuple[str, str], dict] = {}
    for data in items:
        for d in data.deadlines:
            if d.rule not in SHOWN_RULES:
                continue
            key = (data.order_id, d.rule)
            old = latest.get(key)
            if old is None or old["order_version"] <= data.order_version:
                latest[key] = {"order_id": data.order_id, "rule": d.rule, "due_at": d.due_at,
                               "order_version": data.order_version}
    return list(latest.values())


async def record(session, items) -> None:
    """Upsert the shown deadlines of these events: one statement, a row replaced only by an
    arming of the same or a later order version."""
    await _WRITE(session, _rows(items))


def armed_handlers(rt):
    async def one(session, env, data: DeadlinesArmed) -> None:
        await record(session, [data])

    async def many(session, items) -> None:
        await record(session, [data for _, data in items])

    return {"sla.deadlines_armed": batched(one, many)}


__all__ = ["STATE_DEADLINE", "armed_handlers", "record"]
