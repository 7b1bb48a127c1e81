"""What the KPI figures are computed from: one order's facts (pure data)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from shared.clock import to_beijing

# Which order action records which milestone (first occurrence wins).
ACTION_MILESTONES: dict[str, str] = {
    "register_receipt": "received",
    "exchange.shipped": "exchange_shipped",
    "rate": "rated",
    "system.advance_compensation": "advance_compensation",
    "arbitration.request": "arbitration",
}
# Prefixes: any audit.* is the audit time, any process.* the processing decision.
PREFIX_MILESTONES: dict[str, str] = {"audit.": "audited", "process.": "processed"}
# Actions that create an exchange order (the F4 clock starts at the decision).
EXCHANGE_CREATING = frozenset({"process.exchange", "audit.resend_without_return"})


def milestone_for(action: str) -> str | None:
    if action in ACTION_MILESTONES:
        return ACTION_MILESTONES[action]
    for prefix, kind in PREFIX_MILESTONES.items():
        if action.startswith(prefix):
            return kind
    return None


@dataclass(frozen=True)
class Milestone:
    at: datetime
    value: int | None = None
    amount: Decimal | None = None


@dataclass
class OrderTimeline:
    order_id: str
    merchant_id: str
    created_at: datetime
    milestones: dict[str, Milestone] = field(default_factory=dict)

    def at(self, kind: str) -> datetime | None:
        m = self.milestones.get(kind)
        return m.at if m else None


def week_of(at: datetime) -> date:
    """The Monday (Beijing date) of the Monday–Sunday week holding ``at``."""
    d = to_beijing(at).date()
    return d - timedelta(days=d.weekday())
