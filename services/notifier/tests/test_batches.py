"""A batch of events (everything one poll fetched, applied in one transaction through the
consumers' batch form) records exactly what the same events record one at a time: deferred
deadlines released, messages of transitions and fired deadlines, a reminder retracted by a
later transition of the same batch, a stale deadline silent, a repeated event recorded once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from notifier.entrypoints.consumers import order_handlers, sla_handlers
from notifier.models import DeferredDeadline, Message, SeenTransition
from shared.events import decode_head, registry
from shared.topics import ORDER_EVENTS

pytestmark = pytest.mark.broker

ADDRESS = "上海市浦东新区张江路100号 售后仓"
SHIP_BACK = ["action:fill_shipment", "state:closed"]


class Recorder:
    """An order feed's producer that publishes nothing (the feed keeps what it sent)."""

    async def send_and_wait(self, topic, value, key=None) -> None:
        pass


async def scenario(o) -> list[list[tuple[str, object]]]:
    """The order's events in steps (each step: events the consumers might fetch in one poll)."""
    steps = []

    async def step(*coros) -> None:
        start = len(o.sent)
        for c in coros:
            await c
        steps.append(o.sent[start:])

    # order not known yet: deferred; the second (fired after the claim happened) is cancelled by
    # the claim applied with its release
    await step(o.fired("remind_merchant", "merchant_reminder", order_version=1, day=10),
               o.fired("remind_merchant", "first_response", order_version=1, cancelled_by=["action:claim"],
                       at=o.clock.now() + timedelta(minutes=1), day=1))
    await step(o.created(), o.act("claim", "pending_audit"),
               o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS))
    armed = o.version
    await step(o.fired("remind_customer", "ship_back_reminder_1", order_version=armed, cancelled_by=SHIP_BACK,
                       day=5))
    before = o.clock.now() - timedelta(minutes=1)  # shipped before the reminder was recorded: retracted
    await step(o.act("fill_shipment", "awaiting_receipt", at=before, carrier="顺丰", tracking_number="SF1"),
               o.act("remind_to_ship"))
    o.sent.append(o.sent[-1])  # the same event delivered twice
    steps[-1].append(o.sent[-1])
    await step(o.fired("remind_customer", "ship_back_reminder_2", order_version=armed, cancelled_by=SHIP_BACK,
                       day=7),  # stale: the shipment (seen) cancels it
               o.fired("remind_merchant", "merchant_reminder", order_version=o.version, day=3))
    await step(o.act("system.auto_refund", "refunded_by_system", amount="99.00"))
    return steps


def decoded(env):
    return registry.decode_data(decode_head(env.to_bytes()))


async def messages(api, order_id: str) -> list[tuple]:
    async with api.rt.sessions() as s:
        rows = (await s.scalars(select(Message).where(Message.order_id == order_id).order_by(Message.id))).all()
        deferred = (await s.scalars(select(DeferredDeadline).where(DeferredDeadline.order_id == order_id))).all()
        seen = (await s.scalars(select(SeenTransition.version).where(SeenTransition.order_id == order_id))).all()
    assert deferred == []
    return [sorted(seen)] + sorted((m.kind, m.template_key, m.channel, m.audience, m.status, m.last_error,
                                    m.body.replace(order_id[:8].upper(), "#")) for m in rows)


async def test_a_batch_records_what_its_events_record_one_at_a_time(notifier_factory, feed_for):
    api = await notifier_factory(dispatch_interval_s=3600)  # nothing sent meanwhile: statuses as recorded
    orders, sla = order_handlers(api.rt), sla_handlers(api.rt)

    def handler(topic, env):
        return (orders if topic == ORDER_EVENTS else sla)[env.type]

    # two orders whose events interleave in every batch, and two more applied event by event
    a, b, c, d = (feed_for(api, merchant_id=f"m-batch-{k}") for k in range(4))
    for o in (a, b, c, d):
        o.producer = Recorder()
    steps_a, steps_b = await scenario(a), await scenario(b)
    for sa, sb in zip(steps_a, steps_b):
        events = [e for pair in zip(sa, sb) for e in pair]
        # one transaction per topic, as each consumer applies its poll
        for topic in dict.fromkeys(t for t, _ in events):
            mine = [decoded(env) for t, env in events if t == topic]
            async with api.rt.uow() as s:
                await handler(topic, mine[0]).many(s, [(env, env.data) for env in mine])
    for o in (c, d):
        for step in await scenario(o):
            for topic, env in step:
                env = decoded(env)
                async with api.rt.uow() as s:
                    await handler(topic, env).one(s, env, env.data)

    one_by_one = await messages(api, c.order_id)
    assert one_by_one == await messages(api, d.order_id)
    kinds = {(k, ch, status) for k, _t, ch, _a, status, _e, _b in one_by_one[1:]}
    assert ("merchant_reminder", "inbox", "delivered") in kinds  # released once the order was known
    assert ("merchant_reminder", "inbox", "cancelled") in kinds  # released, then retracted by the claim
    assert ("ship_back_reminder", "inbox", "cancelled") in kinds  # retracted by the shipment
    assert ("auto_refund", "sms", "queued") in kinds
    assert sum(1 for m in one_by_one[1:] if m[0] == "remind_to_ship") == 2  # sms + inbox, once
    assert await messages(api, a.order_id) == one_by_one
    assert await messages(api, b.order_id) == one_by_one


async def test_recorded_messages_are_written_together_and_never_dropped_silently(notifier_factory):
    """``record`` keeps a transaction's messages and ``write_messages`` inserts them in one
    statement; a repeated intent in the same transaction is recorded once; a transaction that
    would commit with messages recorded but not written fails instead of losing them."""
    from notifier.domain.triggers import Intent
    from notifier.handlers.messages import pending_messages, record, write_messages

    api = await notifier_factory(dispatch_interval_s=3600)
    now = api.rt.clock.now()
    intent = Intent("audit_rejected", "audit_rejected", "customer", {"number": "S1", "opinion": "x"})

    async def rec(session, event_id: str) -> None:
        await record(session, event_id=event_id, order_id="o-1", intent=intent, customer_id="c-1",
                     customer_phone="13800138000", merchant_id=None, now=now)

    async with api.rt.uow() as session:
        await rec(session, "e-1")
        await rec(session, "e-1")  # the same event again: nothing new
        assert len(pending_messages(session)) == 2  # the SMS and the in-site message
        assert await write_messages(session) == 2
        assert await write_messages(session) == 0
    async with api.rt.sessions() as session:
        stored = (await session.execute(select(Message.channel, Message.status, Message.body)
                                        .where(Message.event_id == "e-1").order_by(Message.channel))).all()
    assert [(c, st) for c, st, _b in stored] == [("inbox", "delivered"), ("sms", "queued")]
    assert all(b for _c, _s, b in stored)
    with pytest.raises(RuntimeError, match="not written"):
        async with api.rt.uow() as session:
            await rec(session, "e-2")
    async with api.rt.sessions() as session:
        assert (await session.execute(select(Message.id).where(Message.event_id == "e-2"))).first() is None
