"""Sends queued SMS outside any consumer transaction, with backoff and rate limit."""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy import select, update

from notifier.entrypoints.consumers import release_orphaned_deferred
from notifier.domain.delivery import backoff, rate_limited_until, sms_capable
from notifier.handlers.messages import stale_deadlines, stale_reason
from notifier.domain.masking import mask_phone
from notifier.models import Message
from notifier.adapters.metrics import notifier_metrics
from notifier.adapters.providers import ProviderError, SmsProvider
from shared.runtime import Runtime

ORPHAN_SWEEP_S = 5.0  # how often deadlines deferred during a concurrent order commit are released

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, rt: Runtime, provider: SmsProvider) -> None:
        self.rt, self.provider = rt, provider

    async def step(self) -> int:
        """Send every due queued SMS once; returns how many were attempted."""
        s, now = self.rt.settings, self.rt.clock.now()
        async with self.rt.sessions() as session:
            due = (await session.execute(
                select(Message.id).where(Message.status == "queued", Message.channel == "sms",
                                         Message.next_attempt_at <= now)
                .order_by(Message.next_attempt_at, Message.id).limit(s.dispatch_batch))).scalars().all()
        attempted = 0
        for mid in due:
            attempted += await self._one(mid)
        return attempted

    async def _one(self, mid: int) -> int:
        s, now = self.rt.settings, self.rt.clock.now()
        window = timedelta(seconds=s.rate_limit_window_s)
        async with self.rt.uow() as session:
            m = await session.get(Message, mid)
            if m is None or m.status != "queued" or m.next_attempt_at is None or m.next_attempt_at > now:
                return 0  # sent, failed, or claimed by another dispatcher meanwhile
            # A reminder or escalation whose deadline a transition consumed since it was
            # recorded has cancelled: not sent (one indexed read, deadline messages only).
            stale = await stale_reason(session, m.order_id, m.deadline_version, m.deadline_cancelled_by)
            if stale is not None:
                # conditional, like the claim below: a replica that claimed it first sends it
                done = await session.execute(
                    update(Message).where(Message.id == mid, Message.status == "queued",
                                          Message.next_attempt_at == m.next_attempt_at)
                    .values(status="cancelled", next_attempt_at=None, last_error=f"stale deadline: {stale}"))
                if done.rowcount == 1:
                    log.info("stale deadline: sms cancelled", extra={"message_id": mid, "reason": stale})
                    stale_deadlines(self.rt).labels("dispatch").inc()
                return 0
            if not sms_capable(m.phone):
                # queued before SMS went to mobile numbers only: a landline never receives it
                done = await session.execute(
                    update(Message).where(Message.id == mid, Message.status == "queued",
                                          Message.next_attempt_at == m.next_attempt_at)
                    .values(status="failed", next_attempt_at=None,
                            last_error=f"cannot receive SMS (not a mobile number): {mask_phone(m.phone)}"))
                if done.rowcount == 1:
                    notifier_metrics(self.rt).at_commit(session, "failed", "sms", m.template_key)
                return 0
            recent = (await session.execute(
                select(Message.sent_at).where(Message.phone == m.phone, Message.channel == "sms",
                                              Message.sent_at.is_not(None), Message.sent_at > now - window)
            )).scalars().all()
            until = rate_limited_until(list(recent), now, s.rate_limit_per_window, window)
            if until is not None:
                m.next_attempt_at, m.last_error = until, "rate_limited: held until the window frees"
                return 0
            phone, body, due = m.phone, m.body, m.next_attempt_at
            # Claim with a lease (conditional update): a second dispatcher replica skips it,
            # and a crash mid-send leaves it due again after the lease.
            claimed = await session.execute(
                update(Message).where(Message.id == mid, Message.status == "queued", Message.next_attempt_at == due,
                       Message.next_attempt_at <= now)
                .values(next_attempt_at=now + timedelta(seconds=s.dispatch_lease_s)))
            if claimed.rowcount != 1:
                return 0
        try:
            provider_id = await self.provider.send(phone, body, mid)
            error = None
        except ProviderError as e:
            provider_id, error = None, str(e)
        now = self.rt.clock.now()
        async with self.rt.uow() as session:
            m = await session.get(Message, mid)
            m.attempts += 1
            if error is None:
                m.status, m.sent_at, m.provider_message_id, m.last_error = "sent", now, provider_id, None
                outcome = "sent"
            elif m.attempts >= s.retry_max_attempts:
                m.status, m.last_error = "failed", f"gave up after {m.attempts} attempts: {error}"
                log.warning("sms failed", extra={"to": mask_phone(phone), "error": error})
                outcome = "failed"
            else:
                m.last_error = error
                m.next_attempt_at = now + backoff(m.attempts, s.retry_base_s, s.retry_cap_s)
                outcome = "retried"
            notifier_metrics(self.rt).at_commit(session, outcome, "sms", m.template_key)
        return 1

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
            await asyncio.sleep(self.rt.settings.dispatch_interval_s)
