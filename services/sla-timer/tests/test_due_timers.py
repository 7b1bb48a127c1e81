"""GET /v1/timers/due: the pending timers per rule coming due (the operators' console
reads it), for platform operators only."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.testing import eventually
from sla_timer.app import create_app
from sla_timer.settings import SlaTimerSettings

from .conftest import ClockTokenAuth, OrderFeed, Tokens

pytestmark = pytest.mark.broker


async def _armed(svc, order_id: str) -> None:
    async def check():
        r = await svc.client.get(f"/v1/service-orders/{order_id}/timers")
        return r.status_code == 200 and r.json()["items"]
    await eventually(check)


async def test_due_within_the_hour_and_the_day_per_rule(start_service, database_url, producer):
    # firing off: what comes due stays pending, so "overdue" can be seen
    svc = await start_service(create_app, SlaTimerSettings, database_url=await database_url("sla-timer"),
                              clock="virtual", fire_enabled=False)
    svc.client.auth = ClockTokenAuth(svc.runtime)
    order = OrderFeed(producer, svc.runtime.clock, problem_type="quality")
    await order.created()
    await _armed(svc, order.order_id)

    r = await svc.client.get("/v1/timers/due")
    assert r.status_code == 200, r.text
    items = {i["rule"]: i for i in r.json()["items"]}
    assert items["first_response"] == {"rule": "first_response", "action": "escalate", "overdue": 0,
                                       "next_hour": 1, "next_day": 1}
    assert items["audit_deadline"]["next_hour"] == 0 and items["audit_deadline"]["next_day"] == 1
    # further out than a day: not listed
    assert "quality_plan" not in items and "advance_compensation" not in items

    svc.runtime.clock.advance(timedelta(minutes=45))
    items = {i["rule"]: i for i in (await svc.client.get("/v1/timers/due")).json()["items"]}
    assert items["first_response"]["overdue"] == 1 and items["first_response_manager"]["overdue"] == 0

    # the order moved on: its audit timers were cancelled; the first response, already due
    # when the claim came, was earned and still fires (docs/deadlines.md): it stays listed
    await order.act("claim", "pending_audit")
    await order.act("audit.reject", "rejected", opinion="no")

    async def cancelled():
        items = {i["rule"]: i for i in (await svc.client.get("/v1/timers/due")).json()["items"]}
        return ("audit_deadline" not in items and "first_response_manager" not in items
                and items.get("first_response", {}).get("overdue") == 1)
    await eventually(cancelled)


async def test_only_operators_read_the_due_timers(sla):
    tokens = Tokens(sla.runtime)
    for role, kw in (("arbitrator", {}), ("merchant_main", {"merchant_id": "m-1"}), ("storefront", {})):
        r = await sla.client.get("/v1/timers/due", headers=tokens.headers(role, **kw))
        assert r.status_code == 403, (role, r.text)
    assert (await sla.client.get("/v1/timers/due", headers={"Authorization": "Bearer x"})).status_code == 401
