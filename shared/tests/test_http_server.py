"""The services' HTTP protocol (``shared.http_server``): what one turn of the event loop writes
on a connection goes out in one write, in order, before the connection closes; answers of
every shape (small, streamed, large, closing the connection) arrive whole under uvicorn."""
from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from shared.http_server import FLUSH_AT, OneWriteTransport
from shared.testing import serve_uvicorn


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_one_turns_writes_go_out_as_one_in_order():
    fake = FakeTransport()
    t = OneWriteTransport(fake, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"body")
    assert fake.writes == []  # not before the turn ends
    await asyncio.sleep(0)
    assert fake.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    t.write(b"next")
    await asyncio.sleep(0)
    assert fake.writes[-1] == b"next" and len(fake.writes) == 2
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's own


async def test_close_sends_what_was_written_first_and_a_large_write_goes_at_once():
    fake = FakeTransport()
    t = OneWriteTransport(fake, asyncio.get_running_loop())
    t.write(b"head")
    t.close()
    assert fake.writes == [b"head"] and fake.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert fake.writes == [b"head"]

    fake = FakeTransport()
    t = OneWriteTransport(fake, asyncio.get_running_loop())
    t.write(b"h")
    t.write(b"x" * FLUSH_AT)
    assert fake.writes == [b"h" + b"x" * FLUSH_AT]


async def _stream():
    for i in range(5):
        yield f"chunk {i}\n".encode()
        await asyncio.sleep(0)


async def test_answers_of_every_shape_arrive_whole():
    big = "y" * (3 * FLUSH_AT + 17)
    app = Starlette(routes=[
        Route("/json", lambda r: JSONResponse({"ok": True, "n": 1})),
        Route("/big", lambda r: PlainTextResponse(big)),
        Route("/stream", lambda r: StreamingResponse(_stream())),
        Route("/close", lambda r: PlainTextResponse("bye", headers={"connection": "close"})),
    ])
    server, task, port = await serve_uvicorn(app)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):  # one kept-alive connection, answer after answer
                assert (await client.get("/json")).json() == {"ok": True, "n": 1}
                assert (await client.get("/big")).text == big
                assert (await client.get("/stream")).text == "".join(f"chunk {i}\n" for i in range(5))
            r = await client.get("/close")
            assert r.text == "bye" and r.headers["connection"] == "close"
            answers = await asyncio.gather(*(client.get("/json") for _ in range(20)))
            assert all(a.json() == {"ok": True, "n": 1} for a in answers)
    finally:
        server.should_exit = True
        await task
