"""Published platform statistics (docs/kpis.md), per Beijing month ("2026-11") or
quarter ("2026-Q4"; the sum of its three months), from the ``st`` counters:

- return rate / exchange rate = service orders of type return / exchange created
  in the period ÷ paid transactions in the period (the ingest API's counts, all
  merchants); ``None`` when no paid transactions were reported for the period;
- complaint (arbitration) rate = arbitration requests in the period ÷ service
  orders created in the period (``None`` when no order was created);
- satisfaction distribution: ratings 1–5 stars by rating time, with the share of
  satisfied (4–5) ratings;
- NPS from the 0–10 recommendation answers: promoters (9–10) minus detractors
  (0–6), in percent points of all answers (``None`` without answers);
- top problem types and top SKUs by service orders created in the period
  (ties: alphabetical).
Rates have 4 decimals, NPS 2.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

PERIOD = re.compile(r"^(\d{4})-(?:(0[1-9]|1[0-2])|Q([1-4]))$")
Q4 = Decimal("0.0001")


def months_of(period: str) -> list[str]:
    m = PERIOD.match(period)
    if m is None:
        raise ValueError(f"not a month or quarter: {period!r}")
    year, month, quarter = m.groups()
    if month:
        return [f"{year}-{month}"]
    q = int(quarter)
    return [f"{year}-{mo:02d}" for mo in range(3 * q - 2, 3 * q + 1)]


def period_bounds(period: str) -> tuple[date, date]:
    """First and last Beijing date of the period."""
    months = months_of(period)
    y, m = map(int, months[0].split("-"))
    y2, m2 = map(int, months[-1].split("-"))
    nxt = date(y2 + (m2 == 12), m2 % 12 + 1, 1)
    return date(y, m, 1), date.fromordinal(nxt.toordinal() - 1)


def _rate(n: int, d: int) -> str | None:
    return None if not d else str((Decimal(n) / Decimal(d)).quantize(Q4, ROUND_HALF_UP))


def statistics(period: str, sums: dict[str, tuple[int, int, int]], top_skus: Iterable[tuple[str, int]],
               paid_transactions: int, top: int = 5) -> dict:
    """``sums``: dim → (a, b, c) summed over the period's months (``sku:`` dims excluded);
    ``top_skus``: (sku, orders) best first."""
    def n(dim: str) -> int:
        return sums.get(dim, (0, 0, 0))[0]

    created = n("orders")
    returns, exchanges = n("type:return"), n("type:exchange")
    stars = {str(s): n(f"stars:{s}") for s in range(1, 6)}
    rated = sum(stars.values())
    promoters, passives, detractors = sums.get("nps", (0, 0, 0))
    answers = promoters + passives + detractors
    nps = None if answers == 0 else str((Decimal(100 * (promoters - detractors)) / answers).quantize(
        Decimal("0.01"), ROUND_HALF_UP))
    problems = sorted(((k.split(":", 1)[1], v[0]) for k, v in sums.items() if k.startswith("problem:") and v[0]),
                      key=lambda kv: (-kv[1], kv[0]))[:top]
    first, last = period_bounds(period)
    return {
        "period": period, "from": first.isoformat(), "to": last.isoformat(),
        "service_orders": created,
        "paid_transactions": paid_transactions,
        "returns": returns, "exchanges": exchanges,
        "return_rate": _rate(returns, paid_transactions),
        "exchange_rate": _rate(exchanges, paid_transactions),
        "return_exchange_rate": _rate(returns + exchanges, paid_transactions),
        "arbitrations": n("arbitrations"),
        "complaint_rate": _rate(n("arbitrations"), created),
        "satisfaction_distribution": stars,
        "ratings": rated,
        "satisfied_share": _rate(stars["4"] + stars["5"], rated),
        "nps": nps, "nps_answers": answers, "promoters": promoters, "passives": passives, "detractors": detractors,
        "top_problem_types": [{"problem_type": k, "count": v, "share": _rate(v, created)} for k, v in problems],
        "top_skus": [{"sku": k, "count": v, "share": _rate(v, created)} for k, v in list(top_skus)[:top]],
    }


def statistics_of_counters(period: str, counters: dict, paid_transactions: int = 0, top: int = 5) -> dict:
    """The same from an in-memory counter dict (tests, snapshots)."""
    months = set(months_of(period))
    sums: dict[str, list[int]] = {}
    skus: dict[str, int] = {}
    for (f, m, p, d), (a, b, c, _d) in counters.items():
        if f != "st" or m != "" or p not in months:
            continue
        if d.startswith("sku:"):
            skus[d[4:]] = skus.get(d[4:], 0) + a
        else:
            s = sums.setdefault(d, [0, 0, 0])
            s[0] += a
            s[1] += b
            s[2] += c
    top_skus = sorted(((k, v) for k, v in skus.items() if v), key=lambda kv: (-kv[1], kv[0]))
    return statistics(period, {k: tuple(v) for k, v in sums.items()}, top_skus, paid_transactions, top)
