"""The inbox (processed event ids) of a running service: stamped with wall-clock time, whatever
the service's clock says, and purged by the outbox relay once older than ``INBOX_KEEP_S``
(docs/events.md § 4, "Consuming"). SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from notifier.models import messaging
from shared.testing import eventually

pytestmark = pytest.mark.broker
PE = messaging.processed_events


async def _ids(api) -> dict[str, datetime]:
    async with api.rt.sessions() as s:
        return {e: at for e, at in (await s.execute(select(PE.c.event_id, PE.c.processed_at)
                                                    .where(PE.c.consumer == "notifier.orders"))).all()}


async def test_applied_ids_carry_wall_clock_time_and_the_old_ones_are_purged(notifier_factory, feed_for):
    api = await notifier_factory(inbox_keep_s=7 * 86400)
    api.rt.clock.advance(timedelta(days=30))  # a simulation's virtual clock, far ahead
    o = feed_for(api)
    await o.created()
    applied = await eventually(lambda: _ids(api))
    [(event_id, at)] = applied.items()
    assert abs(at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    # an id applied eight days ago (wall-clock) goes at the relay's next purge round; the fresh one stays
    async with api.rt.sessions() as s, s.begin():
        await s.execute(PE.insert().values(consumer="notifier.orders", event_id="applied-long-ago",
                                           event_type="service_order.created",
                                           processed_at=datetime.now(timezone.utc) - timedelta(days=8)))
    assert set(await _ids(api)) == {event_id, "applied-long-ago"}
    api.rt.relay._next_purge = 0.0  # the round due now rather than within the minute
    api.rt.relay.wake()

    async def purged():
        return set(await _ids(api)) == {event_id}

    await eventually(purged)
