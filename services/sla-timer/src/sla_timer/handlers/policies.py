"""Operator policy (rule overrides, calendar overrides) cached in memory and
reloaded from the database every few seconds, so replicas converge quickly
without a query per consumed event."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.calendar import BusinessCalendar
from sla_timer.domain.schedule import Policy
from sla_timer.models import CalendarOverride, RuleOverride

RELOAD_S = 5.0


class Policies:
    def __init__(self) -> None:
        self.overrides: dict[tuple[str, str, str], Policy] = {}
        self.calendar = BusinessCalendar()
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def current(self, session: AsyncSession) -> "Policies":
        if time.monotonic() - self._loaded_at > RELOAD_S:
            rows = (await session.scalars(select(RuleOverride))).all()
            self.overrides = {
                (r.scope, r.scope_id, r.rule): Policy(
                    enabled=r.enabled,
                    after=timedelta(seconds=r.after_seconds) if r.after_seconds is not None else None,
                    working_days=r.working_days,
                )
                for r in rows
            }
            days = (await session.scalars(select(CalendarOverride))).all()
            self.calendar = BusinessCalendar(overrides={d.day: d.working for d in days})
            self._loaded_at = time.monotonic()
        return self
