"""The KPI projection, pure (no I/O): events → one fact row per service order →
counters. The live consumer and the rebuild (``kpi replay``) run exactly this
code, so the two give identical figures. The rules themselves are data
(``rules.py``): ``fold_transition`` and ``contributions`` are generated from them, as
is the SQL of the columnar rebuild.

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
   computed from the counters (``kpi.handlers.figures``).

Time: periods are Beijing calendar days / Monday–Sunday weeks / months. China has
kept UTC+8 all year since 1991, so the Beijing date of a UTC time is the date of
that time plus 8 hours.
"""
from __future__ import annotations

import linecache
from collections import Counter as _Counter
from datetime import date, datetime, timedelta, timezone

from kpi.domain import rules as R
from kpi.domain.expressions import ToPython, fields_of, parse_amount

TERMINAL_STATES = R.TERMINAL
MERCHANT_ROLES = R.MERCHANT_ROLES
PLATFORM_ROLES = R.PLATFORM_ROLES
# Actions whose ``details`` the projection reads (the fast decoder parses details only for these).
DETAIL_ACTIONS = frozenset(str(a) for a in R.DETAIL_ACTIONS)
EXCHANGE_CREATING = frozenset(str(a) for a in R.EXCHANGE_CREATING)
SYSTEM_REFUNDS = frozenset(str(a) for a in R.SYSTEM_REFUNDS)
ORDER_TYPES = frozenset({"service_order.transitioned", "service_order.created", "sla.deadline_fired"})
CONSULT_TYPES = frozenset({"routing.decided", "routing.transferred", "routing.billable_consultation"})
CATALOGUE_TYPES = frozenset({"catalogue.sku_upserted"})
HANDLED_TYPES = ORDER_TYPES | CONSULT_TYPES | CATALOGUE_TYPES
MANUFACTURER_MODES = R.MANUFACTURER_MODES
PLATFORM_MODE = R.PLATFORM_MODE
DEFAULT_MODE = R.DEFAULT_MODE
DEFAULT_PENALTY_CENTS = R.DEFAULT_PENALTY_CENTS

# milestone name → (time column, value columns)
MILESTONES = R.MILESTONES
SNAPSHOT_FIELDS = R.SNAPSHOT_FIELDS
FIELDS: tuple[str, ...] = R.FIELDS
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
        """``rules.DERIVED`` audit_late (stored with the fact)."""
        return _audit_late(self)


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
    return parse_amount(value)


def money(c: int | None) -> str | None:
    if c is None:
        return None
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


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

PATHS = R.PATHS

# ---------------------------------------------------------------- generated from the rule tables
#
# ``rules.TRIGGERS`` become ``fold_transition``, ``rules.DERIVED`` and ``rules.COUNTS`` become
# ``contributions`` (and ``derived``): plain Python, compiled once at import, so the rules
# cost what hand-written code would. ``SOURCE`` holds the generated code (tracebacks show it).

_NS: dict = {"fold_static": fold_static, "fold_milestone": fold_milestone, "day_key": day_key, "week_key": week_key,
             "month_key": month_key}
SOURCE: dict[str, str] = {}


def _define(name: str, lines: list[str]):
    src = "\n".join(lines) + "\n"
    filename = f"<kpi.domain.rules: {name}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    exec(compile(src, filename, "exec"), _NS)  # noqa: S102 - code generated from the rule tables
    SOURCE[name] = src
    return _NS[name]


def _fold_transition_source() -> list[str]:
    py = ToPython({f: f for f in R.EVENT_FIELDS}, _NS, present=frozenset(R.EVENT_FIELDS))
    lines = ["def fold_transition(row, version, snap, action, to_state, actor_role, at, details):",
             "    changed = fold_static(row, version, snap) if snap is not None else False"]
    by_milestone: dict[str, list] = {}
    for t in R.TRIGGERS:
        by_milestone.setdefault(t.milestone, []).append(t)
    for name, triggers in by_milestone.items():
        for n, t in enumerate(triggers):
            values = "".join(py(v) + ", " for v in t.values)
            lines.append(f"    {'if' if n == 0 else 'elif'} {py(t.when, True)}:")
            lines.append(f"        changed |= fold_milestone(row, {name!r}, at, ({values}))")
    lines.append("    return changed")
    return lines


def _derived_lines(py: ToPython, names: list[str], indent: str = "    ") -> list[str]:
    return [f"{indent}{py.names[d.name]} = {py(d.value)}" for d in R.DERIVED if d.name in names]


def _needed(*exprs) -> tuple[list[str], list[str]]:
    """(fact fields, derived values) the expressions need, derived values' own needs included."""
    derived = {d.name: d for d in R.DERIVED}
    want, todo = set(), fields_of(*exprs)
    while todo:
        n = todo.pop()
        if n in want:
            continue
        want.add(n)
        if n in derived:
            todo.extend(fields_of(derived[n].value))
    return [f for f in FIELDS if f in want], [d for d in derived if d in want]


def _row_locals(facts: list[str], derived: list[str]) -> dict[str, str]:
    return {f: "f_" + f for f in facts + derived}


def _contributions_source(name: str, counts: tuple[R.Count, ...]) -> list[str]:
    exprs = [e for c in counts for e in (c.dim, c.period, c.when)] + [
        x.when if isinstance(x, R.Unit) else x.value for c in counts for _i, x in c.columns]
    facts, derived = _needed(*exprs)
    py = ToPython(_row_locals(facts, derived), _NS)
    lines = [f"def {name}(row):",
             "    m = row.merchant_id",
             "    if m is None:  # facts of an order whose creation has not arrived yet wait for it",
             "        return [], []"]
    lines += [f"    f_{f} = row.{f}" for f in facts]
    lines += _derived_lines(py, derived)
    lines += ["    units = []", "    amounts = []", "    u = units.append"]
    # a period every order counts in (an unconditional rule's) is computed once
    hoisted: dict[str, str] = {}
    for c in counts:
        if c.when == R.Lit(True) and not isinstance(c.period, R.Lit) and py(c.period) not in hoisted:
            hoisted[py(c.period)] = f"p{len(hoisted)}"
            lines.append(f"    {hoisted[py(c.period)]} = {py(c.period)}")
    for c in counts:
        ind = "    "
        if c.when != R.Lit(True):
            lines.append(f"    if {py(c.when, True)}:  # {c.family} {c.doc}")
            ind = "        "
        else:
            lines.append(f"    # {c.family} {c.doc}")
        key = f"{c.family!r}, {'' if c.platform else 'm'}{repr('') if c.platform else ''}"
        period = py(c.period) if isinstance(c.period, R.Lit) else hoisted.get(py(c.period), "p")
        dim = py(c.dim) if isinstance(c.dim, R.Lit) else "d"
        if period == "p":
            lines.append(f"{ind}p = {py(c.period)}")
        if dim == "d":
            lines.append(f"{ind}d = {py(c.dim)}")
        for i, x in c.columns:
            k = f"({key}, {period}, {dim}, {i})"
            if isinstance(x, R.Amount):
                lines.append(f"{ind}v = {py(x.value)}")
                lines.append(f"{ind}if v:")
                lines.append(f"{ind}    amounts.append(({k}, v))")
            elif x.when == R.Lit(True):
                lines.append(f"{ind}u({k})")
            else:
                lines.append(f"{ind}if {py(x.when, True)}:")
                lines.append(f"{ind}    u({k})")
    lines.append("    return units, amounts")
    return lines


def _derived_source(name: str, which: list[str]) -> list[str]:
    facts, derived = _needed(*[R.Field(w) for w in which])
    py = ToPython(_row_locals(facts, derived), _NS)
    lines = [f"def {name}(row):"] + [f"    f_{f} = row.{f}" for f in facts] + _derived_lines(py, derived)
    if len(which) == 1:
        return lines + [f"    return f_{which[0]}"]
    return lines + ["    return {" + ", ".join(f"{w!r}: f_{w}" for w in which) + "}"]


fold_transition = _define("fold_transition", _fold_transition_source())
fold_transition.__doc__ = """One ``service_order.transitioned`` (``rules.TRIGGERS``). ``snap`` may be None when
    ``needs_snapshot(row, version)`` is false; ``details`` is read only for the actions in
    ``DETAIL_ACTIONS``."""
def compile_contributions(counts: tuple[R.Count, ...], name: str = "contributions"):
    """A ``contributions`` function for these counter rules (the module's own: all of
    ``rules.COUNTS``; the tests compile each rule alone)."""
    return _define(name, _contributions_source(name, counts))


contributions = compile_contributions(R.COUNTS)
contributions.__doc__ = """(units, amounts) this order adds to the counters (``rules.COUNTS``): unit
    increments of ``(family, merchant, period, dim, component)`` and ``(key, amount)`` pairs."""
derived = _define("derived", _derived_source("derived", [d.name for d in R.DERIVED]))
derived.__doc__ = "Every value of ``rules.DERIVED`` for one order fact, by name."
_audit_late = _define("_audit_late", _derived_source("_audit_late", ["audit_late"]))
penalty_contradicted = _define("penalty_contradicted", _derived_source("penalty_contradicted",
                                                                       ["penalty_contradicted"]))
penalty_contradicted.__doc__ = "``rules.DERIVED`` penalty_contradicted: a stale 48 h penalty, never charged."


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
