"""The order consumer and the deadline consumer apply their polls side by side, each in its own
transaction. Found by the 20-minute chaos run (18 in-site reminders kept live after the
transition that cancels them): the deadline's transaction checked the order's transitions
before the cancelling one committed, the transition's transaction looked for live deadline
messages before the deadline's committed, and both committed. Whichever of the two starts
first, the other now sees its effect: no reminder the order's history cancels stays live."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from notifier.entrypoints.consumers import order_handlers, sla_handlers
from notifier.models import Message

from .test_batches import Recorder, decoded
from .test_stale_deadlines import ADDRESS, SHIP_BACK_REMINDER

pytestmark = pytest.mark.broker

HELD_S = 0.5  # how long the first transaction stays open while the second one runs


async def _apply(api, handlers, envs, *, hold: asyncio.Event | None = None) -> None:
    """Apply ``envs`` as a consumer applies a poll: one transaction, retried whole when it
    fails (SQLite fails a write whose reads went stale); ``hold`` keeps it open until set."""
    for attempt in range(5):
        try:
            async with api.rt.uow() as s:
                await handlers[envs[0].type].many(s, [(env, env.data) for env in envs])
                if hold is not None:
                    await hold.wait()
            return
        except Exception:  # noqa: BLE001 - as the shared consumer: the whole poll again
            if attempt == 4:
                raise
            hold = None


async def _live_reminders(api, order_id: str) -> list[str]:
    async with api.rt.sessions() as s:
        return list((await s.scalars(select(Message.status).where(
            Message.order_id == order_id, Message.kind == "ship_back_reminder",
            Message.status.in_(("queued", "delivered"))))).all())


async def _order_awaiting_shipment(api, feed_for, merchant: str):
    """An order approved for return (v3), applied; its shipment (v4) and the reminder armed at v3
    that fires after it, neither applied yet."""
    o = feed_for(api, merchant_id=merchant)
    o.producer = Recorder()
    orders = order_handlers(api.rt)
    await o.created()
    await o.act("claim", "pending_audit")
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    for _topic, env in o.sent:
        await _apply(api, orders, [decoded(env)])
    shipped_at = api.rt.clock.now()
    await o.act("fill_shipment", "awaiting_receipt", at=shipped_at, carrier="顺丰", tracking_number="SF1")
    await o.fired("remind_customer", "ship_back_reminder_1", order_version=3, cancelled_by=SHIP_BACK_REMINDER,
                  at=shipped_at + timedelta(minutes=1), reminder=1, day=5)
    shipment, reminder = (decoded(env) for _topic, env in o.sent[-2:])
    return o, shipment, reminder


@pytest.mark.parametrize("first", ["transition", "deadline"])
async def test_a_cancelling_transition_and_a_fired_deadline_applied_side_by_side(notifier_factory, feed_for,
                                                                                 first):
    api = await notifier_factory(dispatch_interval_s=3600)
    o, shipment, reminder = await _order_awaiting_shipment(api, feed_for, f"m-side-{first}")
    orders, sla = order_handlers(api.rt), sla_handlers(api.rt)
    (h1, e1), (h2, e2) = ((orders, shipment), (sla, reminder))[::1 if first == "transition" else -1]

    release = asyncio.Event()
    one = asyncio.create_task(_apply(api, h1, [e1], hold=release))
    await asyncio.sleep(0.05)  # the first transaction has read and written, not committed
    two = asyncio.create_task(_apply(api, h2, [e2]))
    await asyncio.wait({two}, timeout=HELD_S)  # on PostgreSQL it waits for the first one's commit
    release.set()
    await asyncio.gather(one, two)

    assert await _live_reminders(api, o.order_id) == []
