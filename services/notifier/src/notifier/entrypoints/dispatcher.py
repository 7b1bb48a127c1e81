"""Sends queued SMS outside any consumer transaction, with backoff and rate limit.

A step takes the due SMS as one batch: one transaction claims them (each checked for a stale
deadline, a number that cannot receive SMS and the recipient's rate limit, with one read of
the orders' transitions and one of the phones' recent sends for the whole batch), the provider
is called for each outside any transaction, and one more transaction records the outcomes.
Whatever the batch size, that is a handful of statements, not ten per message."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update

from notifier.entrypoints.consumers import release_orphaned_deferred
from notifier.domain.delivery import backoff, rate_limited_until, sms_capable
from notifier.handlers.messages import stale_deadlines, why_stale
from notifier.domain.masking import mask_phone
from notifier.models import QUEUED, SMS, Message, SeenTransition
from notifier.adapters.metrics import notifier_metrics
from notifier.adapters.providers import ProviderError, SmsProvider
from shared.db import one_of
from shared.runtime import Runtime

ORPHAN_SWEEP_S = 5.0  # how often deadlines deferred during a concurrent order commit are released

log = logging.getLogger(__name__)

M = Message.__table__
# A held message's new due time (executemany: one round trip for the batch's held ones).
HOLD = (update(M).where(M.c.id == bindparam("b_id"), M.c.status == "queued", M.c.next_attempt_at == bindparam("b_due"))
        .values(next_attempt_at=bindparam("b_until"), last_error="rate_limited: held until the window frees"))
# The outcome of a send on a claimed (leased) message: nobody else changes it meanwhile.
OUTCOME = (update(M).where(M.c.id == bindparam("b_id"))
           .values(status=bindparam("b_status"), attempts=bindparam("b_attempts"), sent_at=bindparam("b_sent_at"),
                   provider_message_id=bindparam("b_provider_id"), last_error=bindparam("b_error"),
                   next_attempt_at=bindparam("b_next")))


@dataclass
class Due:
    """A queued SMS as the claim reads it."""
    id: int
    order_id: str | None
    phone: str | None
    body: str
    template_key: str
    attempts: int
    next_attempt_at: datetime
    deadline_version: int | None
    deadline_cancelled_by: list | None


async def _transitions(session, order_ids: set[str]) -> dict[str, list[tuple[int, str, str, str]]]:
    """The transitions the notifier has seen of these orders (the staleness of their deadline messages)."""
    found: dict[str, list[tuple[int, str, str, str]]] = defaultdict(list)
    if order_ids:
        t = SeenTransition.__table__
        for order_id, *transition in (await session.execute(
                select(t.c.order_id, t.c.version, t.c.action, t.c.from_state, t.c.to_state)
                .where(one_of(session, t.c.order_id, sorted(order_ids))))).all():
            found[order_id].append(tuple(transition))
    return found


async def _recent_sends(session, phones: set[str], since: datetime) -> defaultdict[str, list[datetime]]:
    """When each number was last sent an SMS, inside the rate-limit window."""
    sent: defaultdict[str, list[datetime]] = defaultdict(list)
    if phones:
        for phone, at in (await session.execute(
                select(M.c.phone, M.c.sent_at).where(one_of(session, M.c.phone, sorted(phones)), M.c.channel == "sms",
                                                     M.c.sent_at.is_not(None), M.c.sent_at > since))).all():
            sent[phone].append(at)
    return sent


class Dispatcher:
    def __init__(self, rt: Runtime, provider: SmsProvider) -> None:
        self.rt, self.provider = rt, provider
        self.backlog = False  # the last step's batch was full: more are due, no pause before the next

    async def step(self) -> int:
        """Send every due queued SMS once (``dispatch_batch`` at most); returns how many were attempted."""
        claimed, lease = await self._claim()
        outcomes: list[tuple[Due, str | None, str | None]] = []
        for m in claimed:
            try:
                outcomes.append((m, await self.provider.send(m.phone, m.body, m.id), None))
            except ProviderError as e:
                outcomes.append((m, None, str(e)))
        if outcomes:
            await self._record(outcomes, lease)
        return len(claimed)

    async def _claim(self) -> tuple[list[Due], datetime]:
        """The due messages this dispatcher may send now, leased to it (a second replica skips
        them, and a crash mid-send leaves them due again after the lease); the others of the
        batch cancelled (stale deadline), failed (not a mobile number) or held (rate limit)."""
        s, now = self.rt.settings, self.rt.clock.now()
        window = timedelta(seconds=s.rate_limit_window_s)
        lease = now + timedelta(seconds=s.dispatch_lease_s)
        async with self.rt.uow() as session:
            # PostgreSQL: the rows are locked until the claim commits and a replica takes the
            # next ones (SKIP LOCKED); SQLite has one writer and no FOR UPDATE: the claim's
            # conditions below decide a race.
            due = [Due(*r) for r in (await session.execute(
                select(M.c.id, M.c.order_id, M.c.phone, M.c.body, M.c.template_key, M.c.attempts, M.c.next_attempt_at,
                       M.c.deadline_version, M.c.deadline_cancelled_by)
                .where(M.c.status == QUEUED, M.c.channel == SMS, M.c.next_attempt_at <= now)  # ix_messages_sms_queue
                .order_by(M.c.next_attempt_at, M.c.id).limit(s.dispatch_batch)
                .with_for_update(skip_locked=True))).all()]
            self.backlog = len(due) == s.dispatch_batch
            if not due:
                return [], lease
            transitions = await _transitions(session, {m.order_id for m in due
                                                       if m.deadline_version is not None and m.deadline_cancelled_by})
            recent = await _recent_sends(session, {m.phone for m in due if m.phone}, now - window)
            ready, held = [], []
            for m in due:
                # A reminder or escalation whose deadline a transition consumed since it was
                # recorded has cancelled: not sent.
                stale = why_stale(transitions.get(m.order_id, ()), m.deadline_version, m.deadline_cancelled_by)
                if stale is not None:
                    await self._close(session, m, "cancelled", f"stale deadline: {stale}")
                elif not sms_capable(m.phone):
                    # queued before SMS went to mobile numbers only: a landline never receives it
                    await self._close(session, m, "failed",
                                      f"cannot receive SMS (not a mobile number): {mask_phone(m.phone)}")
                else:
                    sent = recent[m.phone]
                    until = rate_limited_until(sent, now, s.rate_limit_per_window, window)
                    if until is not None:
                        held.append({"b_id": m.id, "b_due": m.next_attempt_at, "b_until": until})
                    else:
                        sent.append(now)  # the batch's earlier sends to the number count against its limit
                        ready.append(m)
            if held:
                await session.execute(HOLD, held)
            if not ready:
                return [], lease
            claimed = set((await session.execute(
                update(M).where(one_of(session, M.c.id, [m.id for m in ready]), M.c.status == "queued",
                                M.c.next_attempt_at <= now)
                .values(next_attempt_at=lease).returning(M.c.id))).scalars())
        return [m for m in ready if m.id in claimed], lease

    async def _close(self, session, m: Due, status: str, reason: str) -> None:
        """A due message that will not be sent: conditional, like the claim (a replica that claimed it first sends it)."""
        done = await session.execute(
            update(M).where(M.c.id == m.id, M.c.status == "queued", M.c.next_attempt_at == m.next_attempt_at)
            .values(status=status, next_attempt_at=None, last_error=reason))
        if done.rowcount != 1:
            return
        if status == "cancelled":
            log.info("stale deadline: sms cancelled", extra={"message_id": m.id, "reason": reason})
            stale_deadlines(self.rt).labels("dispatch").inc()
        else:
            notifier_metrics(self.rt).at_commit(session, "failed", "sms", m.template_key)

    async def _record(self, outcomes: list[tuple[Due, str | None, str | None]], lease: datetime) -> None:
        """Each send's outcome: sent, tried again after a backoff, or given up after the last attempt."""
        s, now = self.rt.settings, self.rt.clock.now()
        rows = []
        async with self.rt.uow() as session:
            metrics = notifier_metrics(self.rt)
            for m, provider_id, error in outcomes:
                attempts = m.attempts + 1
                row = {"b_id": m.id, "b_attempts": attempts, "b_sent_at": None, "b_provider_id": provider_id,
                       "b_error": error, "b_next": lease}
                if error is None:
                    row.update(b_status="sent", b_sent_at=now)
                    outcome = "sent"
                elif attempts >= s.retry_max_attempts:
                    row.update(b_status="failed", b_error=f"gave up after {attempts} attempts: {error}")
                    log.warning("sms failed", extra={"to": mask_phone(m.phone), "error": error})
                    outcome = "failed"
                else:
                    row.update(b_status="queued", b_next=now + backoff(attempts, s.retry_base_s, s.retry_cap_s))
                    outcome = "retried"
                rows.append(row)
                metrics.at_commit(session, outcome, "sms", m.template_key)
            await session.execute(OUTCOME, rows)

    async def run(self) -> None:
        swept = float("-inf")
        while True:
            try:
                # The race it mends is rare: a sweep every few seconds, not one query per tick.
                if time.monotonic() - swept >= ORPHAN_SWEEP_S:
                    swept = time.monotonic()
                    await release_orphaned_deferred(self.rt)
                await self.step()
            except Exception:  # noqa: BLE001 - keep the loop alive; the row stays queued
                log.exception("dispatch step failed")
                self.backlog = False
            await asyncio.sleep(0 if self.backlog else self.rt.settings.dispatch_interval_s)
