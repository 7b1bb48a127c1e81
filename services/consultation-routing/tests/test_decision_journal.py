"""The hot path's pieces: GET /v1/route as an ordinary route of the stack, and the
decision journal and writer process behind it."""
from __future__ import annotations

import asyncio

from shared.testing import eventually

from .test_api import ready


async def test_route_goes_through_the_stack_like_every_route(api):
    """Correlation id and latency from the request middleware, errors in the one error shape,
    other methods and paths answered by FastAPI."""
    r = await api.client.get("/v1/route", params={"channel": "im", "entry_point": "product_page"},
                             headers={"x-correlation-id": "cid-1", **api.storefront})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == "cid-1"
    assert r.headers["content-type"] == "application/json" and r.json()["reason"] == "unknown_sku"
    r = await api.client.get("/v1/route", params={"channel": "fax", "entry_point": "product_page"},
                             headers=api.storefront)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_channel"
    assert r.json()["error"]["details"] == {"field": "channel", "value": "fax"}
    assert (await api.client.post("/v1/route")).status_code == 405
    assert (await api.client.get("/v1/nothing-here")).status_code == 404
    metrics = (await api.client.get("/metrics", headers=api.op)).text
    assert 'http_request_duration_seconds_count{method="GET",route="/v1/route",status="200"} 1.0' in metrics
    assert "routing_route_seconds_count 1.0" in metrics


async def test_blank_and_repeated_parameters(api):
    """A blank parameter counts as absent (a phase left blank is pre-sale, a blank SKU is no
    SKU), the last of a repeated one counts; a missing channel is unknown_channel."""
    await ready(api)
    sf = api.storefront
    r = await api.client.get("/v1/route?channel=im&entry_point=product_page&phase=&sku=", headers=sf)
    assert r.status_code == 200 and r.json()["reason"] == "unknown_sku"
    r = await api.client.get("/v1/route?channel=phone&channel=im&entry_point=product_page&sku=x&sku=sku-1",
                             headers=sf)
    assert r.status_code == 200 and (r.json()["channel"], r.json()["reason"]) == ("im", "enrolled")
    r = await api.client.get("/v1/route?entry_point=product_page", headers=sf)
    assert r.status_code == 422 and r.json()["error"]["details"] == {"field": "channel", "value": None}
    r = await api.client.get("/v1/route?channel=im&entry_point=product_page&phase=later", headers=sf)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_phase"
    r = await api.client.get("/v1/route", params={"channel": "im", "entry_point": "product_page", "sku": "s" * 101},
                             headers=sf)
    assert r.status_code == 422 and r.json()["error"] == {
        "code": "validation_error", "message": r.json()["error"]["message"], "details": {"field": "sku"}}


async def test_writer_process_writes_every_decision_in_order_and_flushes_on_stop(api):
    await ready(api)
    pub = api.routing.publisher
    writer = asyncio.create_task(pub.run())
    first = [(await api.route(sku="sku-1"))["decision_id"] for _ in range(30)]

    async def written():
        return pub.buffered() == 0

    await eventually(written, timeout=30)
    assert len(await api.events("routing.decided")) == 30
    # decided just before the stop: still handed over and written before run() returns
    last = [(await api.route(sku="sku-1"))["decision_id"] for _ in range(20)]
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    assert pub.buffered() == 0
    ids = [e["data"]["decision_id"] for e in await api.events("routing.decided")]
    assert ids == first + last


async def test_a_killed_writer_is_replaced_and_nothing_is_lost(api, monkeypatch):
    """The journal keeps the decisions: a writer killed at any point is replaced and the new
    one drains from the recorded position; nothing is dropped."""
    import signal

    from consultation_routing.adapters import publisher as publisher_module

    monkeypatch.setattr(publisher_module, "WRITER_START_RETRY_S", 0.05)
    await ready(api)
    pub = api.routing.publisher
    started = []
    start = pub._start_writer

    async def tracked_start():
        proc = await start()
        started.append(proc)
        return proc

    monkeypatch.setattr(pub, "_start_writer", tracked_start)
    writer = asyncio.create_task(pub.run())
    try:
        first = [(await api.route(sku="sku-1"))["decision_id"] for _ in range(5)]

        async def written():
            return pub.buffered() == 0 and len(started) == 1

        await eventually(written, timeout=30)
        started[0].send_signal(signal.SIGKILL)
        later = [(await api.route(sku="sku-1"))["decision_id"] for _ in range(5)]

        async def replaced():
            return len(started) == 2 and pub.buffered() == 0

        await eventually(replaced, timeout=30)
        assert pub.dropped._value.get() == 0
        assert pub.writer_restarts._value.get() == 1
        ids = [e["data"]["decision_id"] for e in await api.events("routing.decided")]
        assert ids == first + later
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


async def test_stopping_with_the_database_down_is_bounded_and_loses_nothing(api):
    """A database that is gone must not hold the shutdown; the decisions stay in the journal
    and the next start writes them."""
    from sqlalchemy import text

    await ready(api)
    pub = api.routing.publisher
    writer = asyncio.create_task(pub.run())
    await api.route(sku="sku-1")

    async def written():
        return pub.buffered() == 0

    await eventually(written, timeout=30)
    async with api.app.state.runtime.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))
    held = [(await api.route(sku="sku-1"))["decision_id"] for _ in range(5)]
    await asyncio.sleep(0.5)  # journaled; the writer is retrying
    started = asyncio.get_running_loop().time()
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    assert asyncio.get_running_loop().time() - started < 10
    assert pub.dropped._value.get() == 0
    assert not pub.journal.is_open, writer
    async with api.app.state.runtime.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE outbox_away RENAME TO outbox"))
    # the next start (a new publisher on the same journal) drains them
    from consultation_routing.adapters.publisher import DecisionPublisher
    from prometheus_client import CollectorRegistry
    from types import SimpleNamespace

    rt = SimpleNamespace(metrics=CollectorRegistry(), sessions=api.rt.sessions, outbox=api.rt.outbox,
                         registry=api.rt.registry, settings=api.rt.settings, clock=api.rt.clock)
    again = DecisionPublisher(rt, pub.state, capacity=1000, batch=100, journal_dir=str(pub.journal.directory))
    await again.flush()
    ids = [e["data"]["decision_id"] for e in await api.events("routing.decided")]
    assert ids[-5:] == held


async def test_a_billable_decision_is_answered_only_once_it_is_on_disk(api, monkeypatch):
    """The answer to a billable consultation waits for the fsync that made it durable."""
    from consultation_routing.adapters import journal as journal_module

    await ready(api)
    pub = api.routing.publisher
    synced = []
    real_sync = journal_module.Journal.sync

    def sync(self):
        real_sync(self)
        synced.append(len(pub.buffer))

    monkeypatch.setattr(journal_module.Journal, "sync", sync)
    writer = asyncio.create_task(pub.run())
    try:
        await api.queue(agents=0)  # no agents: the platform serves the enrolled maker's customer (billable)
        await api.routing.state.refresh()
        before = len(synced)
        a = await api.route(sku="sku-1", consultation_id="c-durable")
        assert a["target"] == "platform" and a["reason"] == "no_agents", a
        assert len(synced) > before  # an fsync happened before the answer came back
        assert pub.buffered() >= 0
        records = [r for _n, seg in journal_module.segments(pub.journal.directory)
                   for _end, frame in journal_module.read_frames(seg, 0) for r in frame]
        assert any(rec[0][8] == a["decision_id"] and rec[0][-1] is True for rec in records)
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


def test_decision_events_are_envelopes_of_the_contracts():
    from datetime import datetime, timedelta, timezone

    import shared.contracts  # noqa: F401 - registers the routing events
    from consultation_routing.domain.model import Consultation
    from consultation_routing.adapters.publisher import decision_events, decision_record
    from shared.contracts.routing import BillableConsultation, RoutingDecided
    from shared.events import decode, encode

    for at in (datetime(2026, 3, 3, 2, 0, 0, 123456, tzinfo=timezone.utc),
               datetime(2026, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=8)))):
        c = Consultation(channel="phone", entry_point="product_page", phase="after_sale", at=at, sku="sku-中",
                         customer_id="c-1", sales_order_id="so-1", service_order_id=None)
        d = {"decision_id": "d-1", "channel": "phone", "target": "platform", "reason": "overflow",
             "manufacturer_id": "m-1", "category": "apparel", "queue_id": None}
        events = decision_events(decision_record(c, d), 1)
        assert [e.type for e in events] == ["routing.decided", "routing.billable_consultation"]
        for env in events:
            back = decode(encode(env))  # what every consumer reads
            assert back == env and env.key == "m-1"
            assert env.occurred_at == at and env.producer == "consultation-routing"
        assert isinstance(events[1].data, BillableConsultation) and events[1].data.package == 2
        data = events[0].data
        assert isinstance(data, RoutingDecided)
        assert (data.customer_id, data.sales_order_id, data.service_order_id) == ("c-1", "so-1", None)
        assert (data.sku, data.entry_point, data.phase, data.decision_id) == ("sku-中", "product_page", "after_sale", "d-1")
    import gc

    record = decision_record(c, d)
    gc.collect()
    assert not gc.is_tracked(record)
