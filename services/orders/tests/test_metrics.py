"""The orders service's domain metrics (docs/operations.md, "Metrics"): transitions counted
once committed (an application, actions through the configured store adapter, a fired
deadline through the consumer's session, not a refused or rolled-back one) and service
orders by state and mode counted in the database."""
from __future__ import annotations

import uuid

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orders.handlers.deadlines import deadline_handlers
from shared.contracts.sla import DeadlineFired

M = "/v1/merchant/service-orders"


def value(rt, name: str, **labels) -> float:
    for fam in text_string_to_metric_families(generate_latest(rt.metrics).decode()):
        for s in fam.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


class Abort(Exception):
    """Rolls the consumer's transaction back."""


async def fire(api, order_id: str, action: str, version: int, state: str, *, abort: bool = False) -> None:
    handler = deadline_handlers(api.rt)["sla.deadline_fired"]
    now = api.clock.now()
    data = DeadlineFired(timer_id=str(uuid.uuid4()), order_id=order_id, rule="r", action=action,
                         order_version=version, order_state=state, due_at=now, fired_at=now)
    async with api.rt.sessions() as s, s.begin():
        await handler(s, None, data)
        if abort:
            raise Abort


async def test_transitions_and_orders_by_state_and_mode(api, world):
    rt = api.rt
    o = await api.apply(world["sf"])
    assert value(rt, "orders_transitions_total", from_state="", to_state="pending_claim", action="apply") == 1
    await api.post(f"{M}/{o['id']}/claim", world["staff"])
    assert value(rt, "orders_transitions_total", from_state="pending_claim", to_state="pending_audit",
                 action="claim") == 1
    # refused by the rules: no transition
    r = await api.client.post(f"{M}/{o['id']}/claim", json={}, headers=world["staff"])
    assert r.status_code >= 400
    assert value(rt, "orders_transitions_total", from_state="pending_claim", to_state="pending_audit",
                 action="claim") == 1

    # a fired deadline through a consumer's session: counted only when that commits
    other = await api.apply(world["sf"])
    with pytest.raises(Abort):
        await fire(api, other["id"], "advance_compensation", 1, "pending_claim", abort=True)
    labels = dict(from_state="pending_claim", to_state="refunded_by_system", action="system.advance_compensation")
    assert value(rt, "orders_transitions_total", **labels) == 0
    await fire(api, other["id"], "advance_compensation", 1, "pending_claim")
    assert value(rt, "orders_transitions_total", **labels) == 1
    assert value(rt, "orders_transitions_total", from_state="", to_state="pending_claim", action="apply") == 2

    await rt.sampled.refresh()
    assert value(rt, "orders_service_orders", state="pending_audit", mode="pop_self_service") == 1
    assert value(rt, "orders_service_orders", state="refunded_by_system", mode="pop_self_service") == 1
    assert value(rt, "orders_service_orders", state="pending_claim", mode="pop_self_service") == 0
    # every state and mode listed, zeros included (a panel keeps its series when a state empties)
    assert value(rt, "orders_service_orders", state="arbitration", mode="platform") == 0
    text = generate_latest(rt.metrics).decode()
    assert text.count("orders_service_orders{") == 14 * 4


async def test_outbox_backlog_and_dead_letters_are_sampled(api, world):
    """The shared runtime's gauges, read here where no broker runs: events wait in the outbox."""
    from datetime import timedelta

    from sqlalchemy import insert

    rt = api.rt
    await api.apply(world["sf"])
    api.clock.advance(timedelta(seconds=90))
    pending, age = await rt.relay.backlog()
    assert pending >= 1 and age >= 90
    assert value(rt, "outbox_pending") == pending and value(rt, "outbox_oldest_pending_age_seconds") == age

    await rt.sampled.refresh()
    assert value(rt, "consumer_dead_letters", group="orders.deadlines") == 0
    assert value(rt, "consumer_dead_letters", group="orders.qualification") == 0
    async with rt.uow() as s:
        await s.execute(insert(rt.tables.dead_letters).values(
            consumer="orders.deadlines", topic="sla.events", partition=0, offset=7, key="k", payload="{}",
            error="handler failed", created_at=api.clock.now()))
    await rt.sampled.refresh()
    assert value(rt, "consumer_dead_letters", group="orders.deadlines") == 1
