"""A deadline deferred for an unknown order is not lost when the order's first event commits
concurrently: each consumer's transaction saw the other's row missing (the deadline deferred,
the order released nothing). The dispatcher's tick releases it once the order is known."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from notifier.entrypoints.consumers import release_orphaned_deferred
from notifier.models import DeferredDeadline, OrderContact
from shared.testing import eventually

pytestmark = pytest.mark.broker


async def test_a_deadline_deferred_while_the_order_committed_is_released(notifier, new_order):
    o = new_order(merchant_id="m-race")
    await o.fired("remind_merchant", "merchant_reminder", order_version=1, day=10)

    async def deferred():
        async with notifier.rt.sessions() as s:
            return await s.scalar(select(DeferredDeadline.event_id).where(DeferredDeadline.order_id == o.order_id))
    await eventually(deferred)
    # the order consumer's transaction committed the contact without seeing the deferred row
    async with notifier.rt.uow() as s:
        s.add(OrderContact(order_id=o.order_id, number=o.number, merchant_id=o.merchant_id,
                           customer_id=o.customer_id, customer_phone=o.customer_phone, return_address=None,
                           updated_at=notifier.rt.clock.now()))
    msgs = await notifier.wait_messages(o.order_id, 1, kind="merchant_reminder")
    assert {m["kind"] for m in msgs} == {"merchant_reminder"}
    assert await deferred() is None
    # released once: a later sweep finds nothing and records nothing more
    assert await release_orphaned_deferred(notifier.rt) == 0
    before = len(await notifier.messages(o.order_id))
    await release_orphaned_deferred(notifier.rt)
    assert len(await notifier.messages(o.order_id)) == before
