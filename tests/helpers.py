"""Helpers for cross-service tests: start services on one broker, make applications."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kpi.app import create_app as kpi_app
from kpi.settings import KpiSettings
from notifier.app import create_app as notifier_app
from notifier.settings import NotifierSettings
from orders.app import create_app as orders_app
from orders.settings import OrdersSettings
from consultation_routing.app import create_app as routing_app
from consultation_routing.settings import ConsultationRoutingSettings
from sla_timer.app import create_app as sla_app
from sla_timer.settings import SlaTimerSettings
from shared.auth import Principal, issue_token
from shared.settings import DEV_TOKEN_SECRET

SERVICES = {
    "orders": (orders_app, OrdersSettings),
    "consultation-routing": (routing_app, ConsultationRoutingSettings),
    "sla-timer": (sla_app, SlaTimerSettings),
    "kpi": (kpi_app, KpiSettings),
    "notifier": (notifier_app, NotifierSettings),
}


async def start_services(start_service, database_url, broker, names, **overrides):
    running = {}
    for name in names:
        create, settings_cls = SERVICES[name]
        running[name] = await start_service(
            create, settings_cls, database_url=await database_url(name), **overrides
        )
    return running


def application(n: int = 0, **changes) -> dict:
    body = {
        "merchant_id": "m-1",
        "customer_id": f"c-{n}",
        "customer_phone": "13800138000",
        "customer_level": "diamond",
        "sales_order_id": f"so-{n}",
        "order_line_id": "1",
        "sku": "sku-1",
        "category": "phones",
        "purchased_quantity": 2,
        "quantity": 1,
        "amount_paid": "199.00",
        "service_type": "return",
        "problem_type": "quality",
        "delivered_at": (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(),
        "description": "screen flickers",
    }
    body.update(changes)
    return body


def bearer(role: str, subject: str, secret: str = DEV_TOKEN_SECRET, **kw) -> dict:
    """Authorization header for a principal, signed with the services' (test) token secret.
    Valid for a day: modules build some at import time, and the whole suite takes a while."""
    from datetime import timedelta

    return {"Authorization": "Bearer " + issue_token(Principal(role, subject, **kw), secret, ttl=timedelta(days=1))}


def operator_headers(subject: str = "test-operator") -> dict:
    """A platform operator's token, long-lived (virtual-clock tests move days ahead):
    /admin/* and /metrics are for operators only."""
    from datetime import timedelta

    return {"Authorization": "Bearer " + issue_token(Principal("platform_operator", subject), DEV_TOKEN_SECRET,
                                                     ttl=timedelta(days=3650))}


def storefront_headers(customer_id: str) -> dict:
    """The storefront back end acting for one customer (orders API auth, issue 3)."""
    return {**bearer("storefront", "test-storefront"), "X-Customer-Id": customer_id}


async def ensure_merchant(orders_client, merchant_id: str = "m-1") -> None:
    """Onboard the merchant the applications name (orders refuses unknown merchants)."""
    r = await orders_client.post(
        "/v1/platform/merchants",
        json={"id": merchant_id, "name": f"Merchant {merchant_id}", "kind": "pop_seller", "mode": "pop_self_service",
              "contact_phone": "400-000-1234", "return_address": "Beijing, 1 Return Rd",
              "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"}]},
        headers=bearer("platform_operator", "test-operator"),
    )
    assert r.status_code in (201, 409), r.text


async def submit_application(orders_client, n: int, key: str | None = None, headers: dict | None = None, **changes):
    """Apply through the storefront API (the one place tests know how to call it)."""
    body = application(n, **changes)
    await ensure_merchant(orders_client, body["merchant_id"])
    return await orders_client.post(
        "/v1/storefront/service-orders",
        json=body,
        headers={"Idempotency-Key": key or f"key-{n}", **storefront_headers(body["customer_id"]), **(headers or {})},
    )
