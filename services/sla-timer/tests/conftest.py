"""Drive the SLA timer service the way production does: order events published on
the real broker (topic orders.events, key = order id); read what it publishes
back with a plain aiokafka consumer."""
from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

import shared.contracts  # noqa: F401
from shared.auth import Principal, issue_token
from shared.events import make_envelope
from shared.topics import ORDER_EVENTS, SLA_EVENTS
from sla_timer.app import create_app
from sla_timer.settings import SlaTimerSettings


def snapshot(problem_type: str = "quality", merchant_id: str = "m-1", category: str = "phones",
             created_at: datetime | None = None) -> dict:
    return {"merchant_id": merchant_id, "customer_id": "c-1", "customer_phone": "13800138000",
            "customer_level": "regular", "sales_order_id": "so-1", "sku": "sku-1", "category": category,
            "quantity": 1, "amount_paid": Decimal("199.00"), "service_type": "return", "problem_type": problem_type,
            "created_at": created_at, "merchant_contact_phone": "400-000-1234"}


class OrderFeed:
    """Publishes service-order events for one order, versions counting up."""

    def __init__(self, producer: AIOKafkaProducer, clock, problem_type: str = "quality", merchant_id: str = "m-1",
                 category: str = "phones") -> None:
        self.producer, self.clock = producer, clock
        self.order_id = str(uuid.uuid4())
        self.version, self.state = 0, "pending_claim"
        self.problem_type, self.merchant_id, self.category = problem_type, merchant_id, category
        self.created_at: datetime | None = None
        self.sent = []

    async def _send(self, env) -> None:
        self.sent.append(env)
        await self.producer.send_and_wait(ORDER_EVENTS, env.to_bytes(), key=self.order_id.encode())

    async def created(self) -> "OrderFeed":
        self.version, self.created_at = 1, self.clock.now()
        snap = snapshot(self.problem_type, self.merchant_id, self.category, self.created_at)
        data = {**snap, "order_id": self.order_id, "number": "SO1", "version": 1, "state": self.state,
                "delivered_at": self.created_at}
        data.pop("merchant_contact_phone")
        await self._send(make_envelope(type_="service_order.created", key=self.order_id, producer="orders",
                                       occurred_at=self.created_at, data=data))
        return self

    async def act(self, action: str, to_state: str | None = None, **details) -> "OrderFeed":
        to_state = to_state or self.state
        self.version += 1
        now = self.clock.now()
        data = {"order_id": self.order_id, "number": "SO1", "version": self.version, "action": action,
                "from_state": self.state, "to_state": to_state, "actor_role": "merchant_main", "actor_id": "u-1",
                "occurred_at": now, "order": snapshot(self.problem_type, self.merchant_id, self.category,
                                                      self.created_at), "details": details}
        self.state = to_state
        await self._send(make_envelope(type_="service_order.transitioned", key=self.order_id, producer="orders",
                                       occurred_at=now, data=data))
        return self

    async def resend_last(self) -> None:
        await self.producer.send_and_wait(ORDER_EVENTS, self.sent[-1].to_bytes(),
                                          key=self.order_id.encode())


class SlaFeed:
    """What is published on sla.events, consumed from the beginning: the fired deadlines in
    ``events``, the ``sla.deadlines_armed`` announcements in ``armed``."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(SLA_EVENTS, bootstrap_servers=bootstrap, group_id=None,
                                         auto_offset_reset="earliest", enable_auto_commit=False)
        self.events: list[dict] = []
        self.armed: list[dict] = []

    async def poll(self) -> list[dict]:
        batches = await self.consumer.getmany(timeout_ms=200)
        for msgs in batches.values():
            for m in msgs:
                e = json.loads(m.value)
                (self.armed if e["type"] == "sla.deadlines_armed" else self.events).append(e)
        return self.events

    def of(self, order_id: str) -> list[dict]:
        return [e for e in self.events if e["key"] == order_id]


OPERATOR = Principal("platform_operator", "op-test")


def token(rt, principal: Principal, now: datetime | None = None) -> str:
    """A token signed with the service's secret on the service's (virtual) clock."""
    return issue_token(principal, rt.settings.token_secret, now=now or rt.clock.now())


class Tokens:
    """Tokens and headers for one running service (fixture ``tokens``)."""

    def __init__(self, rt) -> None:
        self.rt = rt

    def token(self, principal: Principal, now: datetime | None = None) -> str:
        return token(self.rt, principal, now)

    def headers(self, role: str, subject: str = "u-1", **kw) -> dict:
        return {"Authorization": "Bearer " + token(self.rt, Principal(role, subject, **kw))}


class ClockTokenAuth(httpx.Auth):
    """A fresh operator token per request, issued on the service's clock (tests move the
    virtual clock by days, past any token's lifetime). A request that brings its own
    Authorization header keeps it; ``auth=None`` on a request sends none."""

    def __init__(self, rt, principal: Principal = OPERATOR) -> None:
        self.rt, self.principal = rt, principal

    def auth_flow(self, request):
        if "authorization" not in request.headers:
            request.headers["Authorization"] = "Bearer " + token(self.rt, self.principal)
        yield request


@pytest.fixture
async def sla(start_service, database_url):
    svc = await start_service(create_app, SlaTimerSettings, database_url=await database_url("sla-timer"),
                              clock="virtual", fire_poll_interval_s=0.05)
    svc.client.auth = ClockTokenAuth(svc.runtime)
    return svc


@pytest.fixture
def tokens(sla) -> Tokens:
    return Tokens(sla.runtime)


@pytest.fixture
async def sla_feed(broker, sla):
    feed = SlaFeed(broker.bootstrap)
    await feed.consumer.start()
    yield feed
    await feed.consumer.stop()


@pytest.fixture
def new_order(producer, sla):
    def make(**kw) -> OrderFeed:
        return OrderFeed(producer, sla.runtime.clock, **kw)

    return make
