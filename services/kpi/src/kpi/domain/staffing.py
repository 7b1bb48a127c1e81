"""Staffing estimate per merchant (docs/kpis.md) over a window of days ending on a
Beijing date: receptionists = daily consultations / one agent's daily capacity;
auditors = daily audits / one auditor's daily capacity; refund staff = monthly
refunds / one agent's daily refunds / refund cycle days. Each is rounded up to
whole people (at least 0). Consultations are those routed to the merchant's own
queue; refunds are ``process.refund`` decisions (the processing milestone that
carries an amount)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, Decimal

from shared.clock import to_beijing


@dataclass(frozen=True)
class Capacities:
    consultations_per_agent_day: Decimal = Decimal("100")
    audits_per_auditor_day: Decimal = Decimal("150")
    refunds_per_agent_day: Decimal = Decimal("80")
    refund_cycle_days: Decimal = Decimal("3")
    days_per_month: Decimal = Decimal("30")


def _in(at: datetime, start: date, end: date) -> bool:
    return start <= to_beijing(at).date() <= end


def staffing(consultations: list[datetime], audits: list[datetime], refunds: list[datetime],
             start: date, end: date, cap: Capacities = Capacities()) -> dict:
    days = Decimal((end - start).days + 1)
    daily_cons = Decimal(sum(_in(t, start, end) for t in consultations)) / days
    daily_audits = Decimal(sum(_in(t, start, end) for t in audits)) / days
    monthly_refunds = Decimal(sum(_in(t, start, end) for t in refunds)) / days * cap.days_per_month
    people = lambda x: int(x.to_integral_value(ROUND_CEILING))  # noqa: E731
    q = Decimal("0.01")
    return {
        "window": {"from": start.isoformat(), "to": end.isoformat(), "days": int(days)},
        "daily_consultations": str(daily_cons.quantize(q)), "daily_audits": str(daily_audits.quantize(q)),
        "monthly_refunds": str(monthly_refunds.quantize(q)),
        "receptionists": people(daily_cons / cap.consultations_per_agent_day),
        "auditors": people(daily_audits / cap.audits_per_auditor_day),
        "refund_staff": people(monthly_refunds / cap.refunds_per_agent_day / cap.refund_cycle_days),
    }
