"""Stopping a service's background tasks in bounded time, and saying what held it.

A task that ignores its cancellation (or waits on something that never answers) must not
hold a service's shutdown forever: orchestrators kill it anyway, and a developer's Ctrl-C
should not hang. What a stuck task was waiting on is logged, down its chain of awaits
(asyncio's own ``Task.get_stack`` shows only the outermost frame of a suspended coroutine),
through the coroutines' public ``cr_await``/``cr_frame``. It stops at the awaited future or
task: following into it needs asyncio's private ``_fut_waiter`` (Python 3.14 has
``asyncio.capture_call_graph`` for it); every task still running is reported on its own.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Iterable

log = logging.getLogger(__name__)


def await_chain(task: asyncio.Task, limit: int = 40) -> list[str]:
    """Where ``task`` is suspended: one "file:line in function" per awaiting frame, then what
    the innermost frame awaits (``-> <repr>``)."""
    out: list[str] = []
    obj = task.get_coro()
    while obj is not None and len(out) < limit:
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None) or getattr(obj, "ag_frame", None)
        if frame is None:
            out.append(f"-> {obj!r}"[:300])
            break
        out.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None) or getattr(obj, "ag_await", None)
    return out


async def cancel_and_wait(tasks: Iterable[asyncio.Task], *, what: str, warn_after_s: float,
                          give_up_after_s: float) -> list[asyncio.Task]:
    """Cancel ``tasks`` and wait for them. Past ``warn_after_s`` the ones still running are
    logged with their await chains; past ``give_up_after_s`` they are left behind (logged
    again) and returned."""
    tasks = [t for t in tasks if not t.done()]
    for t in tasks:
        t.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=warn_after_s)
    if pending:
        _report(pending, what, f"still stopping after {warn_after_s:g} s", logging.WARNING)
        _, pending = await asyncio.wait(pending, timeout=max(0.0, give_up_after_s - warn_after_s))
    if pending:
        _report(pending, what, f"did not stop within {give_up_after_s:g} s; left behind", logging.ERROR)
    return sorted(pending, key=lambda t: t.get_name())


def _report(pending: set[asyncio.Task], what: str, how: str, level: int) -> None:
    for t in sorted(pending, key=lambda t: t.get_name()):
        log.log(level, "%s: task %s %s; waiting at:\n  %s", what, t.get_name(), how, "\n  ".join(await_chain(t)),
                extra={"task": t.get_name()})


async def bounded(aw, *, what: str, timeout_s: float) -> bool:
    """Await ``aw`` for at most ``timeout_s``; past that it is cancelled and, if it still does
    not end within a second, left behind. Unlike ``asyncio.wait_for`` (which waits for the
    cancelled operation to finish), this cannot be held by an operation that ignores its
    cancellation. Returns whether it completed; its failure is not raised."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        left = await cancel_and_wait([task], what=what, warn_after_s=1.0, give_up_after_s=1.0)
        if not left:
            log.warning("%s: did not finish within %g s; cancelled", what, timeout_s)
        return False
    if task.cancelled():
        return False
    exc = task.exception()
    if exc is not None:
        # expected when closing a client whose connection is already broken
        log.debug("%s failed: %r", what, exc)
        return False
    return True
