"""Penalties ledger (SPEC §5.1): late audits per 10 at 2000 CNY a count (per
merchant and week, by audit time; the remainder under 10 is not charged), 2000 CNY
per order received and not processed within 48 h (the SLA timer's penalty event),
advance compensation amounts charged to the merchant. Each line lists its orders."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Iterable

from kpi.domain.scorecard import H12
from kpi.domain.timeline import OrderTimeline, week_of

LATE_AUDIT_BLOCK = 10
LATE_AUDIT_FEE = Decimal("2000.00")
UNPROCESSED_48H_FEE = Decimal("2000.00")


def penalty_lines(orders: Iterable[OrderTimeline]) -> list[dict]:
    late: dict[tuple[str, object], list[str]] = defaultdict(list)
    lines: list[dict] = []
    for o in orders:
        a = o.at("audited")
        if a is not None and a - o.created_at > H12:
            late[(o.merchant_id, week_of(a))].append(o.order_id)
        p = o.milestones.get("penalty_48h")
        if p is not None:
            lines.append({"merchant_id": o.merchant_id, "week": week_of(p.at).isoformat(), "kind": "unprocessed_48h",
                          "count": 1, "amount": str(p.amount if p.amount is not None else UNPROCESSED_48H_FEE),
                          "order_ids": [o.order_id]})
        c = o.milestones.get("advance_compensation")
        if c is not None:
            lines.append({"merchant_id": o.merchant_id, "week": week_of(c.at).isoformat(),
                          "kind": "advance_compensation", "count": 1,
                          "amount": str(c.amount if c.amount is not None else Decimal("0.00")),
                          "order_ids": [o.order_id]})
    for (m, wk), ids in late.items():
        counts = len(ids) // LATE_AUDIT_BLOCK
        if counts:
            lines.append({"merchant_id": m, "week": wk.isoformat(), "kind": "late_audit", "count": counts,
                          "late_orders": len(ids), "amount": str(LATE_AUDIT_FEE * counts), "order_ids": sorted(ids)})
    lines.sort(key=lambda x: (x["week"], x["merchant_id"], x["kind"]))
    return lines
