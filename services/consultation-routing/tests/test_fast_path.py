"""The hot path's own pieces: the hand-written query parser, the app answering
/v1/route ahead of the middleware stack, and the decision writer process."""
from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from consultation_routing.api.route import parse_query
from shared.testing import eventually, read_http_answer, serve_uvicorn

from .test_api import ready

_chars = st.sampled_from(list("ab=&%+20E4B8AD;x "))


@given(st.text(_chars, max_size=30))
def test_parse_query_is_dict_of_parse_qsl(raw):
    assert parse_query(raw) == dict(parse_qsl(raw))


async def test_route_answers_ahead_of_the_stack_and_everything_else_goes_through_it(api):
    r = await api.client.get("/v1/route", params={"channel": "im", "entry_point": "product_page"},
                             headers={"x-correlation-id": "cid-1", **api.storefront})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == "cid-1"
    assert r.json()["reason"] == "unknown_sku"
    r = await api.client.get("/v1/route", params={"channel": "fax", "entry_point": "product_page"},
                             headers=api.storefront)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_channel"
    # other paths and methods reach FastAPI (its 404/405 handling, the request middleware)
    assert (await api.client.post("/v1/route")).status_code == 405
    assert (await api.client.get("/v1/nothing-here")).status_code == 404


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

    from consultation_routing import publisher as publisher_module

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
    from consultation_routing.publisher import DecisionPublisher
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
    from consultation_routing import journal as journal_module

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


async def test_answers_on_a_real_server_in_one_write_keep_alive_pipelining_and_close(api, monkeypatch):
    """Under uvicorn the fast path writes status line, headers and body together; keep-alive,
    pipelined requests and ``Connection: close`` behave as before."""
    from shared import one_write

    writes = []
    flush = one_write._OneWrite.flush
    monkeypatch.setattr(one_write._OneWrite, "flush", lambda self: (writes.append(len(self.parts)), flush(self)))
    server, task, port = await serve_uvicorn(api.app)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = api.storefront["Authorization"]
        route = f"GET /v1/route?channel=im&entry_point=product_page HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n"
        writer.write((route + "x-correlation-id: c1\r\n\r\n").encode())
        head, body = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 200") and b"x-correlation-id: c1" in head
        assert json.loads(body)["target"] == "platform"
        # pipelined: three requests in one packet, three answers in order
        writer.write(b"".join((route + f"x-correlation-id: p{i}\r\n\r\n").encode() for i in range(3)))
        for i in range(3):
            head, body = await read_http_answer(reader)
            assert f"x-correlation-id: p{i}".encode() in head and json.loads(body)["channel"] == "im"
        # a bad request answers 422 the same way; other paths still reach FastAPI
        writer.write(route.replace("channel=im", "channel=fax").encode() + b"\r\n")
        head, body = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 422") and json.loads(body)["error"]["code"] == "unknown_channel"
        # no token: 401 in the error shape, answered by the fast path in one write too
        writer.write(b"GET /v1/route?channel=im&entry_point=product_page HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 401") and json.loads(body)["error"]["code"] == "unauthorized"
        writer.write(b"GET /v1/nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        head, _ = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 404")
        # Connection: close: the answer, then the server closes
        writer.write((route + "connection: close\r\n\r\n").encode())
        head, body = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["reason"]
        assert await reader.read() == b""
        writer.close()
        assert writes == [2] * 8  # status line and headers, body: one write each time (the 404 too)
    finally:
        server.should_exit = True
        await task


def test_decision_events_are_envelopes_as_the_model_writes_them():
    from datetime import datetime, timedelta, timezone

    import shared.contracts  # noqa: F401 - registers the routing events
    from consultation_routing.domain.model import Consultation
    from consultation_routing.publisher import decision_events, decision_record
    from shared.events import Envelope, registry

    for at in (datetime(2026, 3, 3, 2, 0, 0, 123456, tzinfo=timezone.utc),
               datetime(2026, 3, 3, 10, 0, tzinfo=timezone(timedelta(hours=8)))):
        c = Consultation(channel="phone", entry_point="product_page", phase="after_sale", at=at, sku="sku-中",
                         customer_id="c-1", sales_order_id="so-1", service_order_id=None)
        d = {"decision_id": "d-1", "channel": "phone", "target": "platform", "reason": "overflow",
             "manufacturer_id": "m-1", "category": "apparel", "queue_id": None}
        events = decision_events(decision_record(c, d), 1)
        assert [t for t, _, _ in events] == ["routing.decided", "routing.billable_consultation"]
        for type_, key, raw in events:
            env = Envelope.model_validate_json(raw)
            assert env.model_dump_json() == raw and env.type == type_ and env.key == key == "m-1"
            assert env.occurred_at == at and env.producer == "consultation-routing"
            registry.parse_data(env)
        assert Envelope.model_validate_json(events[1][2]).data["package"] == 2
        data = Envelope.model_validate_json(events[0][2]).data
        assert (data["customer_id"], data["sales_order_id"], data["service_order_id"]) == ("c-1", "so-1", None)
        assert (data["sku"], data["entry_point"], data["phase"], data["decision_id"]) == (
            "sku-中", "product_page", "after_sale", "d-1")
    import gc

    record = decision_record(c, d)
    gc.collect()
    assert not gc.is_tracked(record)
