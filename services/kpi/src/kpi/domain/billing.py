"""Billing ledger (docs/kpis.md), by Beijing calendar month: 8.26 CNY per service order
the platform served on a manufacturer's behalf (counted in the month it was
created) and consultations served on its behalf, priced by package (1 or 2; the
routing service maps the category to its package). Prices are configurable."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Iterable

from shared.clock import to_beijing

ORDER_FEE = Decimal("8.26")


@dataclass(frozen=True)
class OnBehalfOrder:
    order_id: str
    manufacturer_id: str
    created_at: datetime


@dataclass(frozen=True)
class BilledConsultation:
    consultation_id: str
    manufacturer_id: str
    package: int
    at: datetime


def month_of(at: datetime) -> str:
    return to_beijing(at).strftime("%Y-%m")


def billing_lines(orders: Iterable[OnBehalfOrder], consultations: Iterable[BilledConsultation],
                  package_prices: dict[int, Decimal], order_fee: Decimal = ORDER_FEE) -> list[dict]:
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for o in orders:
        groups[(month_of(o.created_at), o.manufacturer_id, "service_order")].append(o.order_id)
    for c in consultations:
        groups[(month_of(c.at), c.manufacturer_id, f"consultation_package_{c.package}")].append(c.consultation_id)
    lines = []
    for (month, m, item), ids in sorted(groups.items()):
        unit = order_fee if item == "service_order" else package_prices[int(item.rsplit("_", 1)[1])]
        lines.append({"month": month, "manufacturer_id": m, "item": item, "quantity": len(ids),
                      "unit_price": str(unit), "amount": str((unit * len(ids)).quantize(Decimal("0.01"))),
                      "refs": sorted(ids)})
    return lines
