"""Property test: random sequences of actions by random principals (docs/lifecycle.md invariants).

- only transitions of the table happen (and a refused request changes nothing);
- refunds never exceed what was paid plus the freight to return;
- a locked order changes only by the arbitrator (or a receipt registered while locked);
- every transition has exactly one timeline entry and one event; no request is a 5xx.
"""
import asyncio
import json
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from orders.app import MIGRATIONS, create_app
from orders.domain.states import ARBITRATION_OUTCOMES, TRANSITIONS
from orders.handlers.accounts import create_client
from orders.handlers.deadlines import deadline_handlers
from orders.models import ServiceOrder, TimelineEntry
from orders.settings import OrdersSettings
from shared.clock import ManualClock
from shared.contracts.sla import DeadlineFired
from shared.migrations import upgrade

START = __import__("datetime").datetime(2026, 3, 2, 2, 0, tzinfo=__import__("datetime").timezone.utc)

# action → (path, body) ; the principal decides the prefix.
BODY = {"decision": None, "amount": "100.00", "reason": "r", "remark": "m", "sku": "sku-2", "note": "n",
        "tracking_number": "t1", "customer_agreed_by_phone": True}
STEPS = {
    "claim": ("claim", {}), "assign": ("assign", {"staff_id": "m-1.alice"}),
    **{f"audit.{d}": ("audit", {"decision": d, "sku": "sku-2", "note": "n", "opinion": "o"})
       for d in ("resend_without_return", "approve_return", "request_feedback", "reject", "abandon")},
    "customer_feedback": ("feedback", {"text": "t"}), "abandon": ("abandon", {"note": "n"}),
    "fill_shipment": ("shipment", {"carrier": "SF", "tracking_number": "T", "freight_paid": "10.00"}),
    "remind_to_ship": ("remind-to-ship", {}), "register_receipt": ("receipt", {"condition": "ok"}),
    "freight.edit": ("freight", {"freight_to_return": "5.00"}),
    **{f"process.{d}": ("process", {**BODY, "decision": d})
       for d in ("refund", "exchange", "return_original", "offline_exchange", "repair")},
    "exchange.shipped": ("exchange-shipment", {"carrier": "JD", "tracking_number": "J"}),
    "cancel_outcome": ("cancel-outcome", {}), "confirm": ("confirm", {}), "message": ("messages", {"text": "m"}),
    "reply": ("replies", {"text": "r"}), "mark_resolved": ("resolve", {"note": "n"}),
    "rate": ("rating", {"stars": 3}), "refund.paid": ("refund-paid", {"payout_reference": "p"}), "arbitration.request": ("arbitration", {"reason": "r"}),
    "arbitration.decide": ("arbitration-decision", {"outcome": "refund", "amount": "150.00", "note": "n"}),
}
SYSTEM = ["auto_refund", "advance_compensation", "auto_close", "auto_confirm"]
PRINCIPALS = ["customer", "other_customer", "staff", "main", "other_merchant", "operator", "arbitrator", "system"]
PREFIX = {"customer": "/v1/storefront", "other_customer": "/v1/storefront", "staff": "/v1/merchant",
          "main": "/v1/merchant", "other_merchant": "/v1/merchant", "operator": "/v1/platform",
          "arbitrator": "/v1/platform"}
amounts = st.sampled_from(["1.00", "100.00", "199.00", "209.00", "209.01", "500.00"])


class World:
    async def start(self, url: str, tmp) -> None:
        s = OrdersSettings(environment="test", database_url=url, log_json=False, token_ttl_s=90 * 86400,
                           blob_dir=str(tmp / "blobs"), data_dir=str(tmp))
        self.app = create_app(s)
        self.rt = self.app.state.runtime
        self.rt.clock = self.rt.outbox.clock = ManualClock(START)
        await upgrade(MIGRATIONS, url)
        self.c = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://t")
        op = await self.tok(await create_client(self.rt, client_id="op", role="platform_operator", name="op"))
        arb = await self.tok(await create_client(self.rt, client_id="arb", role="arbitrator", name="arb"))
        mains = {}
        for mid in ("m-1", "m-2"):
            r = await self.c.post("/v1/platform/merchants", headers=op, json={
                "id": mid, "name": mid, "kind": "pop_seller", "mode": "pop_self_service", "contact_phone": "400-000-1234",
                "return_address": "addr", "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"},
                                                   {"sku": "sku-2", "category": "phones", "price": "199.00"}]})
            mains[mid] = await self.tok(r.json()["main_account"])
        r = await self.c.post("/v1/merchant/staff", headers=mains["m-1"], json={
            "login": "alice", "name": "a", "permissions": ["audit", "process"], "categories": ["phones"]})
        staff = await self.tok(r.json()["credentials"])
        sf = await self.tok(await create_client(self.rt, client_id="sf", role="storefront", name="sf"))
        self.h = {"customer": {**sf, "X-Customer-Id": "c-1"}, "other_customer": {**sf, "X-Customer-Id": "c-2"},
                  "staff": staff, "main": mains["m-1"], "other_merchant": mains["m-2"], "operator": op,
                  "arbitrator": arb}
        self.n = 0

    async def tok(self, creds: dict) -> dict:
        r = await self.c.post("/v1/oauth/token", data={"grant_type": "client_credentials", **{
            k: creds[k] for k in ("client_id", "client_secret")}})
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def order(self, oid: str) -> ServiceOrder:
        async with self.rt.sessions() as s:
            return await s.get(ServiceOrder, oid)


async def run_sequence(w: World, draw, n_steps: int) -> None:
    w.n += 1
    r = await w.c.post("/v1/storefront/service-orders", headers={**w.h["customer"], "Idempotency-Key": f"p{w.n}"}, json={
        "merchant_id": "m-1", "customer_id": "c-1", "customer_phone": "13800138000", "sales_order_id": f"so{w.n}",
        "order_line_id": "1", "sku": "sku-1", "category": "phones", "purchased_quantity": 1, "quantity": 1,
        "amount_paid": "199.00", "service_type": "return", "problem_type": "quality",
        "delivered_at": START.isoformat()})
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    handler = deadline_handlers(w.rt)["sla.deadline_fired"]
    for i in range(n_steps):
        before = await w.order(oid)
        # Mostly actions the table has for the current state (so deep states are reached), some at random.
        here = [a for (st_, a) in TRANSITIONS if st_ == before.state and a in STEPS] + [
            k for k, v in DEADLINE.items() if (before.state, v) in TRANSITIONS]
        progress = [a for a in here if a not in ("abandon", "audit.abandon", "audit.reject") and a not in SYSTEM]
        roll = draw(st.integers(0, 9))
        if progress and roll < 6:
            action = draw(st.sampled_from(sorted(progress)))
        elif here and roll < 8:
            action = draw(st.sampled_from(sorted(here)))
        else:
            action = draw(st.sampled_from(sorted(STEPS) + SYSTEM))
        rule = TRANSITIONS.get((before.state, action))
        fitting = sorted({"customer": "customer", "handler": "staff", "arbitrator": "arbitrator",
                                                                    "platform": "operator"}.get(p, "system")
                         for p in (rule.parties if rule else ()))
        who = draw(st.sampled_from(fitting)) if fitting and draw(st.booleans()) else draw(st.sampled_from(PRINCIPALS))
        amount = draw(amounts)
        if action in SYSTEM:
            who = "system"
        if who == "system":
            if action not in SYSTEM:
                continue
            fired = DeadlineFired(timer_id="t", order_id=oid, rule="r", action=action, order_version=before.version,
                                  order_state=before.state, due_at=START, fired_at=START)
            async with w.rt.sessions() as s:
                async with s.begin():
                    await handler(s, None, fired)
            ok, name = True, DEADLINE[action]
        else:
            path, body = STEPS[action]
            body = dict(body)
            if "amount" in body:
                body["amount"] = amount
            resp = await w.c.post(f"{PREFIX[who]}/service-orders/{oid}/{path}", headers=w.h[who], json=body)
            assert resp.status_code < 500, resp.text
            ok, name = resp.status_code < 300, action
        after = await w.order(oid)
        if after.version == before.version:
            assert after.state == before.state and after.refunded_amount == before.refunded_amount
            continue
        assert ok and after.version == before.version + 1
        rule = TRANSITIONS.get((before.state, name))
        assert rule is not None, (before.state, name)
        if name == "arbitration.decide":
            assert after.state in ARBITRATION_OUTCOMES.values()
        elif name == "register_receipt" and before.state == "arbitration":
            assert after.state == "arbitration"
        else:
            assert after.state == rule.to
        if before.state == "arbitration":
            assert who == "arbitrator" or name == "register_receipt"
        assert after.refunded_amount <= Decimal("199.00") + after.freight_to_return
    final = await w.order(oid)
    async with w.rt.sessions() as s:
        entries = (await s.scalars(select(TimelineEntry.version).where(
            TimelineEntry.order_id == oid, TimelineEntry.action != "apply"))).all()
        ob = w.rt.tables.outbox
        payloads = (await s.execute(select(ob.c.payload).where(
            ob.c.key == oid, ob.c.event_type == "service_order.transitioned"))).scalars().all()
    versions = sorted(json.loads(p)["data"]["version"] for p in payloads)
    assert sorted(entries) == versions == list(range(2, final.version + 1))


DEADLINE = {"auto_refund": "system.auto_refund", "advance_compensation": "system.advance_compensation",
            "auto_close": "system.auto_close", "auto_confirm": "system.auto_confirm"}



def test_random_action_sequences_keep_the_invariants(tmp_path):
    loop = asyncio.new_event_loop()
    w = World()
    loop.run_until_complete(w.start(f"sqlite+aiosqlite:///{tmp_path}/p.db", tmp_path))

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data(), n_steps=st.integers(1, 14))
    def check(data, n_steps):
        loop.run_until_complete(run_sequence(w, data.draw, n_steps))

    try:
        check()
    finally:
        loop.run_until_complete(w.c.aclose())
        loop.run_until_complete(w.rt.engine.dispose())
        loop.close()


_ = (pytest, func)
