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
import os
from datetime import datetime, timedelta, timezone
from typing import Sequence

from shared.logging import current_correlation_id
from shared.topics import SLA_EVENTS

EVENT_TYPE = "sla.deadlines_armed"
PRODUCER = "sla-timer"
_ZERO = timedelta(0)
_json: dict[str, str] = {}  # rule, action and state names as JSON strings (few, from the rule table)


def _j(name: str) -> str:
    text = _json.get(name)
    if text is None:
        text = _json[name] = json.dumps(name)
    return text


def _utc(t: datetime) -> str:
    # events are UTC (working-day dues are computed in Beijing time)
    return (t if t.utcoffset() == _ZERO else t.astimezone(timezone.utc)).isoformat()


def _ids(n: int) -> list[str]:
    """n random (version 4) UUIDs from one urandom call (as the timer ids are made)."""
    h = os.urandom(16 * n).hex()
    return [f"{h[k:k + 8]}-{h[k + 8:k + 12]}-4{h[k + 13:k + 16]}-{'89ab'[int(h[k + 16], 16) & 3]}{h[k + 17:k + 20]}-"
            f"{h[k + 20:k + 32]}" for k in range(0, 32 * n, 32)]


def armed_lines(plans: Sequence, now: datetime) -> list[str]:
    """Bundle lines (``shared.outbox.bundle_line``) of the plans' timers still pending once the
    plans are applied (a timer started and cancelled within one consumed batch is left out).
    The JSON is put together from parts: ids are generated UUIDs, names come from the rule
    table, the order id is encoded once — a third of the cost of encoding a dict per event."""
    live_plans = [(p, live) for p in plans if (live := [r for r in p.start if r["state"] == "pending"])]
    if not live_plans:
        return []
    corr = current_correlation_id()
    head = (f'","type":"{EVENT_TYPE}","schema_version":1,"occurred_at":"{_utc(now)}","producer":"{PRODUCER}",'
            f'"key":')
    mid = f',"correlation_id":{json.dumps(corr)},"data":{{"order_id":'
    lines = []
    for (p, live), eid in zip(live_plans, _ids(len(live_plans))):
        key = json.dumps(p.order_id)
        deadlines = ",".join(f'{{"timer_id":"{r["id"]}","rule":{_j(r["rule"])},"action":{_j(r["action"])},'
                             f'"due_at":"{_utc(r["due_at"])}"}}' for r in live)
        lines.append(f'{key}\t{{"id":"{eid}{head}{key}{mid}{key},"order_version":{int(live[0]["order_version"])},'
                     f'"order_state":{_j(live[0]["order_state"])},"deadlines":[{deadlines}]}}}}')
    return lines


async def publish_armed(rt, session, plans: Sequence, now: datetime) -> None:
    lines = armed_lines(plans, now)
    if lines:
        first_key = json.loads(lines[0].partition("\t")[0])
        await rt.outbox.add_bundle_lines(session, SLA_EVENTS, first_key, lines)
