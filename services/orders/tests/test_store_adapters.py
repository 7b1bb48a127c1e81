"""The order store's two adapters (adapters/store.py) only store what the domain decided:
the same requests through the SQLAlchemy session adapter and through the single-statement
asyncpg adapter get the same answers and leave the same orders, records and events
(PostgreSQL, where both run). Generated ids, numbers and secrets are compared by their
order of appearance."""
import base64
import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from orders.handlers.deadlines import deadline_handlers
from orders.models import Attachment, ExchangeOrder, Rating, ServiceOrder, TimelineEntry
from shared.contracts.sla import DeadlineFired

from .conftest import make_world, open_api

M = "/v1/merchant/service-orders"
S = "/v1/storefront/service-orders"
P = "/v1/platform/service-orders"


async def _script(api) -> list:
    """Every kind of write of the lifecycle, refusals included; returns what was answered."""
    w = await make_world(api)
    sf = api.cust(w["sf"])
    out = []

    async def call(path: str, headers: dict, body: dict | None = None, **kw) -> dict:
        r = await api.client.post(path, json=body or {}, headers=headers, **kw)
        out.append((path.rsplit("/", 1)[-1], r.status_code, r.json()))
        return r.json()

    async def apply(key: str, **changes) -> dict:
        body = api.apply_body(**changes)
        return await call(S, {**sf, "Idempotency-Key": key}, body)

    # applications: created, the retry, the key reused, the checks
    a = (await apply("k-a", purchased_quantity=2, amount_paid="398.00"))["id"]
    api._n -= 1
    await apply("k-a", purchased_quantity=2, amount_paid="398.00")
    await apply("k-a", sku="sku-2")
    await apply("k-x", sku="sku-404")
    await apply("k-y", quantity=3)
    line = api.apply_body(purchased_quantity=1)["sales_order_id"]
    await apply("k-z1", sales_order_id=line)
    await apply("k-z2", sales_order_id=line)  # the line is in service already
    # A: claim, audit with an attachment (a stale If-Match first), return, exchange, its shipment
    await call(f"{M}/{a}/claim", w["staff"])
    await call(f"{M}/{a}/claim", w["staff"])
    pic = {"filename": "photo.jpg", "content_type": "image/jpeg", "content_base64": base64.b64encode(b"x" * 10).decode()}
    await call(f"{M}/{a}/audit", {**w["staff"], "If-Match": "1"}, {"decision": "approve_return", "attachments": [pic]})
    await call(f"{M}/{a}/audit", {**w["staff"], "If-Match": "2"}, {"decision": "approve_return", "opinion": "ok",
                                                                   "attachments": [pic]})
    await call(f"{S}/{a}/shipment", sf, {"carrier": "SF", "tracking_number": "SF1", "freight_paid": "12.00"})
    await call(f"{M}/{a}/freight", w["staff"], {"freight_to_return": "10.00"})
    await call(f"{M}/{a}/receipt", w["staff"], {"condition": "scratched"})
    await call(f"{M}/{a}/process", w["staff"], {"decision": "exchange", "sku": "sku-3"})  # another price: refused
    await call(f"{M}/{a}/process", w["staff"], {"decision": "exchange", "sku": "sku-2"})
    await call(f"{M}/{a}/exchange-shipment", w["staff"], {"carrier": "JD", "tracking_number": "JD1"})
    await call(f"{M}/{a}/exchange-shipment", w["staff"], {"carrier": "JD", "tracking_number": "JD2"})
    await call(f"{S}/{a}/confirm", sf)
    await call(f"{S}/{a}/rating", sf, {"stars": 4, "text": "ok", "recommend": 8})
    await call(f"{S}/{a}/rating", sf, {"stars": 5})
    # B: assigned, resent without return, a follow-up message, an offline exchange
    b = (await apply("k-b"))["id"]
    await call(f"{M}/{b}/assign", w["main"], {"staff_id": "m-1.nobody"})
    await call(f"{M}/{b}/assign", w["main"], {"staff_id": "m-1.alice"})
    await call(f"{M}/{b}/audit", w["staff"], {"decision": "resend_without_return", "sku": "sku-1"})
    await call(f"{S}/{b}/messages", sf, {"text": "not arrived"})
    await call(f"{M}/{b}/replies", w["staff"], {"text": "on its way"})
    await call(f"{M}/{b}/process", w["staff"], {"decision": "offline_exchange", "tracking_number": "T1",
                                                 "note": "sent again"})
    # C: arbitration, receipt while locked, the arbitrator's refund, its payout
    c = (await apply("k-c"))["id"]
    await call(f"{M}/{c}/claim", w["staff"])
    await call(f"{M}/{c}/audit", w["staff"], {"decision": "approve_return"})
    await call(f"{S}/{c}/shipment", sf, {"carrier": "SF", "tracking_number": "SF3"})
    await call(f"{S}/{c}/arbitration", sf, {"reason": "merchant silent"})
    await call(f"{M}/{c}/receipt", w["staff"], {"condition": "ok"})
    await call(f"{M}/{c}/receipt", w["staff"], {"condition": "ok"})
    await call(f"{P}/{c}/arbitration-decision", w["arb"], {"outcome": "refund", "amount": "199.00", "note": "n"})
    await call(f"{P}/{c}/refund-paid", w["op"], {"payout_reference": "PAY-1"})
    # D: a deadline fired (the consumer's transaction), E: batch reject, F: abandoned for the customer
    d = (await apply("k-d"))["id"]
    api.clock.advance(timedelta(days=7))
    now = api.clock.now()
    fired = DeadlineFired(timer_id="t-1", order_id=d, rule="advance_compensation", action="advance_compensation",
                          order_version=1, order_state="pending_claim", due_at=now, fired_at=now)
    async with api.rt.sessions() as s, s.begin():
        await deadline_handlers(api.rt)["sla.deadline_fired"](s, None, fired)
    e = (await apply("k-e"))["id"]
    await call(f"{M}/{e}/claim", w["staff"])
    await call(f"{M}/batch-audit", w["staff"], {"order_ids": [e, d], "decision": "reject", "opinion": "no"})
    f = (await apply("k-f"))["id"]
    await call(f"{M}/{f}/abandon", w["main"], {"reason": "changed mind"})
    await call(f"{M}/{f}/abandon", w["main"], {"reason": "changed mind", "note": "called the customer"})
    for oid in (a, b, c, d, e, f):
        out.append(("view", (await api.client.get(f"{M}/{oid}", headers=w["main"])).json()))
        out.append(("progress", (await api.client.get(f"{S}/{oid}", headers=sf)).json()))
    return out


async def _stored(api) -> dict:
    async with api.rt.sessions() as s:
        def rows(table, *order):
            return s.execute(select(table).order_by(*order))

        stored = {}
        for name, table, order in (
                ("orders", ServiceOrder.__table__, (ServiceOrder.created_at, ServiceOrder.idempotency_key)),
                ("timeline", TimelineEntry.__table__, (TimelineEntry.id,)),
                ("ratings", Rating.__table__, (Rating.created_at,)),
                ("attachments", Attachment.__table__, (Attachment.created_at,)),
                ("exchange_orders", ExchangeOrder.__table__, (ExchangeOrder.created_at,)),
                ("outbox", api.rt.tables.outbox, (api.rt.tables.outbox.c.id,))):
            stored[name] = [dict(r) for r in (await rows(table, *order)).mappings()]
    for row in stored["outbox"]:
        row["payload"] = json.loads(row["payload"])
    return stored


_GENERATED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|AS\d{14}")


def _canonical(value) -> str:
    """JSON text with each generated id and order number replaced by its rank of appearance."""
    seen: dict[str, str] = {}
    text = json.dumps(value, default=str, sort_keys=True)
    return _GENERATED.sub(lambda m: seen.setdefault(m.group(0), f"<{len(seen)}>"), text)


@pytest.mark.parametrize("db_backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_both_adapters_answer_and_store_the_same(database_url, tmp_path):
    runs = {}
    for adapter in ("session", "direct"):
        async with open_api(await database_url(f"orders-{adapter}"), tmp_path / adapter,
                            order_store=adapter) as api:
            assert type(api.rt.order_store).__name__ == {"session": "SessionStore", "direct": "DirectStore"}[adapter]
            answers = await _script(api)
            stored = await _stored(api)
            for row in stored["outbox"]:  # events of each run have ids (and requests' correlation ids) of their own
                assert str(uuid.UUID(row.pop("event_id"))) == row["payload"].pop("id")
                row["payload"].pop("correlation_id")
            runs[adapter] = (_canonical(answers), _canonical(stored))
            # the script wrote every kind of record
            assert all(stored[k] for k in ("ratings", "attachments", "exchange_orders"))
            assert {r[1] for r in answers if len(r) == 3} >= {200, 201, 409, 422}
    assert runs["session"][0] == runs["direct"][0]
    assert runs["session"][1] == runs["direct"][1]
