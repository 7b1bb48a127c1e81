"""Demo data for ``make run`` (``orders seed-demo``): idempotent.

Demo client secrets are derived from the token secret (HMAC), so a re-run prints
the same credentials without storing them in clear anywhere."""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import select

from orders.adapters.secret_hashing import LegacyPbkdf2Hasher, hash_secret
from orders.handlers.apply import apply_for_service
from orders.handlers.catalogue_events import publish_skus
from orders.handlers.lifecycle import perform
from orders.models import ApiClient, Merchant, ServiceOrder, Sku, Staff
from orders.schemas import ApplicationIn
from shared.auth import Principal

MERCHANTS = [
    {"id": "pop-demo", "name": "Demo POP phone shop", "kind": "pop_seller", "mode": "pop_self_service",
     "contact_phone": "010-5555-0101", "return_address": "北京市大兴区亦庄经济开发区 售后部 1 号",
     "skus": [("phone-x1-black", "phones", "1999.00"), ("phone-x1-white", "phones", "1999.00"),
              ("case-x1", "accessories", "59.00")]},
    {"id": "mfr-demo", "name": "Demo appliance manufacturer", "kind": "manufacturer", "mode": "customer_contact",
     "contact_phone": "400-606-5500", "return_address": "上海市浦东新区 厂家售后中心",
     "category_modes": {"tv": "full_manufacturer"},
     "skus": [("fridge-300l", "appliances", "3299.00"), ("tv-55", "tv", "2899.00")]},
]
STAFF = [("pop-demo", "audit1", ["audit"], ["phones", "accessories"]),
         ("pop-demo", "proc1", ["process"], ["phones", "accessories"]),
         ("mfr-demo", "agent1", ["audit", "process"], ["appliances", "tv"])]
CLIENTS = [("demo-operator", "platform_operator", None, None), ("demo-arbitrator", "arbitrator", None, None),
           ("demo-storefront", "storefront", None, None), ("pop-demo.main", "merchant_main", "pop-demo", None),
           ("mfr-demo.main", "merchant_main", "mfr-demo", None)] + [
    (f"{m}.{login}", "merchant_staff", m, f"{m}.{login}") for m, login, _p, _c in STAFF]


def demo_secret(settings, client_id: str) -> str:
    return hmac.new(settings.token_secret.encode(), f"demo:{client_id}".encode(), hashlib.sha256).hexdigest()[:32]


class DemoRefused(RuntimeError):
    """Demo data is never written to a production database."""


async def seed_demo(rt) -> dict:
    if rt.settings.environment == "production":
        raise DemoRefused("demo data is for demonstrations only: refused with ENVIRONMENT=production")
    now = rt.clock.now()
    async with rt.uow() as s:
        for m in MERCHANTS:
            if await s.get(Merchant, m["id"]) is None:
                s.add(Merchant(id=m["id"], name=m["name"], kind=m["kind"], mode=m["mode"],
                               category_modes=m.get("category_modes", {}), contact_phone=m["contact_phone"],
                               return_address=m["return_address"], served_by_platform=False, created_at=now))
                await s.flush()
                for sku, cat, price in m["skus"]:
                    s.add(Sku(merchant_id=m["id"], sku=sku, category=cat, price=Decimal(price)))
            # every run (idempotent upserts): a demo database seeded before the catalogue was
            # published catches up, so the demo SKUs route to their manufacturer
            await publish_skus(rt, s, m["id"], m["kind"],
                               [SimpleNamespace(sku=sku, category=cat) for sku, cat, _p in m["skus"]])
        for mid, login, perms, cats in STAFF:
            if await s.get(Staff, f"{mid}.{login}") is None:
                s.add(Staff(id=f"{mid}.{login}", merchant_id=mid, name=login, permissions=perms, categories=cats,
                            active=True, created_at=now))
        await s.flush()
        for cid, role, mid, staff_id in CLIENTS:
            existing = await s.get(ApiClient, cid)
            if existing is None:
                s.add(ApiClient(client_id=cid, secret_hash=hash_secret(demo_secret(rt.settings, cid)), role=role,
                                merchant_id=mid, staff_id=staff_id, name=cid, active=True, created_at=now, version=1))
            elif LegacyPbkdf2Hasher.identify(existing.secret_hash):
                # seeded before Argon2: the seed knows the secret, so it stores the current format
                existing.secret_hash = hash_secret(demo_secret(rt.settings, cid))
    sf = Principal("storefront", "demo-storefront", customer_id="demo-customer-1")
    base = dict(customer_id="demo-customer-1", customer_phone="13800138000", customer_level="diamond",
                order_line_id="1", purchased_quantity=1, quantity=1, delivered_at=now - timedelta(days=3))
    apps = [
        ("demo-1", dict(merchant_id="pop-demo", sales_order_id="SO-DEMO-1", sku="phone-x1-black", category="phones",
                        amount_paid=Decimal("1999.00"), service_type="return", problem_type="quality",
                        description="屏幕闪烁 screen flickers")),
        ("demo-2", dict(merchant_id="pop-demo", sales_order_id="SO-DEMO-2", sku="case-x1", category="accessories",
                        amount_paid=Decimal("59.00"), service_type="return", problem_type="no_reason",
                        description="不喜欢颜色 colour not as expected")),
        ("demo-3", dict(merchant_id="mfr-demo", sales_order_id="SO-DEMO-3", sku="fridge-300l", category="appliances",
                        amount_paid=Decimal("3299.00"), service_type="exchange", problem_type="quality",
                        description="不制冷 not cooling")),
    ]
    ids = {}
    for key, fields in apps:
        async with rt.sessions() as s:
            existing = await s.scalar(select(ServiceOrder.id).where(
                ServiceOrder.customer_id == sf.customer_id, ServiceOrder.idempotency_key == key))
        if existing is None:
            order, _ = await apply_for_service(rt, sf, ApplicationIn(**base, **fields), key)
            existing = order.id
        ids[key] = existing
    # demo-2 goes as far as waiting for the customer's return shipment.
    async with rt.sessions() as s:
        o2 = await s.scalar(select(ServiceOrder).where(ServiceOrder.id == ids["demo-2"]))
    if o2.state == "pending_claim":
        auditor = Principal("merchant_staff", "pop-demo.audit1", merchant_id="pop-demo",
                            permissions=frozenset({"audit"}), categories=frozenset({"phones", "accessories"}))
        await perform(rt, auditor, o2.id, "claim", {})
        await perform(rt, auditor, o2.id, "audit.approve_return", {"opinion": "同意退货，请寄回 please send it back"})
    return {"clients": {cid: {"client_id": cid, "client_secret": demo_secret(rt.settings, cid), "role": role}
                        for cid, role, _m, _s in CLIENTS},
            "customer_id": "demo-customer-1", "orders": ids}
