"""How events change the console's read model: pure functions, no I/O.

``fold_orders`` takes the stored rows of the orders a batch touches and the batch's order
events (log order) and answers the new rows and the counter deltas; the store writes them
in one transaction. Events of one order arrive in order (one key, one partition); a
redelivered or stale event (a version not above the stored one) changes nothing, so the
counters stay exact under at-least-once delivery (the inbox drops exact duplicates first).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from shared.contracts.vocabulary import TERMINAL_STATES

ORDER_CREATED = "service_order.created"
ORDER_TRANSITIONED = "service_order.transitioned"
DEADLINE_FIRED = "sla.deadline_fired"
ROUTING_DECIDED = "routing.decided"
ROUTING_TRANSFERRED = "routing.transferred"
HANDLED = (ORDER_CREATED, ORDER_TRANSITIONED, DEADLINE_FIRED, ROUTING_DECIDED, ROUTING_TRANSFERRED)


def is_open(state: str) -> bool:
    return state not in TERMINAL_STATES


def hour_of(t: datetime) -> datetime:
    """The UTC hour an instant falls in (Beijing has no daylight saving: its hours are UTC's)."""
    return t.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Order:
    order_id: str
    number: str
    merchant_id: str
    state: str
    mode: str
    service_type: str
    category: str
    version: int
    created_at: datetime
    entered_state_at: datetime
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        return is_open(self.state)


@dataclass
class OrderChanges:
    """What a batch of order events does: rows to write and counter deltas."""

    rows: dict[str, Order] = field(default_factory=dict)
    new_ids: set[str] = field(default_factory=set)  # rows the store did not have
    state_counts: Counter = field(default_factory=Counter)  # (state, mode) -> delta
    opened: Counter = field(default_factory=Counter)  # hour -> delta
    closed: Counter = field(default_factory=Counter)  # hour -> delta
    merchant_open: Counter = field(default_factory=Counter)  # merchant -> delta
    merchant_total: Counter = field(default_factory=Counter)  # merchant -> delta


def _new(ch: OrderChanges, o: Order, closed_at: datetime | None) -> None:
    ch.rows[o.order_id] = o
    ch.new_ids.add(o.order_id)
    ch.state_counts[(o.state, o.mode)] += 1
    ch.opened[hour_of(o.created_at)] += 1
    ch.merchant_total[o.merchant_id] += 1
    if o.is_open:
        ch.merchant_open[o.merchant_id] += 1
    elif closed_at is not None:
        ch.closed[hour_of(closed_at)] += 1


def fold_orders(stored: dict[str, Order], events: list[tuple[str, object]]) -> OrderChanges:
    """``events``: (type, data) of ``service_order.created`` / ``service_order.transitioned``."""
    ch = OrderChanges()
    current = dict(stored)
    for kind, d in events:
        if kind == ORDER_CREATED:
            if d.order_id in current:
                continue  # already known (a redelivery, or its transitions came first)
            o = Order(d.order_id, d.number, d.merchant_id, str(d.state), d.mode, d.service_type, d.category,
                      d.version, d.created_at, d.created_at, d.created_at)
            current[o.order_id] = o
            _new(ch, o, None)
            continue
        if kind != ORDER_TRANSITIONED:
            continue
        to_state = str(d.to_state)
        old = current.get(d.order_id)
        if old is None:
            snap = d.order
            o = Order(d.order_id, d.number, snap.merchant_id, to_state, snap.mode, snap.service_type, snap.category,
                      d.version, snap.created_at, d.occurred_at, d.occurred_at)
            current[o.order_id] = o
            _new(ch, o, d.occurred_at)
            continue
        if d.version <= old.version:
            continue  # stale or redelivered
        moved = to_state != old.state
        new = replace(old, state=to_state, version=d.version, updated_at=d.occurred_at,
                      entered_state_at=d.occurred_at if moved else old.entered_state_at)
        if moved:
            ch.state_counts[(old.state, old.mode)] -= 1
            ch.state_counts[(new.state, new.mode)] += 1
            if old.is_open and not new.is_open:
                ch.closed[hour_of(d.occurred_at)] += 1
                ch.merchant_open[old.merchant_id] -= 1
            elif not old.is_open and new.is_open:
                ch.merchant_open[old.merchant_id] += 1
        current[new.order_id] = new
        ch.rows[new.order_id] = new
    return ch


def fired_row(d) -> dict:
    """A ``sla.deadline_fired`` as a row of ``fired_deadlines``."""
    details = d.details or {}
    level = details.get("level")
    return {"timer_id": d.timer_id, "order_id": d.order_id, "rule": d.rule, "action": d.action,
            "level": level if isinstance(level, int) else None,
            "to": str(details["to"])[:60] if details.get("to") is not None else None,
            "indicator": str(details["indicator"])[:20] if details.get("indicator") is not None else None,
            "order_state": str(d.order_state), "order_version": d.order_version,
            "due_at": d.due_at, "fired_at": d.fired_at}


def routing_key(d) -> tuple[datetime, str, str, str, str]:
    """The ``routing_hourly`` counter a ``routing.decided`` adds one to."""
    return hour_of(d.decided_at), d.target, d.reason[:40], d.channel, (d.manufacturer_id or "")[:100]


def transfer_key(d) -> tuple[datetime, str]:
    return hour_of(d.transferred_at), d.manufacturer_id[:100]
