"""Drive the notifier the way production does: order and SLA events published on the
real broker (key = order id); read its state back through its API."""
from __future__ import annotations

import socket
import uuid
from datetime import datetime
from decimal import Decimal

import pytest

import shared.contracts  # noqa: F401
from notifier.app import create_app
from notifier.settings import NotifierSettings
from shared.auth import Principal, issue_token
from shared.events import make_envelope
from shared.testing import eventually
from shared.topics import ORDER_EVENTS, SLA_EVENTS

CUSTOMER_PHONE = "13800138000"
MERCHANT_PHONE = "13912345678"


def snapshot(customer_phone: str, merchant_phone: str | None, created_at: datetime, customer_id: str,
             merchant_id: str) -> dict:
    return {"merchant_id": merchant_id, "customer_id": customer_id, "customer_phone": customer_phone,
            "customer_level": "regular", "sales_order_id": "so-1", "sku": "sku-1", "category": "phones",
            "quantity": 1, "amount_paid": Decimal("199.00"), "service_type": "return", "problem_type": "quality",
            "created_at": created_at, "merchant_contact_phone": merchant_phone}


class OrderFeed:
    def __init__(self, producer, clock, customer_phone=CUSTOMER_PHONE, merchant_phone=MERCHANT_PHONE,
                 customer_id="c-1", merchant_id="m-1") -> None:
        self.producer, self.clock = producer, clock
        self.order_id = str(uuid.uuid4())
        self.number = "SO" + self.order_id[:8].upper()
        self.customer_phone, self.merchant_phone = customer_phone, merchant_phone
        self.customer_id, self.merchant_id = customer_id, merchant_id
        self.version, self.state, self.created_at = 0, "pending_claim", None
        self.sent = []

    async def send(self, topic: str, env) -> None:
        self.sent.append((topic, env))
        await self.producer.send_and_wait(topic, env.to_bytes(), key=self.order_id.encode())

    async def created(self, **extra) -> "OrderFeed":
        self.version, self.created_at = 1, self.clock.now()
        snap = snapshot(self.customer_phone, None, self.created_at, self.customer_id, self.merchant_id)
        data = {**snap, "order_id": self.order_id, "number": self.number, "version": 1, "state": self.state,
                "delivered_at": self.created_at, **extra}
        await self.send(ORDER_EVENTS, make_envelope(type_="service_order.created", key=self.order_id,
                                                    producer="orders", occurred_at=self.created_at, data=data))
        return self

    async def act(self, action: str, to_state: str | None = None, snapshot_phone: bool = True, at=None,
                  **details) -> "OrderFeed":
        self.version += 1
        now = at or self.clock.now()
        snap = snapshot(self.customer_phone, self.merchant_phone if snapshot_phone else None,
                        self.created_at or now, self.customer_id, self.merchant_id)
        data = {"order_id": self.order_id, "number": self.number, "version": self.version, "action": action,
                "from_state": self.state, "to_state": to_state or self.state, "actor_role": "merchant_main",
                "actor_id": "u-1", "occurred_at": now, "order": snap, "details": details}
        self.state = to_state or self.state
        await self.send(ORDER_EVENTS, make_envelope(type_="service_order.transitioned", key=self.order_id,
                                                    producer="orders", occurred_at=now, data=data))
        return self

    async def fired(self, action: str, rule: str = "r", order_version: int | None = None,
                    cancelled_by: list[str] | None = None, at=None, **details) -> "OrderFeed":
        """A fired deadline, armed at ``order_version`` (default: the order's current version),
        with its rule's cancelling facts when given (events from before the field have none);
        ``at``: when the timer fired (default: now on the feed's clock)."""
        now = at or self.clock.now()
        data = {"timer_id": str(uuid.uuid4()), "order_id": self.order_id, "rule": rule, "action": action,
                "order_version": self.version if order_version is None else order_version,
                "order_state": self.state, "due_at": now, "fired_at": now, "details": details}
        if cancelled_by is not None:
            data["cancelled_by"] = cancelled_by
        await self.send(SLA_EVENTS, make_envelope(type_="sla.deadline_fired", key=self.order_id,
                                                  producer="sla-timer", occurred_at=now, data=data))
        return self

    async def resend_last(self) -> None:
        topic, env = self.sent[-1]
        await self.producer.send_and_wait(topic, env.to_bytes(), key=self.order_id.encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, svc) -> None:
        self.svc, self.client, self.rt = svc, svc.client, svc.runtime

    def headers(self, role: str, merchant_id: str | None = None, customer_id: str | None = None) -> dict:
        token = issue_token(Principal(role=role, subject=f"{role}-client", merchant_id=merchant_id),
                            self.rt.settings.token_secret, now=self.rt.clock.now())
        h = {"Authorization": f"Bearer {token}"}
        if customer_id:
            h["X-Customer-Id"] = customer_id
        return h

    @property
    def operator(self) -> dict:
        return self.headers("platform_operator")

    async def messages(self, order_id: str, headers: dict | None = None) -> list[dict]:
        r = await self.client.get("/v1/messages", params={"order_id": order_id}, headers=headers or self.operator)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    async def reveal(self, message_id: int, reason: str = "客户来电核实号码") -> str:
        """The whole phone number of one message (an operator's recorded reveal)."""
        r = await self.client.post(f"/v1/messages/{message_id}/reveal-phone", json={"reason": reason},
                                   headers=self.operator)
        assert r.status_code == 200, r.text
        return r.json()["phone"]

    async def wait_messages(self, order_id: str, n: int, **filters) -> list[dict]:
        async def check():
            items = [m for m in await self.messages(order_id)
                     if all(m[k] == v for k, v in filters.items())]
            return items if len(items) >= n else None
        return await eventually(check)


@pytest.fixture
def notifier_factory(start_service, database_url, tmp_path):
    async def start(**overrides) -> Api:
        overrides.setdefault("sms_log_file", str(tmp_path / "sms.log"))
        overrides.setdefault("rate_limit_per_window", 100)
        overrides.setdefault("dispatch_interval_s", 0.05)
        if "database_url" not in overrides:  # (a second replica passes the first one's)
            overrides["database_url"] = await database_url("notifier")
        svc = await start_service(create_app, NotifierSettings, clock="virtual", **overrides)
        return Api(svc)
    return start


@pytest.fixture
async def notifier(notifier_factory) -> Api:
    return await notifier_factory()


@pytest.fixture
def new_order(producer, notifier):
    def make(**kw) -> OrderFeed:
        return OrderFeed(producer, notifier.rt.clock, **kw)
    return make


@pytest.fixture
def feed_for(producer):
    """Order feeds on a given notifier's clock (for tests starting the notifier themselves)."""
    def make(api: Api, **kw) -> OrderFeed:
        return OrderFeed(producer, api.rt.clock, **kw)
    return make


@pytest.fixture
def port_factory():
    return free_port
