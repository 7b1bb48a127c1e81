"""The KPI projection, pure (no I/O): events → one fact row per service order →
counters. The live consumer and the rebuild (``kpi replay``) run exactly this
code, so the two give identical figures.

1. Folding. ``fold_transition`` / ``fold_static`` / ``fold_penalty`` fold one
   event into the ``OrderFact`` of its order. Every field is decided by an
   order-insensitive rule — the snapshot of the lowest order version wins, the
   earliest occurrence of a milestone wins (ties broken by its values) — so
   duplicates, late events and any arrival order give the same row. Routing events
   become immutable consultation facts keyed by their own id
   (``consultation_fact``).
2. Contributions. ``contributions(row)`` lists what one order adds to the
   counters: unit increments (keys ``(family, merchant, period, dim, component)``,
   component 0–3 = counter columns a–d) and amounts (key, value). Counters are sums
   of contributions: the consumer applies the difference between a row's old and
   new contributions, the rebuild sums them from scratch (``Tally``). Figures are
   computed from the counters (``kpi.figures``).

Time: periods are Beijing calendar days / Monday–Sunday weeks / months. China has
kept UTC+8 all year since 1991, so the Beijing date of a UTC time is the date of
that time plus 8 hours.
"""
from __future__ import annotations

from collections import Counter as _Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

TERMINAL_STATES = frozenset({"completed", "rejected", "abandoned", "closed", "refunded_by_system"})
MERCHANT_ROLES = frozenset({"merchant_main", "merchant_staff"})
PLATFORM_ROLES = frozenset({"platform_operator", "arbitrator"})
# Actions whose ``details`` the projection reads (the fast decoder parses details only for these).
DETAIL_ACTIONS = frozenset({"rate", "process.refund", "arbitration.decide", "system.auto_refund",
                            "system.advance_compensation"})
EXCHANGE_CREATING = frozenset({"process.exchange", "audit.resend_without_return"})
SYSTEM_REFUNDS = frozenset({"system.auto_refund", "system.advance_compensation"})
ORDER_TYPES = frozenset({"service_order.transitioned", "service_order.created", "sla.deadline_fired"})
CONSULT_TYPES = frozenset({"routing.decided", "routing.transferred", "routing.billable_consultation"})
CATALOGUE_TYPES = frozenset({"catalogue.sku_upserted"})
HANDLED_TYPES = ORDER_TYPES | CONSULT_TYPES | CATALOGUE_TYPES
# Fulfilment modes in which the manufacturer itself runs its after-sales (service-express
# members); in ``platform`` mode the platform does every step.
MANUFACTURER_MODES = frozenset({"customer_contact", "full_manufacturer"})
PLATFORM_MODE = "platform"
DEFAULT_MODE = "pop_self_service"  # what the order contracts assume when an event names no mode
DEFAULT_PENALTY_CENTS = 200000  # 2000.00 CNY per order received and not processed within 48 h

H12, H18, H48 = timedelta(hours=12), timedelta(hours=18), timedelta(hours=48)

# milestone name → (time column, value columns)
MILESTONES: dict[str, tuple[str, tuple[str, ...]]] = {
    "audited": ("audited_at", ("audit_action",)),
    "received": ("received_at", ()),
    "processed": ("processed_at", ("process_action",)),
    "exchange_created": ("exchange_created_at", ()),
    "exchange_shipped": ("exchange_shipped_at", ()),
    "shipped_back": ("shipped_back_at", ()),
    "rated": ("rated_at", ("stars",)),
    "recommended": ("recommend_at", ("recommend",)),
    "arbitration": ("arbitration_at", ()),
    "refund": ("refund_at", ("refund_cents", "refund_by")),
    "closed": ("closed_at", ("closed_role",)),
    "advance": ("advance_at", ("advance_cents",)),
    "penalty": ("penalty_at", ("penalty_cents",)),
}
SNAPSHOT_FIELDS = ("merchant_id", "category", "sku", "service_type", "problem_type", "amount_cents", "created_at",
                   "on_behalf", "mode")
FIELDS: tuple[str, ...] = ("order_id", "snap_version", *SNAPSHOT_FIELDS) + tuple(
    f for at, vals in MILESTONES.values() for f in (at, *vals))
_FIELD_SET = frozenset(FIELDS)
# consultation fact: (fact_id, kind, manufacturer_id, at, target, reason, package)
CONSULT_FIELDS = ("fact_id", "kind", "manufacturer_id", "at", "target", "reason", "package")
# catalogue entry: one SKU of a merchant's catalogue as last published (at = the event's time)
CATALOGUE_FIELDS = ("merchant_id", "sku", "category", "at")


class OrderFact:
    """Everything the KPI figures need to know about one service order (unset
    fields read as ``None`` from the class defaults, so a new row costs little)."""

    def __init__(self, order_id: str, **values) -> None:
        self.order_id = order_id
        for k, v in values.items():
            if k not in _FIELD_SET:
                raise TypeError(f"unknown fact field {k!r}")
            setattr(self, k, v)

    def as_tuple(self) -> tuple:
        return tuple(getattr(self, f) for f in FIELDS)

    @classmethod
    def from_tuple(cls, t) -> "OrderFact":
        o = cls.__new__(cls)
        o.__dict__.update((f, v) for f, v in zip(FIELDS, t) if v is not None)
        return o

    def copy(self) -> "OrderFact":
        o = OrderFact.__new__(OrderFact)
        o.__dict__.update(self.__dict__)
        return o

    def __eq__(self, other) -> bool:
        return isinstance(other, OrderFact) and self.as_tuple() == other.as_tuple()

    def __repr__(self) -> str:
        return "OrderFact(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in FIELDS if getattr(self, f) is not None) + ")"

    @property
    def known(self) -> bool:
        """The order's creation (its snapshot) has been seen."""
        return self.merchant_id is not None

    @property
    def audit_late(self) -> bool:
        return self.audited_at is not None and self.created_at is not None and self.audited_at - self.created_at > H12


for _f in FIELDS:
    setattr(OrderFact, _f, None)
del _f

# ---------------------------------------------------------------- time keys

_BJ_OFFSET_S = 8 * 3600
_H8 = timedelta(hours=8)
_iso_cache: dict[int, str] = {}


def bj_day(at: datetime) -> int:
    """The proleptic ordinal of the Beijing calendar date of ``at`` (a UTC datetime:
    every time in the facts is normalised to UTC when it is folded in)."""
    return (at + _H8).toordinal()


def day_iso(n: int) -> str:
    s = _iso_cache.get(n)
    if s is None:
        s = _iso_cache[n] = date.fromordinal(n).isoformat()
    return s


_UTC = timezone.utc
_day_cache: dict[int, str] = {}
_week_cache: dict[int, str] = {}
_month_cache: dict[int, str] = {}


def day_key(at: datetime) -> str:
    # the Beijing date of a UTC time is its UTC date, or the next day from 16:00 UTC
    d = at.toordinal() + (at.hour >= 16) if at.tzinfo is _UTC else (at + _H8).toordinal()
    s = _day_cache.get(d)
    if s is None:
        s = _day_cache[d] = day_iso(d)
    return s


def week_key(at: datetime) -> str:
    """The Monday (Beijing date, ISO) of the Monday–Sunday week holding ``at``."""
    d = at.toordinal() + (at.hour >= 16) if at.tzinfo is _UTC else (at + _H8).toordinal()
    s = _week_cache.get(d)
    if s is None:
        s = _week_cache[d] = day_iso(d - (d - 1) % 7)  # ordinal 1 (0001-01-01) was a Monday
    return s


def month_key(at: datetime) -> str:
    d = at.toordinal() + (at.hour >= 16) if at.tzinfo is _UTC else (at + _H8).toordinal()
    s = _month_cache.get(d)
    if s is None:
        s = _month_cache[d] = day_iso(d)[:7]
    return s


def day_start_utc(d: date) -> datetime:
    """The UTC instant of Beijing midnight starting ``d``."""
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc) - timedelta(seconds=_BJ_OFFSET_S)


# ---------------------------------------------------------------- values

def cents(value) -> int | None:
    """'199.00' / Decimal / int → 19900 (None when missing or not a number)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    return int((d * 100).to_integral_value())


def money(c: int | None) -> str | None:
    if c is None:
        return None
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


def _stars(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


def _refund_by(details: dict, actor_role: str) -> str:
    by = details.get("completed_by")
    if by in ("merchant", "platform", "system"):
        return by
    if actor_role in MERCHANT_ROLES:
        return "merchant"
    if actor_role in PLATFORM_ROLES:
        return "platform"
    return "system"


class NaiveTime(ValueError):
    """An event time without a time zone: such an event cannot be placed in a Beijing period."""


def utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveTime(f"naive datetime {at.isoformat()} in an event")
    return at.astimezone(timezone.utc)


# ---------------------------------------------------------------- fold (events → facts)

def _vkey(values: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in values)


def needs_snapshot(row: OrderFact, version: int) -> bool:
    """Whether an event of this order version could change the row's snapshot."""
    return row.snap_version is None or version <= row.snap_version


def fold_static(row: OrderFact, version: int, snap: tuple) -> bool:
    """What the order is (``SNAPSHOT_FIELDS``): the snapshot of the lowest version wins."""
    cur = row.snap_version
    if cur is not None and (version > cur or (version == cur and _vkey(snap) >= _vkey(
            tuple(getattr(row, f) for f in SNAPSHOT_FIELDS)))):
        return False
    row.snap_version = version
    (row.merchant_id, row.category, row.sku, row.service_type, row.problem_type, row.amount_cents,
     row.created_at, row.on_behalf, row.mode) = snap
    return True


def fold_milestone(row: OrderFact, name: str, at: datetime, values: tuple = ()) -> bool:
    """Something happened to the order: the earliest occurrence wins."""
    at_f, val_fs = MILESTONES[name]
    cur = getattr(row, at_f)
    if cur is not None:
        if at > cur:
            return False
        if at == cur and (not val_fs or _vkey(values) >= _vkey(tuple(getattr(row, f) for f in val_fs))):
            return False
    setattr(row, at_f, at)
    for f, v in zip(val_fs, values):
        setattr(row, f, v)
    return True


def fold_transition(row: OrderFact, version: int, snap: tuple | None, action: str, to_state: str,
                    actor_role: str, at: datetime, details: dict) -> bool:
    """One ``service_order.transitioned``. ``snap`` may be None when
    ``needs_snapshot(row, version)`` is false; ``details`` is read only for the
    actions in ``DETAIL_ACTIONS``."""
    ms = fold_milestone
    changed = fold_static(row, version, snap) if snap is not None else False
    if action.startswith("audit."):
        changed |= ms(row, "audited", at, (action,))
        if action in EXCHANGE_CREATING:
            changed |= ms(row, "exchange_created", at)
    elif action.startswith("process."):
        changed |= ms(row, "processed", at, (action,))
        if action in EXCHANGE_CREATING:
            changed |= ms(row, "exchange_created", at)
        elif action == "process.refund":
            changed |= ms(row, "refund", at, (cents(details.get("amount")), _refund_by(details, actor_role)))
    elif action == "register_receipt":
        changed |= ms(row, "received", at)
    elif action == "fill_shipment":
        changed |= ms(row, "shipped_back", at)
    elif action == "exchange.shipped":
        changed |= ms(row, "exchange_shipped", at)
    elif action == "rate":
        changed |= ms(row, "rated", at, (_stars(details.get("stars")),))
        rec = details.get("recommend")
        if isinstance(rec, int) and not isinstance(rec, bool) and 0 <= rec <= 10:
            changed |= ms(row, "recommended", at, (rec,))
    elif action == "arbitration.request":
        changed |= ms(row, "arbitration", at)
    elif action == "arbitration.decide":
        outcome = details.get("outcome")
        if outcome == "refund":
            changed |= ms(row, "refund", at, (cents(details.get("amount")), "platform"))
        elif outcome == "exchange":
            changed |= ms(row, "exchange_created", at)
    elif action in SYSTEM_REFUNDS:
        amount = cents(details.get("amount"))
        changed |= ms(row, "refund", at, (amount, "system"))
        if action == "system.advance_compensation":
            changed |= ms(row, "advance", at, (amount if amount is not None else 0,))
    if to_state in TERMINAL_STATES:
        changed |= ms(row, "closed", at, (actor_role,))
    return changed


def penalty_contradicted(row: OrderFact) -> bool:
    """The 48 h penalty fired, yet the order was processed (or ended) within 48 h of its
    receipt: a stale timer (fired before the timer service saw the decision), never charged."""
    r = row.received_at
    if r is None:
        return False
    p, c = row.processed_at, row.closed_at
    return (p is not None and p - r <= H48) or (c is not None and c - r <= H48)


def fold_penalty(row: OrderFact, action: str, fired_at: datetime, details: dict) -> bool:
    """An SLA timer fired; only the 48 h processing penalty matters here."""
    if action != "penalty":
        return False
    amount = cents(details.get("amount_cny"))
    return fold_milestone(row, "penalty", fired_at, (DEFAULT_PENALTY_CENTS if amount is None else amount,))


def snapshot_tuple(merchant_id, category, sku, service_type, problem_type, amount_paid, created_at, on_behalf,
                   mode) -> tuple:
    return (merchant_id, category, sku, service_type, problem_type, cents(amount_paid), created_at, bool(on_behalf),
            mode)


def order_id_of(type_: str, data) -> str | None:
    return data.order_id if type_ in ORDER_TYPES else None


def fold_model(row: OrderFact, type_: str, data) -> bool:
    """Fold one validated order event (``data``: its pydantic model) into ``row``.
    Raises ``NaiveTime`` (before changing anything) for a time without a zone."""
    if type_ == "service_order.transitioned":
        o = data.order
        at, created = utc(data.occurred_at), utc(o.created_at)
        snap = None
        if needs_snapshot(row, data.version):
            snap = snapshot_tuple(o.merchant_id, o.category, o.sku, o.service_type, o.problem_type, o.amount_paid,
                                  created, o.on_behalf, o.mode)
        return fold_transition(row, data.version, snap, data.action, data.to_state, data.actor_role, at,
                               data.details)
    if type_ == "service_order.created":
        snap = snapshot_tuple(data.merchant_id, data.category, data.sku, data.service_type, data.problem_type,
                              data.amount_paid, utc(data.created_at), data.on_behalf, data.mode)
        return fold_static(row, data.version, snap)
    if type_ == "sla.deadline_fired":
        return fold_penalty(row, data.action, utc(data.fired_at), data.details)
    return False


def relevant(type_: str, data) -> bool:
    """Whether the event can change the projection at all. Raises ``NaiveTime``
    for an event time without a zone (the consumer parks such an event)."""
    if type_ == "service_order.transitioned":
        utc(data.occurred_at), utc(data.order.created_at)
        return True
    if type_ == "service_order.created":
        utc(data.created_at)
        return True
    if type_ == "sla.deadline_fired":
        utc(data.fired_at)
        return data.action == "penalty"
    if type_ == "routing.decided":
        utc(data.decided_at)
        return bool(data.manufacturer_id)
    if type_ == "routing.transferred":
        utc(data.transferred_at)
        return True
    if type_ == "routing.billable_consultation":
        utc(data.occurred_at)
        return True
    if type_ in CATALOGUE_TYPES:
        return True
    return False


def consultation_fact(type_: str, data) -> tuple | None:
    """A routing event as a consultation fact (``CONSULT_FIELDS``), None if not one."""
    if type_ == "routing.decided":
        if not data.manufacturer_id:
            return None
        return (f"decided:{data.decision_id}", "decided", data.manufacturer_id, utc(data.decided_at), data.target,
                data.reason, None)
    if type_ == "routing.transferred":
        return (f"transferred:{data.transfer_id}", "transferred", data.manufacturer_id, utc(data.transferred_at),
                None, data.reason, None)
    if type_ == "routing.billable_consultation":
        return (f"billable:{data.consultation_id}", "billable", data.manufacturer_id, utc(data.occurred_at), None,
                data.cause, data.package)
    return None


def catalogue_entry(data, at: datetime) -> tuple:
    """A ``catalogue.sku_upserted`` as a catalogue entry (``CATALOGUE_FIELDS``). The
    event carries no version, so its envelope time orders the upserts of one SKU."""
    return (data.manufacturer_id, data.sku, data.category, utc(at))


def newer_entry(new: tuple, old: tuple | None) -> bool:
    """Whether catalogue entry ``new`` replaces ``old`` (same merchant and SKU): the latest
    time wins, ties broken by the greater category — an order-insensitive rule, so any
    arrival order (and a replay) keeps the same entry."""
    return old is None or (new[3], new[2]) > (old[3], old[2])


def catalogue_contributions(entry: tuple) -> tuple[list[tuple], list[tuple]]:
    """``ccat``: a = SKUs of the merchant's catalogue in that category (period and dim
    as for ``mcat``: all time, the category)."""
    return [("ccat", entry[0], "", entry[2], 0)], []


# ---------------------------------------------------------------- contributions (facts → counters)

PATHS = ("refund_before_shipment", "refund_without_return", "return_and_refund", "exchange")


def finish(row: OrderFact) -> tuple[datetime, str] | None:
    """When and how the case was completed: the refund executed, the exchange
    shipped, or the order reached a terminal state, whichever came first."""
    best = None
    for at, kind in ((row.refund_at, "refund"), (row.exchange_shipped_at, "exchange"), (row.closed_at, "closed")):
        if at is not None and (best is None or at < best[0]):
            best = (at, kind)
    return best


def refund_path(row: OrderFact, fin_at: datetime | None) -> str | None:
    """The refund path by goods status (SPEC §5.3); None for repairs (not a refund):
    an exchange order → ``exchange``; a compensation order (no goods move) →
    ``refund_without_return``; goods shipped back (or received) before completion →
    ``return_and_refund``; otherwise the case ended before the goods left the
    customer → ``refund_before_shipment``."""
    if row.exchange_created_at is not None or row.service_type == "exchange":
        return "exchange"
    if row.service_type == "compensation":
        return "refund_without_return"
    if row.service_type == "repair":
        return None
    back = row.shipped_back_at
    if row.received_at is not None and (back is None or row.received_at < back):
        back = row.received_at
    if back is not None and (fin_at is None or back <= fin_at):
        return "return_and_refund"
    return "refund_before_shipment"


def platform_served(row: OrderFact) -> bool:
    """The platform, not the merchant, handles this order: ``platform`` mode (the platform
    audits, receives, decides and executes), or a manufacturer served on its behalf."""
    return bool(row.on_behalf) or row.mode == PLATFORM_MODE


def self_completed(row: OrderFact, fin: tuple[datetime, str]) -> bool:
    """Completed by the merchant itself — only outcomes the merchant carried out count:
    - never an order the platform serves (``platform_served``), nor a case with platform
      intervention (arbitration requested) before completion;
    - a refund: executed as the merchant's own (``refund_by`` merchant; not the platform,
      not a system timer: auto-refund, advance compensation);
    - an exchange shipped: the exchange the merchant decided (the arbitration and
      platform cases are excluded above);
    - a terminal state: reached by the merchant's own action (rejection, marked resolved,
      offline exchange…), or the customer's or the timer's confirmation of an outcome the
      merchant decided before (a processing decision or an exchange order); not a timeout
      close (feedback, ship-back), a customer's abandonment, or a platform operator."""
    at, kind = fin
    if platform_served(row):
        return False
    if row.arbitration_at is not None and row.arbitration_at <= at:
        return False
    if kind == "refund":
        return row.refund_by == "merchant"
    if kind == "closed":
        role = row.closed_role
        if role in MERCHANT_ROLES:
            return True
        if role in PLATFORM_ROLES:
            return False
        p, x = row.processed_at, row.exchange_created_at
        return (p is not None and p <= at) or (x is not None and x <= at)
    return True


def contributions(row: OrderFact) -> tuple[list[tuple], list[tuple]]:
    """(units, amounts) this order adds to the counters: unit increments of
    ``(family, merchant, period, dim, component)`` and ``(key, amount)`` pairs."""
    m = row.merchant_id
    units: list[tuple] = []
    amounts: list[tuple] = []
    if m is None:  # facts of an order whose creation has not arrived yet wait for it
        return units, amounts
    u = units.append
    created = row.created_at
    # §5.1 scorecard: a = met, b = counted
    rated = row.rated_at
    if rated is not None:
        wk = week_key(rated)
        u(("sc", m, wk, "F1", 1))
        if (row.stars or 0) >= 4:
            u(("sc", m, wk, "F1", 0))
    a = row.audited_at
    if a is not None:
        wk = week_key(a)
        u(("sc", m, wk, "F2", 1))
        if a - created <= H12:
            u(("sc", m, wk, "F2", 0))
        else:  # §5.1 penalties: late audits, counted per merchant and week
            u(("pen", m, wk, "late_audit", 0))
    r = row.received_at
    if r is not None:
        wk = week_key(r)
        u(("sc", m, wk, "F3", 1))
        p = row.processed_at
        if p is not None and p - r <= H12:
            u(("sc", m, wk, "F3", 0))
    s, xc = row.exchange_shipped_at, row.exchange_created_at
    if s is not None and xc is not None:
        wk = week_key(s)
        u(("sc", m, wk, "F4", 1))
        if s - xc <= H18:
            u(("sc", m, wk, "F4", 0))
    # penalties: a = orders, c = amount in cents. A penalty the facts contradict (processed,
    # or ended, within 48 h of receipt: the timer fired before it saw the decision) is not charged.
    if row.penalty_at is not None and not penalty_contradicted(row):
        k = ("pen", m, week_key(row.penalty_at), "unprocessed_48h")
        u(k + (0,))
        if row.penalty_cents:
            amounts.append((k + (2,), row.penalty_cents))
    if row.advance_at is not None:
        k = ("pen", m, week_key(row.advance_at), "advance_compensation")
        u(k + (0,))
        if row.advance_cents:
            amounts.append((k + (2,), row.advance_cents))
    # §5.4 platform statistics (merchant ""), by Beijing month
    mo = month_key(created)
    u(("st", "", mo, "orders", 0))
    u(("st", "", mo, "type:" + row.service_type, 0))
    u(("st", "", mo, "problem:" + row.problem_type, 0))
    u(("st", "", mo, "sku:" + row.sku, 0))
    arb = row.arbitration_at
    if arb is not None:
        u(("st", "", month_key(arb), "arbitrations", 0))
    if rated is not None and row.stars is not None and 1 <= row.stars <= 5:
        u(("st", "", month_key(rated), "stars:%d" % row.stars, 0))
    if row.recommend_at is not None:
        rec = row.recommend
        u(("st", "", month_key(row.recommend_at), "nps", 0 if rec >= 9 else (1 if rec >= 7 else 2)))
    # §5.3 composite index, by Beijing day and refund path:
    # a = disputes (arbitration requested), b = completed, c = seconds to completion, d = completed by itself
    fin = finish(row)
    path = refund_path(row, fin[0] if fin else None)
    if path is not None:
        if arb is not None:
            u(("ix", m, day_key(arb), path, 0))
        if fin is not None:
            k = ("ix", m, day_key(fin[0]), path)
            u(k + (1,))
            secs = int((fin[0] - created).total_seconds())
            if secs > 0:
                amounts.append((k + (2,), secs))
            if self_completed(row, fin):
                u(k + (3,))
    u(("mcat", m, "", row.category, 0))
    # service-express membership: orders the manufacturer serves itself in a manufacturer mode
    if row.mode in MANUFACTURER_MODES and not row.on_behalf:
        u(("sx", m, week_key(created), "", 0))
    # §5.5 billing: service orders the platform served on the manufacturer's behalf
    if row.on_behalf:
        u(("bill", m, mo, "service_order", 0))
    return units, amounts


RESPONSIBLE_REASONS = frozenset({"enrolled", "no_agents", "overflow"})


def consultation_contributions(fact: tuple) -> tuple[list[tuple], list[tuple]]:
    """Counters of one consultation fact (facts are immutable: added once).
    ``cons``: a = consultations in the manufacturer's service hours, b = routed to
    it, c = transferred back to the platform."""
    _, kind, m, at, target, reason, package = fact
    if kind == "decided":
        if reason not in RESPONSIBLE_REASONS and target != "manufacturer":
            return [], []
        wk = week_key(at)
        return ([("cons", m, wk, "", 0), ("cons", m, wk, "", 1)] if target == "manufacturer"
                else [("cons", m, wk, "", 0)]), []
    if kind == "transferred":
        return [("cons", m, week_key(at), "", 2)], []
    if kind == "billable":
        return [("bill", m, month_key(at), f"consultation_package_{package}", 0)], []
    return [], []


def add_contributions(acc: dict, contrib: tuple[list, list], sign: int = 1) -> None:
    """acc[(family, merchant, period, dim)] = [a, b, c, d] += sign × contribution."""
    units, amounts = contrib
    for k in units:
        key = k[:4]
        v = acc.get(key)
        if v is None:
            v = acc[key] = [0, 0, 0, 0]
        v[k[4]] += sign
    for k, n in amounts:
        key = k[:4]
        v = acc.get(key)
        if v is None:
            v = acc[key] = [0, 0, 0, 0]
        v[k[4]] += sign * n


def add_difference(acc: dict, old: tuple[list, list], new: tuple[list, list]) -> None:
    """``add_contributions(acc, new)`` minus ``add_contributions(acc, old)``: the change
    of one order's contributions (the live consumer). The units both lists hold cancel
    out, so only those that differ are added (set differences when no unit repeats)."""
    (ou, oa), (nu, na) = old, new
    if ou != nu:
        so, sn = set(ou), set(nu)
        if len(so) == len(ou) and len(sn) == len(nu):
            add_contributions(acc, (list(so - sn), ()), -1)
            add_contributions(acc, (list(sn - so), ()), 1)
        else:
            add_contributions(acc, (ou, ()), -1)
            add_contributions(acc, (nu, ()), 1)
    if oa != na:
        add_contributions(acc, ((), oa), -1)
        add_contributions(acc, ((), na), 1)


class Tally:
    """Counters summed from scratch, fast (the rebuild): unit increments are
    counted in C (``collections.Counter.update``) a batch at a time."""

    def __init__(self) -> None:
        self.units: _Counter = _Counter()
        self.amounts: dict[tuple, int] = {}
        self._buf: list[tuple] = []

    def add(self, contrib: tuple[list, list]) -> None:
        units, amounts = contrib
        self._buf.extend(units)
        if amounts:
            am = self.amounts
            for k, n in amounts:
                am[k] = am.get(k, 0) + n
        if len(self._buf) >= 500_000:
            self.units.update(self._buf)
            self._buf.clear()

    def counters(self) -> dict[tuple, list[int]]:
        self.units.update(self._buf)
        self._buf.clear()
        acc: dict[tuple, list[int]] = {}
        for src in (self.units.items(), self.amounts.items()):
            for k, n in src:
                key = k[:4]
                v = acc.get(key)
                if v is None:
                    v = acc[key] = [0, 0, 0, 0]
                v[k[4]] += n
        return {k: v for k, v in acc.items() if any(v)}


def counters_of(rows, consultations=(), catalogue=()) -> dict:
    """Counters from scratch: {(family, merchant, period, dim): [a, b, c, d]} (zero rows dropped)."""
    t = Tally()
    for r in rows:
        t.add(contributions(r))
    for f in consultations:
        t.add(consultation_contributions(f))
    for e in catalogue:
        t.add(catalogue_contributions(e))
    return t.counters()
