"""The KPI service's disqualification (docs/kpis.md) is acted on by the services that own the effect:
routing sends the manufacturer's consultations to the platform, orders puts its new service
orders in `platform` mode (served on its behalf); requalification lifts both."""
from datetime import date, datetime, timezone

from aiokafka import AIOKafkaProducer

from shared.contracts.kpi import ManufacturerDisqualified, ManufacturerRequalified
from shared.events import make_envelope
from shared.testing import eventually
from shared.topics import KPI_EVENTS
from tests.helpers import bearer, start_services, submit_application

OP = bearer("platform_operator", "test-operator")


async def publish(broker, type_: str, data) -> None:
    """What the KPI service's outbox relay puts on kpi.events."""
    env = make_envelope(type_=type_, key="m-1", producer="kpi", occurred_at=datetime.now(timezone.utc), data=data)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(KPI_EVENTS, env.to_bytes(), key=b"m-1")
    finally:
        await producer.stop()


async def test_disqualified_manufacturer_goes_to_the_platform_until_requalified(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "consultation-routing"])
    orders, routing = svc["orders"].client, svc["consultation-routing"].client
    r = await routing.put("/v1/manufacturers/m-1/enrollment", headers=OP, json={
        "name": "Maker m-1", "categories": ["phones"], "im_queue_id": "q-m-1", "phone_extension": "8001"})
    assert r.status_code == 200, r.text
    r = await routing.post("/v1/catalogue/skus", content=b"sku,manufacturer_id,category\nsku-1,m-1,phones\n",
                           headers={**OP, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    r = await routing.put("/v1/queues/m-1/state", headers=OP, json={"agents_online": 3, "queue_length": 0})
    assert r.status_code == 200, r.text

    async def reason():
        r = await routing.get("/v1/route", params={"sku": "sku-1", "channel": "im", "entry_point": "product_page"},
                              headers=bearer("storefront", "test-storefront"))
        return r.json()["reason"]

    assert await reason() != "disqualified"
    before = await submit_application(orders, 1, key="before")
    assert before.status_code == 201, before.text

    now = datetime.now(timezone.utc)
    await publish(broker, "kpi.manufacturer_disqualified", ManufacturerDisqualified(
        manufacturer_id="m-1", periods=[date(2026, 11, 9), date(2026, 11, 16)],
        scores={"2026-11-09": {"after_sales": "72.00", "consultation": None},
                "2026-11-16": {"after_sales": "75.50", "consultation": None}},
        threshold="80", disqualified_at=now))

    async def routed_to_platform():
        return (await reason()) == "disqualified"

    await eventually(routed_to_platform)
    r = await routing.get("/v1/manufacturers/m-1/enrollment", headers=OP)
    assert r.json()["disqualified"] is True and "80" in r.json()["disqualified_reason"]

    async def merchant_disqualified():
        r = await orders.get("/v1/platform/merchants/m-1", headers=OP)
        return r.json()["disqualified_since"]

    await eventually(merchant_disqualified)
    during = await submit_application(orders, 2, key="during")
    assert during.status_code == 201, during.text
    got = (await orders.get(f"/v1/platform/service-orders/{during.json()['id']}", headers=OP)).json()
    assert got["mode"] == "platform" and got["on_behalf"] is True
    # the order opened before keeps the mode it was opened with
    old = (await orders.get(f"/v1/platform/service-orders/{before.json()['id']}", headers=OP)).json()
    assert old["mode"] != "platform" and old["on_behalf"] is False

    await publish(broker, "kpi.manufacturer_requalified", ManufacturerRequalified(
        manufacturer_id="m-1", operator_id="op-1", note="improved", requalified_at=datetime.now(timezone.utc)))

    async def back_to_manufacturer():
        return (await reason()) != "disqualified"

    await eventually(back_to_manufacturer)

    async def merchant_requalified():
        r = await orders.get("/v1/platform/merchants/m-1", headers=OP)
        return r.json()["disqualified_since"] is None

    await eventually(merchant_requalified)
    after = await submit_application(orders, 3, key="after")
    got = (await orders.get(f"/v1/platform/service-orders/{after.json()['id']}", headers=OP)).json()
    assert got["mode"] != "platform" and got["on_behalf"] is False
