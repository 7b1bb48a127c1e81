"""One socket write per HTTP answer under uvicorn.

uvicorn writes an answer's status line and headers, then its body, each with its own
``transport.write``: two system calls and usually two packets for every small JSON
answer, a measurable share of a hot endpoint's cost. ``ServiceApp`` (every service's
app class) lets uvicorn write the head into a buffer and hands head and first body
chunk to the transport together. Streamed bodies (``more_body``) are written as they
come after that first chunk. Under other servers (the tests' ASGI transport) ``send``
is used as it is.
"""
from __future__ import annotations

from fastapi import FastAPI


class _OneWrite:
    """Stands in for the connection's transport while uvicorn writes one answer:
    holds the writes (and a close) and hands them to the transport as one write."""

    __slots__ = ("transport", "parts", "closing")

    def __init__(self, transport) -> None:
        self.transport = transport
        self.parts: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing or self.transport.is_closing()

    def __getattr__(self, name):
        return getattr(self.transport, name)

    def flush(self) -> None:
        if self.parts and not self.transport.is_closing():
            self.transport.write(b"".join(self.parts))
        self.parts.clear()
        if self.closing:
            self.transport.close()


async def call_with_one_write(app, scope, receive, send) -> None:
    """Run ``app`` with uvicorn's writes of each answer's head and first body chunk joined."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or scope["type"] != "http":
        await app(scope, receive, send)
        return
    held: _OneWrite | None = None

    def release() -> None:
        nonlocal held
        if held is not None:
            one, held = held, None
            cycle.transport = transport
            one.flush()

    async def send_joined(message) -> None:
        nonlocal held
        kind = message["type"]
        if kind == "http.response.start":
            held = _OneWrite(transport)
            cycle.transport = held
            await send(message)
        elif kind == "http.response.body" and held is not None:
            try:
                await send(message)
            finally:
                release()
        else:
            await send(message)

    try:
        await app(scope, receive, send_joined)
    finally:
        release()  # an app that failed between head and body: what uvicorn wrote still goes out


class ServiceApp(FastAPI):
    """FastAPI with one write per answer (see the module). ``handle`` is the app proper;
    a service may put a fast path in front of it by overriding ``handle``."""

    async def __call__(self, scope, receive, send) -> None:
        await call_with_one_write(self.handle, scope, receive, send)

    async def handle(self, scope, receive, send) -> None:
        await FastAPI.__call__(self, scope, receive, send)

    async def call_stack(self, scope, receive, send) -> None:
        """The full stack (middleware, routing), whatever ``handle`` does first."""
        await FastAPI.__call__(self, scope, receive, send)
