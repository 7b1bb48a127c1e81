"""``sla.deadlines_armed``: after the timers of consumed order events are stored, one event per
order event that armed any, naming each timer's rule and due time — the deadline the order
actually faces, its merchant's or category's override and the business calendar applied (the
orders service shows it as the expected completion, docs/deadlines.md). Written to the outbox
in the consumer's transaction, so timers and their announcement commit together; a batch of
consumed events writes ONE bundle row however many orders it armed (no statement per event on
the bulk path). Built and encoded by the shared codec (``shared.events``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence

from shared.contracts.sla import ArmedDeadline, DeadlinesArmed
from shared.events import make_envelope

EVENT_TYPE = "sla.deadlines_armed"
PRODUCER = "sla-timer"
_ZERO = timedelta(0)


def _utc(t: datetime) -> datetime:
    # events are UTC (working-day dues are computed in Beijing time)
    return t if t.utcoffset() == _ZERO else t.astimezone(timezone.utc)


def armed_events(plans: Sequence, now: datetime) -> list:
    """The envelopes of the plans' timers still pending once the plans are applied (a timer
    started and cancelled within one consumed batch is left out), one per plan that armed any."""
    at = _utc(now)
    events = []
    for p in plans:
        live = [r for r in p.start if r["state"] == "pending"]
        if not live:
            continue
        events.append(make_envelope(
            type_=EVENT_TYPE, key=p.order_id, producer=PRODUCER, occurred_at=at,
            data=DeadlinesArmed(order_id=p.order_id, order_version=int(live[0]["order_version"]),
                                order_state=live[0]["order_state"],
                                deadlines=[ArmedDeadline(timer_id=r["id"], rule=r["rule"], action=r["action"],
                                                         due_at=_utc(r["due_at"])) for r in live])))
    return events


async def publish_armed(rt, session, plans: Sequence, now: datetime) -> None:
    events = armed_events(plans, now)
    if events:
        await rt.outbox.add_bundle(session, events)
