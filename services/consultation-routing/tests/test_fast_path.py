"""The hot path's own pieces: the hand-written query parser, the app answering
/v1/route ahead of the middleware stack, and the decision writer thread."""
from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from consultation_routing.api.route import parse_query
from shared.testing import eventually

from .test_api import ready

_chars = st.sampled_from(list("ab=&%+20E4B8AD;x "))


@given(st.text(_chars, max_size=30))
def test_parse_query_is_dict_of_parse_qsl(raw):
    assert parse_query(raw) == dict(parse_qsl(raw))


async def test_route_answers_ahead_of_the_stack_and_everything_else_goes_through_it(api):
    r = await api.client.get("/v1/route", params={"channel": "im", "entry_point": "product_page"},
                             headers={"x-correlation-id": "cid-1"})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == "cid-1"
    assert r.json()["reason"] == "unknown_sku"
    r = await api.client.get("/v1/route", params={"channel": "fax", "entry_point": "product_page"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_channel"
    # other paths and methods reach FastAPI (its 404/405 handling, the request middleware)
    assert (await api.client.post("/v1/route")).status_code == 405
    assert (await api.client.get("/v1/nothing-here")).status_code == 404


async def test_writer_thread_writes_every_decision_in_order_and_flushes_on_stop(api):
    await ready(api)
    pub = api.routing.publisher
    writer = asyncio.create_task(pub.run())
    first = [(await api.route(sku="sku-1"))["decision_id"] for _ in range(30)]

    async def written():
        return pub.buffered() == 0

    await eventually(written)
    assert len(await api.events("routing.decided")) == 30
    # decided just before the stop: still written, by the thread, before run() returns
    last = [(await api.route(sku="sku-1"))["decision_id"] for _ in range(20)]
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    assert pub.buffered() == 0
    ids = [e["data"]["decision_id"] for e in await api.events("routing.decided")]
    assert ids == first + last
