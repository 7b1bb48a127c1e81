"""How every service serves HTTP: uvicorn, with the options below (``shared.cli`` and the
benchmarks start their servers with them).

One option matters for speed: ``http=OneWriteHttpProtocol``, uvicorn's documented choice of
HTTP protocol class. uvicorn writes an answer's head and its body to the socket separately:
two ``send`` system calls per answer, and on a virtual machine a system call is dear (the
head's write was the largest single cost of GET /v1/route in a sampled profile). This class
is uvicorn's own httptools protocol, given a transport that joins what one turn of the event
loop writes on a connection into one write, made at the end of that turn."""
from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Past this many bytes waiting, a write goes out at once (a long streamed answer keeps the
# transport's own flow control, which sees only what was written to it).
FLUSH_AT = 64 * 1024


class OneWriteTransport:
    """A connection's transport whose writes of one loop turn go out as one; everything else
    is the transport's own."""

    __slots__ = ("_transport", "_loop", "_pending", "_size")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()

    def writelines(self, lines) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._size = [], 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # what was written before close goes out first, as with the transport itself
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``OneWriteTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWriteTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]


def uvicorn_options() -> dict:
    """uvicorn's options for a service (besides the app, host and port)."""
    return {"http": OneWriteHttpProtocol, "log_config": None, "access_log": False}
