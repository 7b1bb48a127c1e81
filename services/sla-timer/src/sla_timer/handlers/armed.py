"""``sla.deadlines_armed``: after the timers of consumed order events are stored, one event per
order event that armed any, naming each timer's rule and due time — the deadline the order
actually faces, its merchant's or category's override and the business calendar applied (the
orders service shows it as the expected completion). Written to the outbox in the consumer's
transaction, so timers and their announcement commit together; a batch of consumed events
writes ONE bundle row however many orders it armed (no statement per event on the bulk path).
The envelopes are built directly (as the firing loop builds its own): this runs per consumed
event; the contract (``shared.contracts.sla.DeadlinesArmed``) is checked in the tests."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Sequence

from shared.logging import current_correlation_id
from shared.outbox import bundle_line
from shared.topics import SLA_EVENTS

EVENT_TYPE = "sla.deadlines_armed"
PRODUCER = "sla-timer"
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat()  # events are UTC (working-day dues come in Beijing time)


def armed_lines(plans: Sequence, now: datetime) -> list[str]:
    """Bundle lines (``shared.outbox.bundle_line``) of the plans' timers still pending once the
    plans are applied (a timer started and cancelled within one consumed batch is left out)."""
    at, corr = _utc(now), current_correlation_id()
    lines = []
    for p in plans:
        live = [r for r in p.start if r["state"] == "pending"]
        if not live:
            continue
        envelope = {
            "id": str(uuid.uuid4()), "type": EVENT_TYPE, "schema_version": 1, "occurred_at": at,
            "producer": PRODUCER, "key": p.order_id, "correlation_id": corr,
            "data": {"order_id": p.order_id, "order_version": live[0]["order_version"],
                     "order_state": live[0]["order_state"],
                     "deadlines": [{"timer_id": r["id"], "rule": r["rule"], "action": r["action"],
                                    "due_at": _utc(r["due_at"])} for r in live]},
        }
        lines.append(bundle_line(p.order_id, _dumps(envelope)))
    return lines


async def publish_armed(rt, session, plans: Sequence, now: datetime) -> None:
    lines = armed_lines(plans, now)
    if lines:
        first_key = json.loads(lines[0].partition("\t")[0])
        await rt.outbox.add_bundle_lines(session, SLA_EVENTS, first_key, lines)
