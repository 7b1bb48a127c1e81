"""The Double-11 scenario as data: who the merchants are, when each customer applies, and
what each application is. Pure and seeded — the same seed and sizes give the same plan
(``Plan.digest``), whatever the platform does with it. What each actor then does with an
order (audit or not, ship late or never, rate, ask for arbitration…) is the workload
model's, keyed by (seed, order, state entry): also the seed's (tools/workload/README.md).

The arrival curve (``hourly_weights``), Beijing time from 11-11 00:00:
- the festival peak: the first hours after midnight, when the sale opens (paid-in-advance
  orders are settled at 00:00 and the first after-sales requests, price-protection and
  "changed my mind" returns, follow at once), decaying within hours;
- the daily rhythm of a Chinese shopping day: quiet from 02:00 to 07:00, busy late
  morning and in the evening (20:00-23:00);
- the after-sales wave: deliveries of the festival's orders keep applications high for a
  few days, declining towards an ordinary level."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

from shared.clock import BEIJING
from tools.workload import model

# relative activity per Beijing hour of an ordinary day
DAILY = (0.9, 0.5, 0.25, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.1, 1.2,
         1.0, 0.9, 0.95, 1.0, 1.0, 0.95, 0.9, 1.0, 1.3, 1.5, 1.4, 1.2)


def hourly_weights(hours: int) -> list[float]:
    """Relative arrival rate of applications in each hour from 11-11 00:00 Beijing."""
    out = []
    for h in range(hours):
        day = h / 24
        wave = 1.0 + 2.0 * math.exp(-day / 3.0)  # the festival's deliveries, declining over days
        peak = 14.0 * math.exp(-h / 1.5)  # the first hours after midnight
        out.append(DAILY[h % 24] * wave + peak)
    return out


def double11_start(after: float) -> float:
    """The first 11-11 00:00 Beijing at or after the instant ``after`` (epoch seconds)."""
    now = datetime.fromtimestamp(after, timezone.utc).astimezone(BEIJING)
    for year in (now.year, now.year + 1):
        start = datetime(year, 11, 11, tzinfo=BEIJING)
        if start.timestamp() >= after:
            return start.timestamp()
    raise AssertionError("unreachable")


def mondays_between(start: float, end: float) -> list[date]:
    """Each Monday 00:00 Beijing in (start, end]: the weeks that end within the run."""
    d = datetime.fromtimestamp(start, timezone.utc).astimezone(BEIJING).date()
    out = []
    while True:
        d += timedelta(days=1)
        at = datetime(d.year, d.month, d.day, tzinfo=BEIJING).timestamp()
        if at > end:
            return out
        if d.weekday() == 0:
            out.append(d)


@dataclass(frozen=True)
class ScenarioConfig:
    seed: int = 11
    merchants: int = 12
    orders: int = 1500
    days: float = 10.0
    tick_s: float = 3600.0  # virtual seconds per step of the simulation
    consultations_per_order: float = 0.5
    tag: str = ""  # prefix of every id (default: d11s<seed>)

    @property
    def ticks(self) -> int:
        return max(1, math.ceil(self.days * 86400 / self.tick_s))

    @property
    def id_tag(self) -> str:
        return self.tag or f"d11s{self.seed}"


@dataclass
class Plan:
    config: ScenarioConfig
    merchants: list[model.Merchant]
    arrivals: list[float]  # seconds after 11-11 00:00 Beijing, one per order, in order
    orders_per_tick: list[int]
    consultations_per_tick: list[int]

    def order(self, index: int) -> model.OrderPlan:
        return model.order_plan(self.config.seed, index, self.merchants, self.config.id_tag)

    def summary(self) -> dict:
        """The plan as plain data (what ``digest`` hashes)."""
        merchants = [{"id": m.id, "mode": m.mode, "effective_mode": m.effective_mode, "quality": m.quality,
                      "categories": m.categories, "skus": [s.sku for s in m.skus], "enrolled": m.enrolled,
                      "agents": m.agents} for m in self.merchants]
        orders = []
        for i, at in enumerate(self.arrivals):
            p = self.order(i)
            orders.append({"at": round(at, 3), "merchant": p.merchant.id, "sku": p.sku.sku, "customer": p.customer_id,
                           "service_type": p.service_type, "problem_type": p.problem_type,
                           "quantity": p.quantity, "purchased": p.purchased_quantity, "paid": p.amount_paid})
        return {"config": asdict(self.config), "merchants": merchants, "orders": orders,
                "orders_per_tick": self.orders_per_tick, "consultations_per_tick": self.consultations_per_tick}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.summary(), sort_keys=True).encode()).hexdigest()


def plan(config: ScenarioConfig) -> Plan:
    """Draw the scenario: merchants of every mode and quality, and each application's
    arrival time from the Double-11 curve."""
    hours = max(1, math.ceil(config.days * 24))
    weights = hourly_weights(hours)
    r = model.rng_for(config.seed, "double11", "arrivals")
    arrivals = sorted(h * 3600 + r.random() * 3600
                      for h in r.choices(range(hours), weights=weights, k=config.orders))
    arrivals = [a for a in arrivals if a < config.days * 86400]
    per_tick = [0] * config.ticks
    for a in arrivals:
        per_tick[min(config.ticks - 1, int(a // config.tick_s))] += 1
    # consultations follow the same curve (rounded per tick, carrying the remainder)
    cons, carry = [], 0.0
    for n in per_tick:
        want = n * config.consultations_per_order + carry
        cons.append(int(want))
        carry = want - int(want)
    return Plan(config, model.merchants(config.seed, config.merchants, config.id_tag), arrivals, per_tick, cons)
