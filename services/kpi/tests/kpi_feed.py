"""Feeding the KPI service real envelopes through the broker (what the orders,
SLA-timer and routing services publish), and tokens for its API."""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import shared.contracts  # noqa: F401
from shared.auth import Principal, issue_token
from shared.events import make_envelope
from shared.topics import CATALOGUE_EVENTS, ORDER_EVENTS, SLA_EVENTS


def _snap(merchant: str, created: datetime, **over) -> dict:
    return {"merchant_id": merchant, "customer_id": "c-1", "customer_phone": "13800138000",
            "customer_level": "regular", "sales_order_id": "so-1", "sku": "sku-1", "category": "phones",
            "quantity": 1, "amount_paid": Decimal("199.00"), "service_type": "return", "problem_type": "quality",
            "created_at": created, **over}


class Feed:
    def __init__(self, producer):
        self.p = producer

    async def send(self, topic, env, key):
        await self.p.send_and_wait(topic, env.to_bytes(), key=key.encode())
        return env

    async def created(self, merchant, at, **snap):
        oid = str(uuid.uuid4())
        data = {**_snap(merchant, at, **snap), "order_id": oid, "number": "SO1", "version": 1,
                "state": "pending_claim", "delivered_at": at}
        await self.send(ORDER_EVENTS, make_envelope(type_="service_order.created", key=oid, producer="orders",
                                                    occurred_at=at, data=data), oid)
        return oid

    async def act(self, oid, merchant, created, action, at, version, *, snap=None, to_state="pending_process",
                  actor_role="merchant_main", **details):
        data = {"order_id": oid, "number": "SO1", "version": version, "action": action,
                "from_state": "pending_audit", "to_state": to_state, "actor_role": actor_role, "actor_id": "u-1", "occurred_at": at,
                "order": _snap(merchant, created, **(snap or {})), "details": details}
        return await self.send(ORDER_EVENTS, make_envelope(type_="service_order.transitioned", key=oid,
                                                           producer="orders", occurred_at=at, data=data), oid)

    async def catalogue(self, merchant, sku, category, at):
        """``catalogue.sku_upserted`` as the orders service publishes it (key: the SKU)."""
        env = make_envelope(type_="catalogue.sku_upserted", key=sku, producer="orders", occurred_at=at,
                            data={"sku": sku, "manufacturer_id": merchant, "category": category})
        return await self.send(CATALOGUE_EVENTS, env, sku)

    async def penalty(self, oid, at):
        data = {"timer_id": str(uuid.uuid4()), "order_id": oid, "rule": "processing_penalty", "action": "penalty",
                "order_version": 3, "order_state": "pending_process", "due_at": at, "fired_at": at,
                "details": {"amount_cny": "2000.00"}}
        return await self.send(SLA_EVENTS, make_envelope(type_="sla.deadline_fired", key=oid, producer="sla-timer",
                                                         occurred_at=at, data=data), oid)


def _auth(kpi, role, merchant=None):
    tok = issue_token(Principal(role, "test", merchant_id=merchant), kpi.runtime.settings.token_secret,
                      now=kpi.runtime.clock.now())
    return {"authorization": f"Bearer {tok}"}
