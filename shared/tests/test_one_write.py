"""Under uvicorn every service answer goes out in one write (head and first body chunk
together); streamed bodies, keep-alive, ``Connection: close`` and an app failing between
head and body still behave as HTTP requires."""
import asyncio

from fastapi.responses import StreamingResponse

from shared import one_write
from shared.one_write import ServiceApp, call_with_one_write
from shared.testing import read_http_answer, serve_uvicorn


def _app() -> ServiceApp:
    app = ServiceApp()

    @app.get("/json")
    async def answer() -> dict:
        return {"ok": True}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():
            for part in (b"one,", b"two,", b"three"):
                yield part

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


async def test_one_write_per_answer_keep_alive_streaming_and_close(monkeypatch):
    writes = []
    flush = one_write._OneWrite.flush
    monkeypatch.setattr(one_write._OneWrite, "flush", lambda self: (writes.append(len(self.parts)), flush(self)))
    server, task, port = await serve_uvicorn(_app())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 200") and body == b'{"ok":true}'
        assert writes == [2]  # head and body in one write
        # a streamed body: head with the first chunk, the rest as it comes, all of it arrives
        writer.write(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 200") and body == b"one,two,three"
        assert writes == [2, 2]
        # pipelined on the same connection, then Connection: close
        writer.write(b"GET /nothing HTTP/1.1\r\nHost: t\r\n\r\nGET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        head, _ = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 404")
        head, body = await read_http_answer(reader)
        assert head.startswith(b"HTTP/1.1 200") and body == b'{"ok":true}'
        assert await reader.read() == b""  # the server closed after the answer
        assert writes == [2, 2, 2, 2]
        writer.close()
    finally:
        server.should_exit = True
        await task


async def test_an_app_failing_after_the_head_still_sends_it_and_the_connection_ends():
    async def broken(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"10")]})
        raise RuntimeError("failed before the body")

    async def app(scope, receive, send):
        await call_with_one_write(broken, scope, receive, send)

    server, task, port = await serve_uvicorn(app)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, not left hanging
        writer.close()
    finally:
        server.should_exit = True
        await task


async def test_without_uvicorn_send_is_used_as_it_is():
    sent = []

    async def send(message):
        sent.append(message["type"])

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/json", "raw_path": b"/json", "query_string": b"",
             "headers": [], "http_version": "1.1", "scheme": "http", "server": ("t", 80), "root_path": ""}
    await _app()(scope, receive, send)
    assert sent == ["http.response.start", "http.response.body"]
