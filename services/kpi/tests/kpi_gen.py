"""Building KPI facts by hand (Beijing wall-clock times)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from kpi.domain.projection import FIELDS, OrderFact, cents
from shared.clock import BEIJING

_n = 0

# the short names of the first version of these helpers → fact columns
_ALIASES = {"audited": "audited_at", "received": "received_at", "processed": "processed_at",
            "exchange_created": "exchange_created_at", "exchange_shipped": "exchange_shipped_at",
            "arbitration": "arbitration_at", "shipped_back": "shipped_back_at", "closed": "closed_at"}


def bj(y, mo, d, h=0, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BEIJING).astimezone(timezone.utc)


def order(merchant: str, created: datetime, **milestones) -> OrderFact:
    """An order's facts. Milestones: audited=datetime, rated=(datetime, stars),
    penalty_48h=(datetime, None, Decimal amount), advance_compensation=(datetime, None, amount),
    refund=(datetime, amount, by), or any fact column (``service_type="exchange"``…)."""
    global _n
    _n += 1
    o = OrderFact(f"o-{_n:06d}", snap_version=1, merchant_id=merchant, category="phones", sku="sku-1",
                  service_type="return", problem_type="quality", amount_cents=19900, created_at=created,
                  on_behalf=False)
    for kind, v in milestones.items():
        if kind in _ALIASES:
            setattr(o, _ALIASES[kind], v)
        elif kind == "rated":
            o.rated_at, o.stars = v
        elif kind == "recommended":
            o.recommend_at, o.recommend = v
        elif kind == "penalty_48h":
            o.penalty_at, o.penalty_cents = v[0], cents(v[2])
        elif kind == "advance_compensation":
            o.advance_at, o.advance_cents = v[0], cents(v[2])
        elif kind == "refund":
            o.refund_at, o.refund_cents, o.refund_by = v[0], cents(v[1]), v[2]
        elif kind in FIELDS:
            setattr(o, kind, v)
        else:
            raise TypeError(f"unknown milestone {kind!r}")
    return o


H = timedelta(hours=1)
D = Decimal
