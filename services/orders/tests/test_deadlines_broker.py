"""Through the broker: a fired deadline delivered twice (and a second timer for the same
deadline) refunds once; the refund is published as a transition event."""
import uuid
from datetime import datetime, timezone

from aiokafka import AIOKafkaProducer

from orders.app import create_app
from orders.settings import OrdersSettings
from shared.contracts.sla import DeadlineFired
from shared.events import make_envelope
from shared.testing import eventually
from shared.topics import SLA_EVENTS
from shared.auth import Principal, issue_token
from shared.settings import DEV_TOKEN_SECRET


def bearer(role, subject, **kw):
    return {"Authorization": "Bearer " + issue_token(Principal(role, subject, **kw), DEV_TOKEN_SECRET)}


async def test_deadline_delivered_twice_refunds_once(start_service, database_url, broker):
    svc = await start_service(create_app, OrdersSettings, database_url=await database_url("orders"))
    r = await svc.client.post("/v1/platform/merchants", headers=bearer("platform_operator", "op"), json={
        "id": "m-1", "name": "m", "kind": "pop_seller", "mode": "pop_self_service", "contact_phone": "400-000-1234",
        "return_address": "addr"})
    assert r.status_code == 201, r.text
    r = await svc.client.post("/v1/storefront/service-orders", headers={
        **bearer("storefront", "sf"), "X-Customer-Id": "c-1", "Idempotency-Key": "k"}, json={
        "merchant_id": "m-1", "customer_id": "c-1", "customer_phone": "13800138000", "sales_order_id": "so",
        "order_line_id": "1", "sku": "s", "category": "phones", "purchased_quantity": 1, "quantity": 1,
        "amount_paid": "199.00", "service_type": "return", "problem_type": "quality",
        "delivered_at": datetime.now(timezone.utc).isoformat()})
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    now = datetime.now(timezone.utc)

    def fired(timer: str):
        return make_envelope(type_="sla.deadline_fired", key=oid, producer="sla-timer", occurred_at=now,
                             data=DeadlineFired(timer_id=timer, order_id=oid, rule="advance_compensation",
                                                action="advance_compensation", order_version=1,
                                                order_state="pending_claim", due_at=now, fired_at=now))

    env = fired(str(uuid.uuid4()))
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    topic = SLA_EVENTS
    try:
        for e in (env, env, fired(str(uuid.uuid4()))):
            await producer.send_and_wait(topic, e.to_bytes(), key=oid.encode())
    finally:
        await producer.stop()

    async def refunded():
        ob = svc.runtime.tables.outbox
        from sqlalchemy import select
        async with svc.runtime.sessions() as s:
            rows = (await s.execute(select(ob.c.payload).where(ob.c.key == oid))).scalars().all()
        return [x for x in rows if "system.advance_compensation" in x] or None

    got = await eventually(refunded, timeout=30)
    assert len(got) == 1
    # let the duplicates drain, then check again
    from shared.testing import eventually as ev

    async def drained():
        async with svc.runtime.sessions() as s:
            from sqlalchemy import func, select
            t = svc.runtime.tables.processed_events
            return (await s.scalar(select(func.count()).select_from(t))) >= 2

    await ev(drained, timeout=30)
    assert len(await refunded()) == 1
