"""The decision writer process (started by ``DecisionPublisher.run``, see publisher.py).

Reads batches of decisions from stdin (``publisher.frame``), writes each to the outbox
in one transaction (retrying while the database is unavailable), and acknowledges it
with a line "<seq>" on stdout, in order. Ends on a stop frame or when stdin closes
(the service is gone). Logs go to stderr, as the service's do.
"""
from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import sys
from datetime import datetime

import shared.contracts  # noqa: F401 - registers the event types (topics)
from consultation_routing.models import messaging
from consultation_routing.publisher import FRAME_HEAD, outbox_bundles, write_bundles
from shared import db
from shared.events import registry
from shared.logging import configure_logging
from shared.outbox import Outbox

log = logging.getLogger("consultation_routing.decision_writer")
MAX_FRAME = 1 << 28


class _At:
    """The clock of one batch: the outbox rows carry the service's time when it handed the
    batch over (the service may run on a virtual clock this process does not share)."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def now(self) -> datetime:
        return self.at


async def _write(sessions, outbox: Outbox, items: list, stopping: asyncio.Event) -> bool:
    """Write one batch, retrying while the database is unavailable; once the service is
    stopping, one more attempt only (it must not hold the service's shutdown)."""
    bundles = outbox_bundles(items, registry.topic_for)
    delay = 0.1
    while True:
        try:
            await write_bundles(sessions, outbox, bundles)
            return True
        except Exception as exc:  # noqa: BLE001 - the database may be down; keep the batch and retry
            if stopping.is_set():
                log.error("decisions not written at stop", extra={"error": repr(exc), "count": len(items)})
                return False
            log.warning("writing decisions failed; retrying", extra={"error": repr(exc), "count": len(items)})
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass
            delay = min(delay * 2, 5.0)


async def _read_frames(reader: asyncio.StreamReader, queue: asyncio.Queue, stopping: asyncio.Event) -> None:
    try:
        while True:
            n = int.from_bytes(await reader.readexactly(FRAME_HEAD), "big")
            if n == 0:
                return  # stop: write what was handed over, then end
            queue.put_nowait(pickle.loads(await reader.readexactly(n)))
    except asyncio.IncompleteReadError:
        return  # the service closed the pipe (or is gone)
    finally:
        stopping.set()
        queue.put_nowait(None)


async def serve(url: str) -> None:
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    clock = _At()
    outbox = Outbox(messaging, registry, clock)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    queue: asyncio.Queue = asyncio.Queue()
    stopping = asyncio.Event()
    frames = asyncio.create_task(_read_frames(reader, queue, stopping))
    out = sys.stdout.buffer
    try:
        while (batch := await queue.get()) is not None:
            seq, clock.at, items = batch
            if await _write(sessions, outbox, items, stopping):
                out.write(b"%d\n" % seq)
                out.flush()
    finally:
        frames.cancel()
        await engine.dispose()


def main() -> None:
    # Ctrl-C in a terminal and a stop signal to the whole group reach this process too: it
    # ends when the service hands over its last batches and closes the pipe, not before.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging("consultation-routing", os.environ.get("ROUTING_WRITER_LOG_LEVEL", "INFO"),
                      os.environ.get("ROUTING_WRITER_LOG_JSON", "True") == "True")
    asyncio.run(serve(os.environ["ROUTING_WRITER_DATABASE_URL"]))


if __name__ == "__main__":
    main()
