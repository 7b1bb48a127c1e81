"""Claiming due timers: several replicas share the work and never fire a timer
twice; a fired timer's event is in the outbox in the same transaction."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, insert, select

from shared.clock import ManualClock
from shared.contracts.sla import DeadlineFired
from shared.events import decode
from shared.migrations import upgrade
from shared.outbox import row_messages
from sla_timer.app import MIGRATIONS, create_app
from sla_timer.domain.rules import RULES, RULES_BY_NAME
from sla_timer.handlers.firing import fire_due, next_due
from sla_timer.models import Timer
from sla_timer.settings import SlaTimerSettings

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=timezone.utc)


def replica(url: str, clock):
    app = create_app(SlaTimerSettings(environment="test", database_url=url, log_json=False))
    rt = app.state.runtime
    rt.clock = rt.outbox.clock = clock
    return rt


async def seed(rt, n: int, start: datetime) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    async with rt.uow() as s:
        await s.execute(insert(Timer), [
            {"id": i, "order_id": f"o-{k % 50}", "rule": "auto_refund", "action": "auto_refund", "details": {},
             "state": "pending", "due_at": start + timedelta(seconds=k), "order_version": 4,
             "order_state": "awaiting_receipt", "created_at": start} for k, i in enumerate(ids)])
    return ids


async def test_two_replicas_fire_each_due_timer_once(database_url):
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    clock = ManualClock(T0)
    a, b = replica(url, clock), replica(url, clock)
    try:
        ids = await seed(a, 600, T0 - timedelta(hours=1))
        await seed(a, 10, T0 + timedelta(hours=1))  # not due yet

        async def drain(rt):
            total = 0
            while n := await fire_due(rt, 50):
                total += n
            return total

        got = await asyncio.gather(drain(a), drain(b), drain(a))
        assert sum(got) == 600
        ob = a.tables.outbox
        async with a.sessions() as s:
            payloads = [v for r in (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload)
                                                     .order_by(ob.c.id))).all()
                        for _k, v in row_messages(r.event_type, r.key, r.payload)]
            pending = await s.scalar(select(func.count()).select_from(Timer).where(Timer.state == "pending"))
        fired_ids = [(json.loads(p) if isinstance(p, str) else p)["data"]["timer_id"] for p in payloads]
        assert sorted(fired_ids) == sorted(ids) and len(set(fired_ids)) == 600
        assert pending == 10
        # Earliest first within every batch: a single replica fires in due order.
        clock.advance(timedelta(hours=2))
        assert await fire_due(a, 100) == 10
    finally:
        await a.engine.dispose()
        await b.engine.dispose()


async def test_event_carries_what_the_timer_was_set_for(database_url):
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    clock = ManualClock(T0)
    rt = replica(url, clock)
    try:
        (tid,) = await seed(rt, 1, T0)
        assert await fire_due(rt) == 1
        assert await fire_due(rt) == 0  # a second pass finds nothing: fired once
        ob = rt.tables.outbox
        async with rt.sessions() as s:
            ((_k, p),) = [m for r in (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload))).all()
                          for m in row_messages(r.event_type, r.key, r.payload)]
            assert _k == "o-0"
            t = await s.get(Timer, tid)
        env = json.loads(p) if isinstance(p, str) else p
        assert env["type"] == "sla.deadline_fired" and env["key"] == "o-0"
        assert env["data"] | {"fired_at": None} == {
            "timer_id": tid, "order_id": "o-0", "rule": "auto_refund", "action": "auto_refund", "order_version": 4,
            "order_state": "awaiting_receipt", "due_at": env["data"]["due_at"], "fired_at": None, "details": {},
            # the rule's cancelling facts: consumers that saw a later one ignore the deadline
            "cancelled_by": sorted(RULES_BY_NAME["auto_refund"].cancelled_by)}
        assert "action:process.refund" in env["data"]["cancelled_by"] and "state:closed" in env["data"]["cancelled_by"]
        assert t.state == "fired" and t.fired_at == T0
        # The shared codec decodes it with the contract.
        parsed = decode(p)
        fired = parsed.data
        assert isinstance(fired, DeadlineFired)
        assert fired.fired_at == T0 and fired.due_at == T0 and parsed.key == "o-0"
        assert fired.cancelled_by == env["data"]["cancelled_by"]
        # The event id derives from the timer id: the same event however often it is written.
        assert str(parsed.id) == str(uuid.uuid3(uuid.NAMESPACE_URL, f"sla-timer/{tid}"))
        assert parsed.occurred_at == T0 and parsed.producer == "sla-timer" and parsed.correlation_id is None
    finally:
        await rt.engine.dispose()


async def test_awkward_text_goes_through_and_a_row_the_contract_refuses_never_stalls_firing(database_url):
    """Quotes, backslashes, line breaks and non-ASCII in the order id and details come out as
    written (the bundle line stays one line). A timer row the event contract refuses (an order
    state no order has: written around the consumers) is cancelled with the reason, and the
    other due timers of its batch fire."""
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    now = T0.replace(microsecond=123456)
    clock = ManualClock(now)
    rt = replica(url, clock)
    odd = 'o-"q"\\b\n\t退货'
    try:
        async with rt.uow() as s:
            await s.execute(insert(Timer), [{
                "id": "t-1", "order_id": odd, "rule": "merchant_reminder", "action": "remind_merchant",
                "details": {"merchant_contact_phone": "1\n2", "level": 2}, "state": "pending",
                "due_at": T0 - timedelta(minutes=5), "order_version": 7, "order_state": "awaiting_receipt",
                "created_at": T0}, {
                "id": "t-bad", "order_id": "o-bad", "rule": "merchant_reminder", "action": "remind_merchant",
                "details": {}, "state": "pending", "due_at": T0 - timedelta(minutes=6), "order_version": 7,
                "order_state": "no-such-state", "created_at": T0}])
        assert await fire_due(rt) == 1
        assert await fire_due(rt) == 0
        ob = rt.tables.outbox
        async with rt.sessions() as s:
            messages = [m for r in (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload))).all()
                        for m in row_messages(r.event_type, r.key, r.payload)]
            bad = await s.get(Timer, "t-bad")
        ((key, payload),) = messages
        assert key == odd and "\n" not in payload
        env = decode(payload)
        assert env.key == odd and env.data.order_id == odd and env.occurred_at == now
        assert env.data.details == {"merchant_contact_phone": "1\n2", "level": 2}
        assert bad.state == "cancelled" and bad.cancelled_by == "invalid" and bad.fired_at is None
    finally:
        await rt.engine.dispose()


async def test_every_rule_fires_with_its_cancelling_facts_on_both_paths(database_url):
    """Every rule's event carries the rule's ``cancelled_by`` (sorted), on both databases; a rule
    the table does not know carries none (left out, as the contract leaves out an empty list:
    consumers read a falsy value)."""
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    clock = ManualClock(T0)
    rt = replica(url, clock)
    names = [r.name for r in RULES] + ["retired_rule"]
    try:
        async with rt.uow() as s:
            await s.execute(insert(Timer), [
                {"id": f"t-{i:02d}", "order_id": f"o-{name}", "rule": name, "action": "remind_customer",
                 "details": {"day": 5}, "state": "pending", "due_at": T0 - timedelta(minutes=60 - i),
                 "order_version": 3, "order_state": "awaiting_return_shipment", "created_at": T0}
                for i, name in enumerate(names)])
        assert await fire_due(rt) == len(names)
        ob = rt.tables.outbox
        async with rt.sessions() as s:
            payloads = [p for r in (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload))).all()
                        for _k, p in row_messages(r.event_type, r.key, r.payload)]
            timers = {t.rule: t for t in (await s.execute(select(Timer))).scalars()}
        assert len(payloads) == len(names)
        for raw in payloads:
            env = json.loads(raw)
            rule = env["data"]["rule"]
            fired = decode(raw).data
            if rule == "retired_rule":
                assert "cancelled_by" not in env["data"] and not fired.cancelled_by
            else:
                assert env["data"]["cancelled_by"] == sorted(RULES_BY_NAME[rule].cancelled_by) != []
                assert fired.cancelled_by == env["data"]["cancelled_by"]
            t = timers[rule]
            assert (fired.timer_id, fired.due_at, fired.fired_at, fired.details) == (t.id, t.due_at, T0, {"day": 5})
    finally:
        await rt.engine.dispose()


class _ClockOnly:
    clock = ManualClock(T0)


async def test_partial_batches_are_claimed_at_most_once_per_gap(monkeypatch):
    """Timers coming due one by one fire together: after a batch that was not full the loop
    waits the gap before it claims again (one claim per gap, not one per timer); a full batch
    is followed by the next claim at once."""
    from sla_timer.handlers import firing

    results = iter([1000, 3, 2, 0])  # a full batch, two partial ones, then nothing due
    claims: list[str] = []
    pauses: list[float] = []

    async def fake_fire_due(rt, limit):
        n = next(results, None)
        if n is None:
            raise asyncio.CancelledError
        claims.append(f"claim->{n}")
        return n

    async def fake_next_due(rt, after):
        raise asyncio.CancelledError  # stop once nothing was due

    monkeypatch.setattr(firing, "fire_due", fake_fire_due)
    monkeypatch.setattr(firing, "next_due", fake_next_due)
    loop = firing.FiringLoop(rt=_ClockOnly(), batch=1000, poll_s=0.2, min_gap_s=0.05)

    async def record(seconds):
        pauses.append(seconds)
        claims.append("pause")

    loop.pause = record
    try:
        await loop.run()
    except asyncio.CancelledError:
        pass
    assert claims == ["claim->1000", "claim->3", "pause", "claim->2", "pause", "claim->0"]
    assert pauses == [0.05, 0.05]


async def test_the_next_due_time_is_the_earliest_pending_after_the_claim(database_url):
    """What the firing loop sleeps until: the earliest pending timer due after the claim that
    found nothing more due; fired timers before it, and a later one, do not count."""
    url = await database_url("sla-timer")
    await upgrade(MIGRATIONS, url)
    clock = ManualClock(T0)
    rt = replica(url, clock)
    try:
        await seed(rt, 5, T0 - timedelta(minutes=10))
        assert await fire_due(rt, 100) == 5
        assert await next_due(rt, T0) is None
        await seed(rt, 3, T0 + timedelta(minutes=7))  # due 0, 1 and 2 s after +7 minutes
        got = await next_due(rt, T0)
        assert got == T0 + timedelta(minutes=7)
        assert await next_due(rt, T0 + timedelta(minutes=7)) == T0 + timedelta(minutes=7, seconds=1)
    finally:
        await rt.engine.dispose()
