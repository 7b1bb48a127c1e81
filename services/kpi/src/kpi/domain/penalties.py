"""Penalties ledger (docs/kpis.md), per merchant and week (Beijing):

- ``late_audit``: audits later than 12 h after creation (by audit time); every 10
  late orders of a merchant in a week count once, 2000 CNY per count, the
  remainder under 10 is not charged (9 late → 0, 19 → 1 count, 20 → 2 counts);
- ``unprocessed_48h``: 2000 CNY per order received and not processed within 48 h
  (the SLA timer's penalty event; by the time it fired). A penalty the facts contradict —
  the order was processed or ended within 48 h of receipt, the timer having fired before
  it saw the decision — is never charged (``penalty_contradicted``);
- ``advance_compensation``: the amount the platform refunded when nobody acted
  for 7 days, charged to the merchant (by the time it was paid).

Each line lists the orders it charges for."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from kpi.domain.projection import money, penalty_contradicted, week_key

LATE_AUDIT_BLOCK = 10
LATE_AUDIT_FEE_CENTS = 200000


def penalty_lines(orders: Iterable) -> list[dict]:
    """``orders``: order facts (``OrderFact`` or anything with its attributes order_id,
    merchant_id, audited_at, audit_late, penalty_at, penalty_cents, advance_at, advance_cents,
    received_at, processed_at, closed_at)."""
    late: dict[tuple[str, str], list[str]] = defaultdict(list)
    lines: list[dict] = []
    for o in orders:
        if o.merchant_id is None:
            continue
        if o.audit_late:
            late[(o.merchant_id, week_key(o.audited_at))].append(o.order_id)
        if o.penalty_at is not None and not penalty_contradicted(o):
            lines.append({"merchant_id": o.merchant_id, "week": week_key(o.penalty_at), "kind": "unprocessed_48h",
                          "count": 1, "amount": money(o.penalty_cents or 0), "order_ids": [o.order_id]})
        if o.advance_at is not None:
            lines.append({"merchant_id": o.merchant_id, "week": week_key(o.advance_at),
                          "kind": "advance_compensation", "count": 1, "amount": money(o.advance_cents or 0),
                          "order_ids": [o.order_id]})
    for (m, wk), ids in late.items():
        counts = len(ids) // LATE_AUDIT_BLOCK
        if counts:
            lines.append({"merchant_id": m, "week": wk, "kind": "late_audit", "count": counts,
                          "late_orders": len(ids), "amount": money(LATE_AUDIT_FEE_CENTS * counts),
                          "order_ids": sorted(ids)})
    lines.sort(key=lambda x: (x["week"], x["merchant_id"], x["kind"], x["order_ids"]))
    return lines


def penalty_totals(rows: Iterable[tuple]) -> dict[str, int]:
    """Total penalties in cents per kind from ``pen`` counters: rows of
    (merchant_id, week, kind, orders, amount_cents) — late audits per merchant-week."""
    out = {"late_audit": 0, "unprocessed_48h": 0, "advance_compensation": 0}
    for _m, _wk, kind, n, amount in rows:
        if kind == "late_audit":
            out[kind] += (n // LATE_AUDIT_BLOCK) * LATE_AUDIT_FEE_CENTS
        elif kind in out:
            out[kind] += amount
    return out
