"""Through the embedded broker: catalogue events keep the catalogue current, and
decisions leave through the outbox (real lifespan: load on start, writer task)."""
from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer

from consultation_routing.app import create_app
from consultation_routing.parts import routing_of
from consultation_routing.settings import ConsultationRoutingSettings
from shared.auth import Principal, issue_token
from shared.contracts.routing import SkuUpserted
from shared.events import make_envelope
from shared.testing import eventually
from shared.topics import ROUTING_EVENTS


async def test_sku_upserted_event_is_consumed_and_decisions_are_relayed(start_service, database_url):
    # a generous transfer wait: the writer process may still be starting on a loaded machine
    svc = await start_service(create_app, ConsultationRoutingSettings, database_url=await database_url("routing"),
                              clock="virtual", transfer_wait_s=30)
    rt = svc.runtime
    op = {"Authorization": "Bearer " + issue_token(Principal("platform_operator", "op"), rt.settings.token_secret,
                                                   now=rt.clock.now())}
    # always open, whatever the time the test runs at
    r = await svc.client.put("/v1/manufacturers/m-1/enrollment", headers=op, json={
        "name": "Maker", "categories": ["phones"], "im_queue_id": "q-1", "phone_extension": "8001",
        "serve_non_working_days": True, "im_hours": {"start": "00:00", "end": "23:59"}})
    assert r.status_code == 200, r.text
    await svc.client.put("/v1/queues/m-1/state", headers=op, json={"agents_online": 1, "queue_length": 0})
    sf = {"Authorization": "Bearer " + issue_token(Principal("storefront", "shop"), rt.settings.token_secret,
                                                   now=rt.clock.now())}
    params = {"channel": "im", "entry_point": "product_page", "sku": "sku-ev"}
    first = (await svc.client.get("/v1/route", params=params, headers=sf)).json()
    assert first["reason"] == "unknown_sku"

    # a catalogue owner publishes the SKU (through this service's outbox onto routing.events)
    async with rt.uow() as s:
        await rt.outbox.add(s, make_envelope(type_="catalogue.sku_upserted", key="sku-ev", producer="catalogue",
                                             occurred_at=rt.clock.now(),
                                             data=SkuUpserted(sku="sku-ev", manufacturer_id="m-1", category="Phones")))

    async def routed():
        a = (await svc.client.get("/v1/route", params=params, headers=sf)).json()
        return a if a["reason"] == "enrolled" else None

    a = await eventually(routed)
    assert a["queue_id"] == "q-1"
    # the transfer names that decision a moment after it was answered: it waits for the
    # writer process to record it (decisions table), then bills it once
    r = await svc.client.post("/v1/transfers", headers=op, json={
        "decision_id": a["decision_id"], "manufacturer_id": "m-1", "agent_id": "ag", "reason": "coupon"})
    assert r.status_code == 201, r.text
    r = await svc.client.post("/v1/transfers", headers=op, json={
        "decision_id": first["decision_id"], "manufacturer_id": "m-1", "agent_id": "ag", "reason": "coupon"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "decision_not_found"  # unknown SKU: no maker

    async def all_published():
        return (await svc.client.get("/admin/outbox", headers=op)).json()["pending"] == 0 and \
            routing_of(rt).publisher.buffered() == 0

    await eventually(all_published)
    ob = rt.tables.outbox
    from sqlalchemy import select

    from shared.outbox import row_messages

    async with rt.sessions() as s:
        rows = (await s.execute(select(ob.c.event_type, ob.c.key, ob.c.payload))).all()
    decided = [v for r in rows for _k, v in row_messages(r.event_type, r.key, r.payload) if '"routing.decided"' in v]
    assert len(decided) >= 2
    # on the topic: one message per decision (not per bundle), keyed by manufacturer
    on_topic = await _routing_messages(rt.settings.kafka_bootstrap, {first["decision_id"], a["decision_id"]})
    assert on_topic[first["decision_id"]] == ("platform", "routing.decided")
    assert on_topic[a["decision_id"]] == ("m-1", "routing.decided")


async def _routing_messages(bootstrap: str, wanted: set[str]) -> dict[str, tuple[str, str]]:
    consumer = AIOKafkaConsumer(ROUTING_EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    found: dict[str, tuple[str, str]] = {}
    try:
        async def all_found():
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for rec in records:
                    env = json.loads(rec.value)
                    if env["type"] == "routing.decided":
                        found[env["data"]["decision_id"]] = (rec.key.decode(), env["type"])
            return wanted <= found.keys()

        await eventually(all_found)
    finally:
        await consumer.stop()
    return found
