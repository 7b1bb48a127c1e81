"""Operator changes of rule and calendar overrides, each recorded in the audit log (who,
when, what, old → new) in the transaction that makes it."""
from __future__ import annotations

import asyncio
import contextlib
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from shared.auth import Principal
from shared.runtime import Runtime
from sla_timer.models import AuditEntry, CalendarOverride, RuleOverride

RULE_OVERRIDE, CALENDAR_OVERRIDE = "rule_override", "calendar_override"
KINDS = (RULE_OVERRIDE, CALENDAR_OVERRIDE)
# Two operators creating the same override at once: one insert loses on the primary key
# and is retried as an update, so its audit entry shows the winner's values as "old".
ATTEMPTS = 3


def rule_values(o: RuleOverride) -> dict:
    return {"enabled": o.enabled, "after_seconds": o.after_seconds, "working_days": o.working_days}


def rule_out(o: RuleOverride) -> dict:
    return {"scope": o.scope, "scope_id": o.scope_id, "rule": o.rule, **rule_values(o),
            "updated_at": o.updated_at.isoformat()}


def day_values(o: CalendarOverride) -> dict:
    return {"working": o.working, "note": o.note}


def _entry(rt: Runtime, p: Principal, kind: str, old: dict | None, new: dict, **target) -> AuditEntry:
    return AuditEntry(at=rt.clock.now(), actor=p.subject[:128], actor_role=p.role, kind=kind, old=old, new=new,
                      **target)


def _local_lock(rt: Runtime) -> asyncio.Lock:
    lock = getattr(rt, "sla_override_lock", None)
    if lock is None:
        lock = rt.sla_override_lock = asyncio.Lock()  # type: ignore[attr-defined]
    return lock


async def _retrying(rt: Runtime, change):
    # SQLite has no row locks (and reads outside a write lock): there, changes are serialized
    # in the one process that owns the file. PostgreSQL replicas rely on the row lock.
    async with _local_lock(rt) if rt.settings.is_sqlite else contextlib.nullcontext():
        for attempt in range(ATTEMPTS):
            try:
                async with rt.uow() as s:
                    return await change(s)
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise


async def set_rule_override(rt: Runtime, p: Principal, *, rule: str, scope: str, scope_id: str,
                            enabled: bool, after_seconds: int | None, working_days: int | None) -> dict:
    async def change(s) -> dict:
        # Locked (PostgreSQL) so concurrent changes of one override are audited in order.
        o = await s.get(RuleOverride, (scope, scope_id, rule), with_for_update=True)
        old = rule_values(o) if o is not None else None
        if o is None:
            o = RuleOverride(scope=scope, scope_id=scope_id, rule=rule)
            s.add(o)
        o.enabled, o.after_seconds, o.working_days = enabled, after_seconds, working_days
        o.updated_at = rt.clock.now()
        s.add(_entry(rt, p, RULE_OVERRIDE, old, rule_values(o), rule=rule, scope=scope, scope_id=scope_id))
        await s.flush()
        return rule_out(o)

    out = await _retrying(rt, change)
    rt.sla_policies.invalidate()  # type: ignore[attr-defined]
    return out


async def set_day_override(rt: Runtime, p: Principal, *, day: date, working: bool, note: str) -> dict:
    async def change(s) -> dict:
        o = await s.get(CalendarOverride, day, with_for_update=True)
        old = day_values(o) if o is not None else None
        if o is None:
            o = CalendarOverride(day=day)
            s.add(o)
        o.working, o.note, o.updated_at = working, note, rt.clock.now()
        s.add(_entry(rt, p, CALENDAR_OVERRIDE, old, day_values(o), day=day))
        await s.flush()
        return {"date": day.isoformat(), "working": working, "note": note}

    out = await _retrying(rt, change)
    rt.sla_policies.invalidate()  # type: ignore[attr-defined]
    return out


async def set_year_schedule(rt: Runtime, p: Principal, *, year: int, holidays: list[date],
                            working_days: list[date], note: str) -> dict:
    """A whole year's official schedule in one transaction: the listed holidays become days
    off, the adjusted working days (调休, usually weekends) working days; each day's change is
    audited. Days of the year not listed keep what they were (package data or overrides)."""
    wanted = {d: False for d in holidays} | {d: True for d in working_days}

    async def change(s) -> dict:
        existing = {o.day: o for o in (await s.scalars(
            select(CalendarOverride).where(CalendarOverride.day.in_(list(wanted))).with_for_update())).all()}
        changed = 0
        for day, working in sorted(wanted.items()):
            o = existing.get(day)
            old = day_values(o) if o is not None else None
            if o is None:
                o = CalendarOverride(day=day)
                s.add(o)
            elif o.working == working and o.note == note:
                continue
            o.working, o.note, o.updated_at = working, note, rt.clock.now()
            s.add(_entry(rt, p, CALENDAR_OVERRIDE, old, day_values(o), day=day))
            changed += 1
        await s.flush()
        return {"year": year, "holidays": len(holidays), "working_days": len(working_days), "changed": changed}

    out = await _retrying(rt, change)
    rt.sla_policies.invalidate()  # type: ignore[attr-defined]
    return out


def _audit_out(e: AuditEntry) -> dict:
    return {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "actor_role": e.actor_role, "kind": e.kind,
            "rule": e.rule, "scope": e.scope, "scope_id": e.scope_id,
            "day": e.day.isoformat() if e.day is not None else None, "old": e.old, "new": e.new}


async def audit_log(rt: Runtime, *, kind: str | None, limit: int, offset: int) -> dict:
    """Newest first."""
    q = select(AuditEntry)
    count = select(func.count()).select_from(AuditEntry)
    if kind is not None:
        q, count = q.where(AuditEntry.kind == kind), count.where(AuditEntry.kind == kind)
    async with rt.sessions() as s:
        total = await s.scalar(count)
        rows = (await s.scalars(q.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))).all()
    return {"total": total, "limit": limit, "offset": offset, "items": [_audit_out(e) for e in rows]}
