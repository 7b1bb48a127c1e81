"""The KPI rules as data (docs/kpis.md), written once.

Two engines follow them and are generated from these tables, so they cannot drift:

- the Python projection (``projection.py``: the live consumer and the per-event rebuild),
  into which ``TRIGGERS`` and ``COUNTS`` are compiled (``expressions.ToPython``);
- the SQL of the columnar rebuild (``kpi.adapters.columnar``, DuckDB), which compiles the
  same expressions to SQL.

``tests/test_rule_table.py`` runs every rule of the tables through both.

1. ``TRIGGERS``: which ``service_order.transitioned`` records which milestone of the order
   (``MILESTONES``) with which values. The earliest occurrence of a milestone wins.
2. ``DERIVED``: values computed from an order's facts (when and how the refund case
   completed, its refund path, ...), in order: a value may use the ones before it.
3. ``COUNTS``: what one order adds to the counters ``(family, merchant, period, dim) →
   a, b, c, d`` the figures are sums of: per rule, when it applies, the period and dim it
   counts in, and per column a unit (+1 when a condition holds) or an amount.

Shared thresholds come from ``shared.service_levels`` (the SLA timer arms its deadlines with
the same ones), states and actions from the contracts' vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

from kpi.domain.expressions import (All, Cmp, Concat, Default, Detail, Earliest, Exceeds, Expr, Field, In, Lit,
                                    Not, Period, Present, SecondsAfter, StartsWith, Truthy, Within, all_of, any_of,
                                    case)
from shared.contracts.vocabulary import TERMINAL_STATES, Action
from shared.service_levels import (AUDIT_WITHIN, EXCHANGE_SHIP_WITHIN, PROCESS_WITHIN, PROCESSING_PENALTY_AFTER,
                                   PROCESSING_PENALTY_CNY)

# ---------------------------------------------------------------- vocabulary

MERCHANT_ROLES = frozenset({"merchant_main", "merchant_staff"})
PLATFORM_ROLES = frozenset({"platform_operator", "arbitrator"})
# Decisions that create an exchange order (and start the F4 clock); an arbitrator's
# exchange is the third (``arbitration.decide`` with outcome ``exchange``).
EXCHANGE_CREATING = frozenset({Action.PROCESS_EXCHANGE, Action.AUDIT_RESEND_WITHOUT_RETURN})
SYSTEM_REFUNDS = frozenset({Action.SYSTEM_AUTO_REFUND, Action.SYSTEM_ADVANCE_COMPENSATION})
# The actions whose ``details`` the triggers read (decoders may skip the others' details;
# checked below against the triggers).
DETAIL_ACTIONS = frozenset({Action.RATE, Action.PROCESS_REFUND, Action.ARBITRATION_DECIDE, *SYSTEM_REFUNDS})
TERMINAL = frozenset(str(s) for s in TERMINAL_STATES)
# Fulfilment modes in which the manufacturer itself runs its after-sales (service-express
# members); in ``platform`` mode the platform does every step.
MANUFACTURER_MODES = frozenset({"customer_contact", "full_manufacturer"})
PLATFORM_MODE = "platform"
DEFAULT_MODE = "pop_self_service"  # what the order contracts assume when an event names no mode
# The processing penalty when the fired deadline names no amount.
DEFAULT_PENALTY_CENTS = int(PROCESSING_PENALTY_CNY * 100)

# ---------------------------------------------------------------- 1. milestones and their triggers


@dataclass(frozen=True)
class Milestone:
    name: str
    at: str  # the fact's time column
    values: tuple[str, ...] = ()  # the fact's value columns, recorded with the time
    doc: str = ""


MILESTONE_TABLE: tuple[Milestone, ...] = (
    Milestone("audited", "audited_at", ("audit_action",), "the first audit decision"),
    Milestone("received", "received_at", (), "the merchant registered the returned goods"),
    Milestone("processed", "processed_at", ("process_action",), "the first processing decision"),
    Milestone("exchange_created", "exchange_created_at", (), "a decision created an exchange order"),
    Milestone("exchange_shipped", "exchange_shipped_at", (), "the exchange order shipped"),
    Milestone("shipped_back", "shipped_back_at", (), "the customer shipped the goods back"),
    Milestone("rated", "rated_at", ("stars",), "the customer's rating"),
    Milestone("recommended", "recommend_at", ("recommend",), "the customer's 0–10 recommendation"),
    Milestone("arbitration", "arbitration_at", (), "arbitration requested (the platform intervened)"),
    Milestone("refund", "refund_at", ("refund_cents", "refund_by"), "the refund executed, and by whom"),
    Milestone("closed", "closed_at", ("closed_role",), "a terminal state reached, and by which role"),
    Milestone("advance", "advance_at", ("advance_cents",), "the platform's advance compensation (先行赔付)"),
    Milestone("penalty", "penalty_at", ("penalty_cents",), "the SLA timer's 48 h processing penalty fired"),
)
# milestone name → (time column, value columns)
MILESTONES: dict[str, tuple[str, tuple[str, ...]]] = {m.name: (m.at, m.values) for m in MILESTONE_TABLE}

# the transition being folded
ACTION, TO_STATE, ACTOR_ROLE = Field("action"), Field("to_state"), Field("actor_role")
EVENT_FIELDS = ("action", "to_state", "actor_role")
AMOUNT = Detail("amount", "amount")
OUTCOME = Detail("outcome", "text")
COMPLETED_BY = Detail("completed_by", "text")
RECOMMEND_VALUE = Detail("recommend", "int")


def _is(action: str) -> Expr:
    return Cmp("==", ACTION, Lit(action))


@dataclass(frozen=True)
class Trigger:
    """A transition for which ``when`` holds records ``milestone`` with ``values``. When
    several triggers of one milestone hold, the first listed applies."""

    milestone: str
    when: Expr
    values: tuple[Expr, ...] = ()


# Who executed a merchant's refund: as the event says, else by the actor's role.
REFUND_BY = case((In(COMPLETED_BY, {"merchant", "platform", "system"}), COMPLETED_BY),
                 (In(ACTOR_ROLE, MERCHANT_ROLES), Lit("merchant")),
                 (In(ACTOR_ROLE, PLATFORM_ROLES), Lit("platform")), otherwise="system")

TRIGGERS: tuple[Trigger, ...] = (
    Trigger("audited", StartsWith(ACTION, "audit."), (ACTION,)),
    Trigger("exchange_created", In(ACTION, EXCHANGE_CREATING)),
    Trigger("exchange_created", all_of(_is(Action.ARBITRATION_DECIDE), Cmp("==", OUTCOME, Lit("exchange")))),
    Trigger("processed", StartsWith(ACTION, "process."), (ACTION,)),
    Trigger("refund", _is(Action.PROCESS_REFUND), (AMOUNT, REFUND_BY)),
    Trigger("refund", all_of(_is(Action.ARBITRATION_DECIDE), Cmp("==", OUTCOME, Lit("refund"))),
            (AMOUNT, Lit("platform"))),
    Trigger("refund", In(ACTION, SYSTEM_REFUNDS), (AMOUNT, Lit("system"))),
    Trigger("received", _is(Action.REGISTER_RECEIPT)),
    Trigger("shipped_back", _is(Action.FILL_SHIPMENT)),
    Trigger("exchange_shipped", _is(Action.EXCHANGE_SHIPPED)),
    Trigger("rated", _is(Action.RATE), (Detail("stars", "count"),)),
    Trigger("recommended", all_of(_is(Action.RATE), Cmp(">=", RECOMMEND_VALUE, Lit(0)),
                                  Cmp("<=", RECOMMEND_VALUE, Lit(10))), (RECOMMEND_VALUE,)),
    Trigger("arbitration", _is(Action.ARBITRATION_REQUEST)),
    Trigger("closed", In(TO_STATE, TERMINAL), (ACTOR_ROLE,)),
    Trigger("advance", _is(Action.SYSTEM_ADVANCE_COMPENSATION), (Default(AMOUNT, 0),)),
)

# ---------------------------------------------------------------- order fact fields

SNAPSHOT_FIELDS = ("merchant_id", "category", "sku", "service_type", "problem_type", "amount_cents", "created_at",
                   "on_behalf", "mode")
FIELDS: tuple[str, ...] = ("order_id", "snap_version", *SNAPSHOT_FIELDS) + tuple(
    f for m in MILESTONE_TABLE for f in (m.at, *m.values))

(CREATED_AT, SERVICE_TYPE, PROBLEM_TYPE, SKU, CATEGORY, MODE, ON_BEHALF) = map(Field, (
    "created_at", "service_type", "problem_type", "sku", "category", "mode", "on_behalf"))
(AUDITED_AT, RECEIVED_AT, PROCESSED_AT, EXCHANGE_CREATED_AT, EXCHANGE_SHIPPED_AT, SHIPPED_BACK_AT, RATED_AT, STARS,
 RECOMMEND_AT, RECOMMEND, ARBITRATION_AT, REFUND_AT, REFUND_BY_FACT, CLOSED_AT, CLOSED_ROLE, ADVANCE_AT,
 ADVANCE_CENTS, PENALTY_AT, PENALTY_CENTS) = map(Field, (
    "audited_at", "received_at", "processed_at", "exchange_created_at", "exchange_shipped_at", "shipped_back_at",
    "rated_at", "stars", "recommend_at", "recommend", "arbitration_at", "refund_at", "refund_by", "closed_at",
    "closed_role", "advance_at", "advance_cents", "penalty_at", "penalty_cents"))

# ---------------------------------------------------------------- 2. derived values


@dataclass(frozen=True)
class Derived:
    name: str
    value: Expr
    doc: str = ""


FINISHED_AT, FINISHED_BY, GOODS_BACK_AT, REFUND_PATH, SELF_COMPLETED, PENALTY_CONTRADICTED, AUDIT_LATE = map(
    Field, ("finished_at", "finished_by", "goods_back_at", "refund_path", "self_completed", "penalty_contradicted",
            "audit_late"))

PATHS = ("refund_before_shipment", "refund_without_return", "return_and_refund", "exchange")

DERIVED: tuple[Derived, ...] = (
    Derived("finished_at", Earliest((REFUND_AT, EXCHANGE_SHIPPED_AT, CLOSED_AT)),
            "when the refund case completed: the refund executed, the exchange shipped or the order reached "
            "a terminal state, whichever came first"),
    Derived("finished_by", case((Cmp("==", REFUND_AT, FINISHED_AT), Lit("refund")),
                                (Cmp("==", EXCHANGE_SHIPPED_AT, FINISHED_AT), Lit("exchange")),
                                (Cmp("==", CLOSED_AT, FINISHED_AT), Lit("closed"))),
            "how it completed (on a tie, the first listed: refund, exchange, closed)"),
    Derived("goods_back_at", Earliest((SHIPPED_BACK_AT, RECEIVED_AT)),
            "when the goods left the customer (shipped back, or received)"),
    Derived("refund_path", case(
        (any_of(Present(EXCHANGE_CREATED_AT), Cmp("==", SERVICE_TYPE, Lit("exchange"))), Lit("exchange")),
        (Cmp("==", SERVICE_TYPE, Lit("compensation")), Lit("refund_without_return")),
        (Cmp("==", SERVICE_TYPE, Lit("repair")), Lit(None)),
        (any_of(all_of(Present(GOODS_BACK_AT), Not(Present(FINISHED_AT))), Cmp("<=", GOODS_BACK_AT, FINISHED_AT)),
         Lit("return_and_refund")),
        otherwise="refund_before_shipment"),
        "the refund path by goods status: an exchange order; a compensation (no goods move); goods shipped "
        "back or received before completion; else the case ended before the goods left the customer. A repair "
        "is not a refund case (none)"),
    Derived("self_completed", case(
        (any_of(Truthy(ON_BEHALF), Cmp("==", MODE, Lit(PLATFORM_MODE))), Lit(False)),
        (Cmp("<=", ARBITRATION_AT, FINISHED_AT), Lit(False)),
        (Cmp("==", FINISHED_BY, Lit("refund")), Cmp("==", REFUND_BY_FACT, Lit("merchant"))),
        (Cmp("==", FINISHED_BY, Lit("closed")), case(
            (In(CLOSED_ROLE, MERCHANT_ROLES), Lit(True)),
            (In(CLOSED_ROLE, PLATFORM_ROLES), Lit(False)),
            otherwise=any_of(Cmp("<=", PROCESSED_AT, FINISHED_AT), Cmp("<=", EXCHANGE_CREATED_AT, FINISHED_AT)))),
        otherwise=True),
        "the merchant completed the case itself: never an order the platform serves (platform mode or on a "
        "manufacturer's behalf) nor once arbitration was requested; a refund the merchant executed; an exchange "
        "shipped; a terminal state the merchant's own action reached, or a confirmation (customer, timer) of a "
        "decision the merchant made before — not a timeout close, an abandonment or an operator's close"),
    Derived("penalty_contradicted", any_of(Within(RECEIVED_AT, PROCESSED_AT, PROCESSING_PENALTY_AFTER),
                                           Within(RECEIVED_AT, CLOSED_AT, PROCESSING_PENALTY_AFTER)),
            "the 48 h penalty fired, yet the order was processed (or ended) within 48 h of its receipt: a stale "
            "timer, never charged (docs/deadlines.md, stale timers)"),
    Derived("audit_late", Exceeds(CREATED_AT, AUDITED_AT, AUDIT_WITHIN),
            "audited later than 12 h after creation (stored with the fact: the late-audit penalty lists them)"),
)

# ---------------------------------------------------------------- 3. counters


@dataclass(frozen=True)
class Unit:
    """+1 when the condition holds."""

    when: Expr = Lit(True)


@dataclass(frozen=True)
class Amount:
    """+ the value (when present and not 0)."""

    value: Expr


@dataclass(frozen=True)
class Count:
    family: str
    dim: Expr
    period: Expr
    when: Expr = Lit(True)
    a: Unit | Amount | None = None
    b: Unit | Amount | None = None
    c: Unit | Amount | None = None
    d: Unit | Amount | None = None
    platform: bool = False  # a platform-wide figure (merchant ""), else the order's merchant
    doc: str = ""

    def __post_init__(self) -> None:
        for f in ("dim", "period"):
            v = getattr(self, f)
            if not isinstance(v, Expr):
                object.__setattr__(self, f, Lit(v))

    @property
    def columns(self) -> tuple[tuple[int, Unit | Amount], ...]:
        return tuple((i, x) for i, x in enumerate((self.a, self.b, self.c, self.d)) if x is not None)


def _week(t: Expr) -> Period:
    return Period("week", t)


def _month(t: Expr) -> Period:
    return Period("month", t)


COUNTS: tuple[Count, ...] = (
    # the weekly scorecard (sc): a = met, b = counted
    Count("sc", "F1", _week(RATED_AT), Present(RATED_AT), a=Unit(Cmp(">=", Default(STARS, 0), Lit(4))), b=Unit(),
          doc="F1 satisfaction: rated 4 or 5 stars, in the week of the rating"),
    Count("sc", "F2", _week(AUDITED_AT), Present(AUDITED_AT), a=Unit(Within(CREATED_AT, AUDITED_AT, AUDIT_WITHIN)),
          b=Unit(), doc="F2 audit within 12 h of creation, in the week of the audit"),
    Count("sc", "F3", _week(RECEIVED_AT), Present(RECEIVED_AT),
          a=Unit(Within(RECEIVED_AT, PROCESSED_AT, PROCESS_WITHIN)), b=Unit(),
          doc="F3 processing within 12 h of receipt, in the week of the receipt (not processed yet: not met)"),
    Count("sc", "F4", _week(EXCHANGE_SHIPPED_AT), all_of(Present(EXCHANGE_SHIPPED_AT), Present(EXCHANGE_CREATED_AT)),
          a=Unit(Within(EXCHANGE_CREATED_AT, EXCHANGE_SHIPPED_AT, EXCHANGE_SHIP_WITHIN)), b=Unit(),
          doc="F4 exchange shipped within 18 h of the decision creating it, in the week of the shipment"),
    # penalties (pen): a = orders, c = amount in cents
    Count("pen", "late_audit", _week(AUDITED_AT), Truthy(AUDIT_LATE), a=Unit(),
          doc="late audits, per merchant and week of the audit (every 10 count once)"),
    Count("pen", "unprocessed_48h", _week(PENALTY_AT), all_of(Present(PENALTY_AT), Not(Truthy(PENALTY_CONTRADICTED))),
          a=Unit(), c=Amount(PENALTY_CENTS), doc="the 48 h processing penalty, in the week it fired"),
    Count("pen", "advance_compensation", _week(ADVANCE_AT), Present(ADVANCE_AT), a=Unit(), c=Amount(ADVANCE_CENTS),
          doc="advance compensation charged to the merchant, in the week of the refund"),
    # platform statistics (st, merchant ""), by Beijing month: a = count (nps: a/b/c = promoters/passives/detractors)
    Count("st", "orders", _month(CREATED_AT), a=Unit(), platform=True, doc="service orders created"),
    Count("st", Concat("type:", SERVICE_TYPE), _month(CREATED_AT), a=Unit(), platform=True, doc="by service type"),
    Count("st", Concat("problem:", PROBLEM_TYPE), _month(CREATED_AT), a=Unit(), platform=True,
          doc="by problem type"),
    Count("st", Concat("sku:", SKU), _month(CREATED_AT), a=Unit(), platform=True, doc="by SKU"),
    Count("st", "arbitrations", _month(ARBITRATION_AT), Present(ARBITRATION_AT), a=Unit(), platform=True,
          doc="arbitration requests, by request month"),
    Count("st", Concat("stars:", STARS), _month(RATED_AT),
          all_of(Present(RATED_AT), Cmp(">=", STARS, Lit(1)), Cmp("<=", STARS, Lit(5))), a=Unit(), platform=True,
          doc="ratings 1–5, by rating month"),
    Count("st", "nps", _month(RECOMMEND_AT), Present(RECOMMEND_AT), a=Unit(Cmp(">=", RECOMMEND, Lit(9))),
          b=Unit(all_of(Cmp(">=", RECOMMEND, Lit(7)), Cmp("<=", RECOMMEND, Lit(8)))),
          c=Unit(Cmp("<", RECOMMEND, Lit(7))), platform=True,
          doc="recommendations: promoters 9–10, passives 7–8, detractors 0–6"),
    # composite index (ix), by Beijing day and refund path: a = disputes, b = completed,
    # c = seconds from creation to completion, d = completed by the merchant itself
    Count("ix", REFUND_PATH, Period("day", ARBITRATION_AT), all_of(Present(REFUND_PATH), Present(ARBITRATION_AT)),
          a=Unit(), doc="refund cases where the platform intervened, by request day"),
    Count("ix", REFUND_PATH, Period("day", FINISHED_AT), all_of(Present(REFUND_PATH), Present(FINISHED_AT)),
          b=Unit(), c=Amount(SecondsAfter(CREATED_AT, FINISHED_AT)), d=Unit(Truthy(SELF_COMPLETED)),
          doc="completed refund cases, by completion day"),
    # the merchant's categories by its orders (all time)
    Count("mcat", CATEGORY, "", a=Unit(), doc="orders per category (a merchant's category when its catalogue "
                                              "names none)"),
    Count("sx", "", _week(CREATED_AT), all_of(In(MODE, MANUFACTURER_MODES), Not(Truthy(ON_BEHALF))), a=Unit(),
          doc="service-express membership: orders the manufacturer serves itself in a manufacturer mode"),
    Count("bill", "service_order", _month(CREATED_AT), Truthy(ON_BEHALF), a=Unit(),
          doc="billing: orders the platform served on the manufacturer's behalf, by creation month"),
)


# ---------------------------------------------------------------- checks of the tables

def _check() -> None:
    names = {m.name for m in MILESTONE_TABLE}
    derived: set[str] = set()
    for d in DERIVED:
        unknown = {n.name for n in d.value.walk() if isinstance(n, Field)} - set(FIELDS) - derived
        if unknown:
            raise ValueError(f"derived {d.name} reads unknown fields {sorted(unknown)}")
        derived.add(d.name)
    for c in COUNTS:
        exprs = [c.dim, c.period, c.when] + [x.when if isinstance(x, Unit) else x.value for _i, x in c.columns]
        unknown = {n.name for e in exprs for n in e.walk() if isinstance(n, Field)} - set(FIELDS) - derived
        if unknown:
            raise ValueError(f"count {c.family}/{c.dim} reads unknown fields {sorted(unknown)}")
    for t in TRIGGERS:
        if t.milestone not in names or len(t.values) != len(MILESTONES[t.milestone][1]):
            raise ValueError(f"trigger of {t.milestone}: unknown milestone or wrong number of values")
        reads_details = any(isinstance(n, Detail) for e in (t.when, *t.values) for n in e.walk())
        if reads_details and not _actions_of(t.when) <= DETAIL_ACTIONS:
            raise ValueError(f"trigger of {t.milestone} reads details of actions outside DETAIL_ACTIONS")


def _actions_of(when: Expr) -> frozenset:
    """The actions a trigger is limited to (everything, when its condition does not say)."""
    parts = when.items if isinstance(when, All) else (when,)
    for p in parts:
        if isinstance(p, Cmp) and p.op == "==" and p.left == ACTION and isinstance(p.right, Lit):
            return frozenset({p.right.value})
        if isinstance(p, In) and p.x == ACTION:
            return p.values
    return frozenset({"*"})


_check()
