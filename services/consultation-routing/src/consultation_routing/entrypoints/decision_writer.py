"""The decision writer process (started by ``DecisionPublisher.run``, see adapters/publisher.py).

Drains the decision journal (``journal.Drainer``: one writer per journal directory, by
lock) into the outbox, batch by batch, each in one transaction (retrying while the
database is unavailable), recording the journal position after each commit and telling
the service how many decisions it wrote with a line "<n>" on stdout. Each batch also
records, in the same transaction, the decisions a transfer may name (``decisions``);
every ``FORGET_EVERY_S`` the writer deletes those older than the retention, measured on
the time of the latest decision it wrote. A line on stdin
means "more was journaled"; without one it still looks every 0.2 s. EOF on stdin (the
service stops, or is gone) makes it drain everything left, then end. Logs go to stderr,
as the service's do.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone

import shared.contracts  # noqa: F401 - registers the event types (topics)
from consultation_routing.adapters.journal import Drainer
from consultation_routing.models import messaging
from consultation_routing.adapters.publisher import drain_once, forget_decisions
from shared import db
from shared.events import registry
from shared.logging import configure_logging
from shared.outbox import Outbox
from shared.retry import Backoff

log = logging.getLogger("consultation_routing.entrypoints.decision_writer")
POLL_S = 0.2
FORGET_EVERY_S = 60.0
STOP_ATTEMPTS = 2


class _At:
    """The outbox rows carry the time of the decisions they hold (the service may run on
    a virtual clock this process does not share); the system time only if none is known."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def now(self) -> datetime:
        return self.at or datetime.now(timezone.utc)


async def _wakeups(reader: asyncio.StreamReader, wake: asyncio.Event, eof: asyncio.Event) -> None:
    try:
        while await reader.readline():
            wake.set()
    finally:
        eof.set()
        wake.set()


async def _forget(sessions, clock: "_At", retention: timedelta) -> None:
    if clock.at is None:
        return  # no decision written yet: nothing to measure the retention from
    try:
        await forget_decisions(sessions, clock.at - retention)
    except Exception as exc:  # noqa: BLE001 - tried again at the next round
        log.warning("deleting old decisions failed", extra={"error": repr(exc)})


async def serve(url: str, journal_dir: str, batch: int, retention: timedelta = timedelta(hours=72)) -> None:
    drainer = await asyncio.to_thread(Drainer, journal_dir)  # waits while an older writer still drains
    engine = db.create_engine(url)
    sessions = db.session_factory(engine)
    clock = _At()
    outbox = Outbox(messaging, registry, clock)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    wake, eof = asyncio.Event(), asyncio.Event()
    wakeups = asyncio.create_task(_wakeups(reader, wake, eof))
    out = sys.stdout.buffer
    retry, failed_at_stop = Backoff(0.1, 5.0), 0  # while the database is away
    forgotten_at = time.monotonic()
    try:
        while True:
            if time.monotonic() - forgotten_at >= FORGET_EVERY_S:
                forgotten_at = time.monotonic()
                await _forget(sessions, clock, retention)
            try:
                n = await drain_once(drainer, sessions, outbox, batch,
                                     before_write=lambda items: setattr(clock, "at", items[-1][0][0]))
            except Exception as exc:  # noqa: BLE001 - the database may be down: the journal keeps them
                log.warning("writing decisions failed; retrying", extra={"error": repr(exc)})
                if eof.is_set():
                    # the service is stopping: a database that is gone must not hold it; the
                    # decisions stay in the journal and are drained at the next start
                    failed_at_stop += 1
                    if failed_at_stop >= STOP_ATTEMPTS:
                        log.error("decisions left in the journal at stop (drained at the next start)",
                                  extra={"error": repr(exc)})
                        return
                await retry.wait()
                continue
            retry.reset()
            if n:
                out.write(b"%d\n" % n)
                out.flush()
                continue
            if eof.is_set():
                return  # everything drained and the service is gone or stopping
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), POLL_S)
            except asyncio.TimeoutError:
                pass
    finally:
        wakeups.cancel()
        drainer.close()
        await engine.dispose()


def main() -> None:
    # Ctrl-C in a terminal and a stop signal to the whole group reach this process too: it
    # ends when the service closes the pipe (after its last journal append), not before.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # the service's LOG_JSON: True, False, or None (decided by whether stderr is a terminal)
    configure_logging("consultation-routing", os.environ.get("ROUTING_WRITER_LOG_LEVEL", "INFO"),
                      {"True": True, "False": False}.get(os.environ.get("ROUTING_WRITER_LOG_JSON", "True")),
                      production=os.environ.get("ROUTING_WRITER_PRODUCTION") == "True")
    asyncio.run(serve(os.environ["ROUTING_WRITER_DATABASE_URL"], os.environ["ROUTING_WRITER_JOURNAL_DIR"],
                      int(os.environ.get("ROUTING_WRITER_BATCH", "500")),
                      timedelta(hours=float(os.environ.get("ROUTING_WRITER_DECISION_RETENTION_H", "72")))))


if __name__ == "__main__":
    main()
