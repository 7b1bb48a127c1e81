"""Cross-service invariants, checked through the services' APIs only (operator token).

For every order the workload created: its full record and timeline (orders), its timers
(sla-timer), its KPI fact row (kpi) and its messages (notifier). Then, platform-wide: the
penalties ledger and the bills (kpi), the parked messages of every service.

Each finding is a ``Violation`` of one of three classes, the chaos run's figures:
- ``lost``: something the history implies is missing downstream (an acknowledged action
  not in the timeline, a timer never set or never cancelled, a deadline's effect never
  applied, a KPI milestone or bill missing, a notification never recorded);
- ``duplicated``: something happened twice (two timers for one arming, two messages for
  one (event, recipient, template), a refund or a bill twice);
- ``invariant``: anything else that contradicts the rules (a timer that fired with effect
  after its order had moved on, a penalty the history does not earn, a refund above what
  was paid, a parked message nobody poisoned, a KPI value that differs…).

How the expected timers are derived: the rule table (`GET /v1/rules` on sla-timer: what
starts each rule, what cancels it, which problem type it is for) applied to the order's
timeline in version order. Each arming (rule, order version) is then live, cancelled by
a later entry, or consumed by its own effect (a system action by ``timer:<rule>``).
"""
from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tools.workload.api import Api, ApiError

TERMINAL = frozenset({"completed", "rejected", "abandoned", "closed", "refunded_by_system"})
# fired deadline action -> the order action it causes (orders' consumer)
EFFECTS = {"auto_refund": "system.auto_refund", "advance_compensation": "system.advance_compensation",
           "auto_close": "system.auto_close", "auto_confirm": "system.auto_confirm"}
# fired deadline action -> (template, audience) the notifier writes
DEADLINE_NOTICES = {"remind_customer": ("ship_back_reminder", "customer"),
                    "remind_merchant": ("merchant_reminder", "merchant"),
                    "escalate": ("escalation", "staff")}
# order action -> [(template, audience)] the notifier writes
ACTION_NOTICES = {
    "audit.reject": [("audit_rejected", "customer")],
    "audit.approve_return": [("return_approved", "customer")],
    "remind_to_ship": [("remind_to_ship", "customer")],
    "exchange.shipped": [("exchange_shipped", "customer")],
    "system.auto_refund": [("auto_refund_customer", "customer"), ("auto_refund_merchant", "merchant")],
    "system.advance_compensation": [("auto_refund_customer", "customer"), ("auto_refund_merchant", "merchant")],
}
REFUNDS = ("process.refund", "system.auto_refund", "system.advance_compensation")
GRACE = timedelta(seconds=30)  # a due timer still pending after this is overdue
H12, H48 = timedelta(hours=12), timedelta(hours=48)


@dataclass
class Violation:
    cls: str  # lost | duplicated | invariant
    kind: str
    order_id: str | None
    detail: str

    def line(self) -> str:
        return f"{self.cls:<10} {self.kind:<32} {self.order_id or '-':<38} {self.detail}"


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    checked_orders: int = 0
    timers: int = 0
    fired: int = 0
    messages: int = 0
    parked_poison: int = 0

    def add(self, cls: str, kind: str, order_id: str | None, detail: str) -> None:
        self.violations.append(Violation(cls, kind, order_id, detail))

    def count(self, cls: str) -> int:
        return sum(1 for v in self.violations if v.cls == cls)

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(f"{v.cls}:{v.kind}" for v in self.violations))


def ts(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s).astimezone(timezone.utc) if s else None


def dec(s) -> Decimal | None:
    return None if s is None else Decimal(str(s))


def timer_event_id(timer_id: str) -> str:
    """The id sla-timer gives a timer's fired event (name-based, stable)."""
    return str(uuid.uuid3(uuid.NAMESPACE_URL, f"sla-timer/{timer_id}"))


def week_of(at: datetime) -> str:
    """The Monday (Beijing date) of the week holding ``at``."""
    d = (at + timedelta(hours=8)).date()
    return (d - timedelta(days=d.weekday())).isoformat()


# ------------------------------------------------------------------------------ timers
@dataclass
class Arming:
    rule: str
    version: int
    at: datetime
    status: str = "live"  # live | cancelled | effected
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None


def facts_of(entry: dict) -> set[str]:
    if entry["action"] == "apply":
        return {"created"}
    facts = {f"action:{entry['action']}"}
    if entry["to_state"] != entry["from_state"]:
        facts.add(f"state:{entry['to_state']}")
    outcome = (entry.get("details") or {}).get("outcome")
    if entry["action"] == "arbitration.decide" and isinstance(outcome, str):
        facts.add(f"outcome:{outcome}")  # an arbitrator's binding outcome starts its deadlines too
    return facts


def expected_armings(timeline: list[dict], rules: list[dict], problem_type: str
                     ) -> tuple[list[Arming], list[tuple[dict, str]]]:
    """Every timer the order's history arms, with what became of it; and the system actions
    whose timer was no longer armed when they happened (a stale deadline applied)."""
    armings: list[Arming] = []
    active: dict[str, list[Arming]] = defaultdict(list)
    stale: list[tuple[dict, str]] = []
    for e in sorted(timeline, key=lambda e: e["version"]):
        at = ts(e["at"])
        facts = facts_of(e)
        actor = e.get("actor_id") or ""
        if e["actor_role"] == "system" and actor.startswith("timer:"):
            rule = actor[len("timer:"):]
            if active.get(rule):
                a = active[rule].pop()
                a.status = "effected"
            else:
                stale.append((e, rule))
        for r in rules:
            if set(r["cancelled_by"]) & facts:
                for a in active.pop(r["name"], []):
                    a.status, a.cancelled_at, a.cancelled_by = "cancelled", at, e["action"]
        for r in rules:
            if set(r["starts"]) & facts and r["problem_type"] in (None, problem_type):
                a = Arming(r["name"], e["version"], at)
                armings.append(a)
                active[r["name"]].append(a)
    return armings, stale


# ------------------------------------------------------------------------------ checker
@dataclass
class OrderData:
    id: str
    detail: dict
    timers: list[dict]
    fact: dict | None
    messages: list[dict]


class Checker:
    def __init__(self, api: Api, operator: str, *, concurrency: int = 6) -> None:
        self.api = api
        self.op = operator
        self.sem = asyncio.Semaphore(concurrency)
        self.rules: list[dict] = []
        self.rule_action: dict[str, str] = {}
        self.now: datetime | None = None

    async def prepare(self) -> None:
        self.rules = (await self.api.ok("sla-timer", "GET", "/v1/rules", as_=self.op))["items"]
        self.rule_action = {r["name"]: r["action"] for r in self.rules}
        clock = await self.api.ok("sla-timer", "GET", "/admin/clock", as_=self.op)
        self.now = ts(clock["now"])

    async def collect(self, order_id: str) -> OrderData:
        async with self.sem:
            detail = await self.api.ok("orders", "GET", f"/v1/platform/service-orders/{order_id}", as_=self.op)
            timers = (await self.api.ok("sla-timer", "GET", f"/v1/service-orders/{order_id}/timers",
                                        as_=self.op))["items"]
            r = await self.api.call("kpi", "GET", f"/v1/facts/service-orders/{order_id}", as_=self.op)
            fact = r.json() if r.status_code == 200 else None
            if r.status_code not in (200, 404):
                raise ApiError(r)
            messages, offset = [], 0
            while True:
                page = (await self.api.ok("notifier", "GET", "/v1/messages", as_=self.op,
                                          params={"order_id": order_id, "limit": 500, "offset": offset}))["items"]
                messages += page
                if len(page) < 500:
                    break
                offset += 500
        return OrderData(order_id, detail, timers, fact, messages)

    # -------------------------------------------------------------- one order
    def check_order(self, o: OrderData, rep: Report, acked: list[tuple[int, str]], goods: Decimal) -> None:
        """``acked``: (version, action) the platform answered 200 for; ``goods``: what was
        paid for the quantity in service (the workload knows the purchased quantity)."""
        d, oid = o.detail, o.id
        timeline = sorted(d["timeline"], key=lambda e: e["version"])
        versions = [e["version"] for e in timeline]
        if len(versions) != len(set(versions)):
            rep.add("duplicated", "timeline_version_twice", oid, f"versions {versions}")
        if versions != list(range(1, len(versions) + 1)) or versions[-1] != d["version"]:
            rep.add("invariant", "timeline_gap", oid, f"versions {versions}, order at v{d['version']}")
        by_version = {e["version"]: e for e in timeline}
        for version, kind in acked:
            e = by_version.get(version)
            if e is None or e["action"] != kind:
                rep.add("lost", "acknowledged_action_missing", oid,
                        f"v{version} {kind} was answered 200; timeline has {e and e['action']}")
        armings, stale = self._timers(o, timeline, rep)
        for e, rule in stale:
            rep.add("invariant", "stale_deadline_applied", oid,
                    f"{e['action']} at v{e['version']} by timer {rule}, which the history had cancelled")
        self._facts(o, timeline, rep)
        self._notifications(o, timeline, armings, rep)
        self._refunds(o, timeline, rep, goods)

    def _timers(self, o: OrderData, timeline: list[dict], rep: Report):
        oid = o.id
        armings, stale = expected_armings(timeline, self.rules, o.detail["problem_type"])
        actual: dict[tuple[str, int], list[dict]] = defaultdict(list)
        for t in o.timers:
            actual[(t["rule"], t["order_version"])].append(t)
        rep.timers += len(o.timers)
        rep.fired += sum(1 for t in o.timers if t["state"] == "fired")
        expected_keys = set()
        for a in armings:
            key = (a.rule, a.version)
            expected_keys.add(key)
            got = actual.get(key, [])
            if len(got) > 1:
                rep.add("duplicated", "timer_twice", oid, f"{a.rule} armed at v{a.version}: {len(got)} timers")
            if not got:
                rep.add("lost", "timer_missing", oid, f"{a.rule} armed at v{a.version} ({a.at.isoformat()})")
                continue
            t = got[0]
            due = ts(t["due_at"])
            if a.status == "live":
                if t["state"] == "pending" and due <= self.now - GRACE:
                    rep.add("invariant", "timer_overdue", oid, f"{a.rule} due {t['due_at']} still pending")
                elif t["state"] == "cancelled":
                    rep.add("invariant", "live_timer_cancelled", oid,
                            f"{a.rule} armed at v{a.version} cancelled by {t['cancelled_by']}; history still arms it")
                elif t["state"] == "fired" and t["action"] in EFFECTS and o.detail["state"] not in TERMINAL:
                    rep.add("lost", "deadline_effect_missing", oid,
                            f"{a.rule} fired {t['fired_at']}, order still {o.detail['state']}")
            elif a.status == "effected":
                if t["state"] != "fired":
                    rep.add("invariant", "effect_without_fire", oid, f"{a.rule} applied but timer {t['state']}")
            elif t["state"] == "pending":
                rep.add("lost", "timer_not_cancelled", oid,
                        f"{a.rule} armed at v{a.version} still pending; {a.cancelled_by} at "
                        f"{a.cancelled_at.isoformat()} cancels it")
        for key, got in actual.items():
            if key not in expected_keys:
                rep.add("invariant", "unexpected_timer", oid, f"{key[0]} at v{key[1]} ({got[0]['state']})")
        return armings, stale

    def _facts(self, o: OrderData, timeline: list[dict], rep: Report) -> None:
        oid, d, f = o.id, o.detail, o.fact
        if f is None:
            rep.add("lost", "kpi_fact_missing", oid, "no KPI fact row")
            return
        exp: dict[str, object] = {"merchant_id": d["merchant_id"], "created_at": ts(d["created_at"]),
                                  "amount_paid": dec(d["amount_paid"]), "on_behalf": bool(d.get("on_behalf"))}

        def first(field_at: str, e: dict, **values) -> None:
            if field_at not in exp:
                exp[field_at] = ts(e["at"])
                exp.update(values)

        for e in timeline:
            a, det = e["action"], e.get("details") or {}
            if a.startswith("audit."):
                first("audited_at", e, audit_action=a)
            if a.startswith("process."):
                first("processed_at", e, process_action=a)
            if a in ("audit.resend_without_return", "process.exchange") or (
                    a == "arbitration.decide" and det.get("outcome") == "exchange"):
                first("exchange_created_at", e)
            if a == "process.refund":
                first("refund_at", e, refund=dec(det.get("amount")), refund_by=det.get("completed_by"))
            elif a == "arbitration.decide" and det.get("outcome") == "refund":
                first("refund_at", e, refund=dec(det.get("amount")), refund_by="platform")
            elif a in ("system.auto_refund", "system.advance_compensation"):
                first("refund_at", e, refund=dec(det.get("amount")), refund_by="system")
            if a == "system.advance_compensation":
                first("advance_at", e, advance=dec(det.get("amount")))
            if a == "register_receipt":
                first("received_at", e)
            if a == "fill_shipment":
                first("shipped_back_at", e)
            if a == "exchange.shipped":
                first("exchange_shipped_at", e)
            if a == "rate":
                first("rated_at", e, stars=det.get("stars"))
                if isinstance(det.get("recommend"), int):
                    first("recommend_at", e, recommend=det.get("recommend"))
            if a == "arbitration.request":
                first("arbitration_at", e)
            if e["to_state"] in TERMINAL:
                first("closed_at", e, closed_role=e["actor_role"])
        fired = sorted(ts(t["fired_at"]) for t in o.timers
                       if t["state"] == "fired" and self.rule_action.get(t["rule"]) == "penalty")
        if fired:
            exp["penalty_at"], exp["penalty"] = fired[0], Decimal("2000.00")
        for k, v in exp.items():
            got = f.get(k)
            got = ts(got) if k.endswith("_at") and got else (dec(got) if k in ("amount_paid", "refund", "advance",
                                                                                 "penalty") else got)
            if got is None and v is not None:
                rep.add("lost", "kpi_milestone_missing", oid, f"{k}: expected {v}")
            elif got != v:
                rep.add("invariant", "kpi_fact_differs", oid, f"{k}: KPI has {got}, history says {v}")
        for k in ("audited_at", "received_at", "processed_at", "refund_at", "closed_at", "advance_at", "penalty_at",
                  "rated_at", "arbitration_at", "exchange_shipped_at", "shipped_back_at", "exchange_created_at"):
            if f.get(k) is not None and k not in exp:
                rep.add("invariant", "kpi_fact_unearned", oid, f"{k}={f[k]} but the history has none")

    def _notifications(self, o: OrderData, timeline: list[dict], armings: list[Arming], rep: Report) -> None:
        oid = o.id
        rep.messages += len(o.messages)
        triples = Counter((m["event_id"], m["recipient"], m["template_key"]) for m in o.messages)
        for (ev, rcpt, tpl), n in triples.items():
            if n > 1:
                rep.add("duplicated", "message_twice", oid, f"{tpl} to {rcpt} for event {ev}: {n} messages")
        by_event: dict[str, list[dict]] = defaultdict(list)
        for m in o.messages:
            by_event[m["event_id"]].append(m)
            err = m.get("last_error") or ""
            if m.get("status") == "failed" and err.startswith(("missing fields", "unknown template")):
                # recorded, but it can never be sent: the event lacks what the template needs
                rep.add("invariant", "notice_unsendable", oid, f"{m['template_key']} to {m['recipient']}: {err}")
        # deadline notices: one event per fired timer that still held when it fired
        arm = {(a.rule, a.version): a for a in armings}
        deadline_events = set()
        for t in o.timers:
            notice = DEADLINE_NOTICES.get(t["action"])
            if t["state"] != "fired" or notice is None:
                continue
            ev = timer_event_id(t["id"])
            deadline_events.add(ev)
            a = arm.get((t["rule"], t["order_version"]))
            fired_at = ts(t["fired_at"])
            # still armed now: a notice is due. Cancelled after it fired: the notifier may have
            # seen the cancelling transition first and kept quiet (either is right). Cancelled
            # before it fired (a stale deadline): nobody may be notified.
            held = a is not None and a.status != "cancelled"
            stale = a is None or (a.status == "cancelled" and a.cancelled_at <= fired_at)
            got = [m for m in by_event.get(ev, []) if m["template_key"] == notice[0]]
            # a stale deadline's SMS the notifier withdrew before sending is no notification
            live = [m for m in got if m.get("status") != "cancelled"]
            if held and not got:
                rep.add("lost", "deadline_notice_missing", oid, f"{t['rule']} fired {t['fired_at']}: no {notice[0]}")
            elif stale and live:
                rep.add("invariant", "stale_deadline_notified", oid,
                        f"{t['rule']} fired {t['fired_at']} after {a.cancelled_by if a else '?'} at "
                        f"{a.cancelled_at.isoformat() if a else '?'}: "
                        + ", ".join(f"{m['recipient'].split(':')[0]} {m.get('status')}" for m in live))
        # order-action notices: per template, one event per triggering timeline entry
        expected = Counter(tpl for e in timeline for tpl, _aud in ACTION_NOTICES.get(e["action"], []))
        # every arrival in completed (whatever the action: arbitration, offline exchange...) tells the customer
        expected["completed"] += sum(1 for e in timeline if e["to_state"] == "completed" != e["from_state"])
        actual: dict[str, set[str]] = defaultdict(set)
        for m in o.messages:
            if m["event_id"] not in deadline_events:
                actual[m["template_key"]].add(m["event_id"])
        for tpl in set(expected) | set(actual):
            if tpl in ("ship_back_reminder", "merchant_reminder", "escalation"):
                if actual.get(tpl):
                    rep.add("invariant", "notice_without_trigger", oid, f"{tpl}: events {sorted(actual[tpl])}")
                continue
            n_exp, n_got = expected.get(tpl, 0), len(actual.get(tpl, ()))
            if n_got < n_exp:
                rep.add("lost", "notice_missing", oid, f"{tpl}: {n_got} event(s), history triggers {n_exp}")
            elif n_got > n_exp:
                rep.add("duplicated", "notice_extra", oid, f"{tpl}: {n_got} event(s), history triggers {n_exp}")
        for ev, msgs in by_event.items():
            customers = {m["recipient"].split(":")[0] for m in msgs if m["audience"] == "customer"}
            merchants = {m["recipient"].split(":")[0] for m in msgs if m["audience"] == "merchant"}
            for aud, channels in (("customer", customers), ("merchant", merchants)):
                # a merchant whose contact is a landline or hotline gets the in-site message only
                if channels and channels != {"sms", "inbox"} and not (aud == "merchant" and channels == {"inbox"}):
                    rep.add("lost", "notice_channel_missing", oid, f"event {ev} to the {aud}: only {sorted(channels)}")

    def _refunds(self, o: OrderData, timeline: list[dict], rep: Report, goods: Decimal) -> None:
        oid = o.id
        amounts = []
        for e in timeline:
            det = e.get("details") or {}
            if e["action"] in REFUNDS or (e["action"] == "arbitration.decide" and det.get("outcome") == "refund"):
                amounts.append((e["action"], dec(det.get("amount")) or Decimal(0), det))
        paid_out = [e for e in timeline if e["action"] == "refund.paid"]
        if len(paid_out) > 1:
            rep.add("duplicated", "refund_paid_twice", oid, f"{len(paid_out)} payouts confirmed")
        if sum(1 for a, _x, _d in amounts if a.startswith("system.")) > 1:
            rep.add("duplicated", "system_refund_twice", oid, str([a for a, _x, _d in amounts]))
        if not amounts:
            return
        freight = max(dec(det.get("freight_to_return")) or Decimal(0) for _a, _x, det in amounts)
        total = sum(x for _a, x, _d in amounts)
        if total > goods + freight:
            rep.add("invariant", "refund_above_paid", oid,
                    f"refunds {[(a, str(x)) for a, x, _d in amounts]} total {total} > paid {goods} + freight {freight}")

    # -------------------------------------------------------------- platform-wide
    def check_ledgers(self, orders: list[OrderData], penalties: list[dict], billing: list[dict],
                      merchants: set[str], consultations: dict, rep: Report) -> None:
        mine = [ln for ln in penalties if ln["merchant_id"] in merchants]
        # 48 h penalties: charged exactly for the orders the history earns them
        charged = Counter(oid for ln in mine if ln["kind"] == "unprocessed_48h" for oid in ln["order_ids"])
        advance = Counter(oid for ln in mine if ln["kind"] == "advance_compensation" for oid in ln["order_ids"])
        late_lines = {(ln["merchant_id"], ln["week"]): ln for ln in mine if ln["kind"] == "late_audit"}
        late: dict[tuple[str, str], list[str]] = defaultdict(list)
        for o in orders:
            oid, d = o.id, o.detail
            tl = sorted(d["timeline"], key=lambda e: e["version"])
            created = ts(d["created_at"])
            audit = next((e for e in tl if e["action"].startswith("audit.")), None)
            if audit and ts(audit["at"]) - created > H12:
                late[(d["merchant_id"], week_of(ts(audit["at"])))].append(oid)
            received = next((ts(e["at"]) for e in tl if e["action"] == "register_receipt"), None)
            if received is not None:
                done = next((ts(e["at"]) for e in tl if (e["action"].startswith("process.") or
                                                         e["action"] == "arbitration.decide" or
                                                         e["to_state"] in TERMINAL) and ts(e["at"]) >= received), None)
                # Undecided: owed once 48 h passed (``may_charge``), and surely charged by now
                # once the timers had GRACE to fire (``earned``). A charge inside that grace is right.
                earned = (done - received > H48) if done else (self.now - received > H48 + GRACE)
                may_charge = (done - received > H48) if done else (self.now - received > H48)
                fired = [t for t in o.timers if self.rule_action.get(t["rule"]) == "penalty" and t["state"] == "fired"]
                if earned and not charged[oid]:
                    why = "; ".join(f"{t['rule']} {t['state']} due {t['due_at']} cancelled {t['cancelled_at']} by "
                                    f"{t['cancelled_by']}" for t in o.timers
                                    if self.rule_action.get(t["rule"]) == "penalty")
                    rep.add("lost", "penalty_not_charged", oid,
                            f"received {received.isoformat()}, decided {done and done.isoformat()}: {why}")
                elif charged[oid] and not may_charge:
                    rep.add("invariant", "penalty_unearned", oid,
                            f"received {received.isoformat()}, decided {done and done.isoformat()}, fired "
                            f"{[t['fired_at'] for t in fired]}")
            elif charged[oid]:
                rep.add("invariant", "penalty_unearned", oid, "charged but never received")
            if charged[oid] > 1:
                rep.add("duplicated", "penalty_twice", oid, f"{charged[oid]} lines")
            adv = sum(1 for e in tl if e["action"] == "system.advance_compensation")
            if advance[oid] != min(adv, 1):
                cls = "lost" if advance[oid] < adv else ("duplicated" if adv else "invariant")
                rep.add(cls, "advance_compensation_line", oid, f"{adv} in history, {advance[oid]} line(s) charged")
        for key, ids in late.items():
            counts = len(ids) // 10
            ln = late_lines.pop(key, None)
            got = ln["count"] if ln else 0
            if got != counts or (ln and sorted(ln["order_ids"]) != sorted(ids)):
                rep.add("invariant", "late_audit_line", None,
                        f"{key}: {len(ids)} late audits → {counts} count(s); ledger {ln}")
        for key, ln in late_lines.items():
            rep.add("invariant", "late_audit_line", None, f"{key}: ledger charges {ln['count']}, history none")
        # bills: every on-behalf order and every billable consultation, once
        refs = Counter(ref for ln in billing if ln["manufacturer_id"] in merchants for ref in ln["refs"])
        on_behalf = {o.id for o in orders if o.detail.get("on_behalf")}
        for oid in on_behalf:
            if refs[oid] == 0:
                rep.add("lost", "order_fee_not_billed", oid, "served on the merchant's behalf, not billed")
        billed_orders = {r for ln in billing if ln["item"] == "service_order" and ln["manufacturer_id"] in merchants
                         for r in ln["refs"]}
        for oid in billed_orders - on_behalf:
            rep.add("invariant", "order_fee_unearned", oid, "billed, not on behalf")
        for cid, c in consultations.items():
            should = c.billable or c.transferred
            if should and refs[cid] == 0:
                rep.add("lost", "consultation_not_billed", None,
                        f"{c.consultation_id} (decision {cid}, {c.reason}, transferred={c.transferred})")
            if not should and refs[cid]:
                rep.add("invariant", "consultation_billed_unearned", None, f"{c.consultation_id} ({c.reason})")
        for ref, n in refs.items():
            if n > 1:
                rep.add("duplicated", "billed_twice", None, f"{ref}: {n} times")

    def check_parked(self, parked: dict[str, list[dict]], poisons: list[dict], rep: Report) -> None:
        """No parked message but the poisoned ones; each poison parked by every consumer of its topic."""
        for service, items in parked.items():
            for it in items:
                marker = next((p["marker"] for p in poisons if p["marker"] in it["payload"]), None)
                if marker is None:
                    rep.add("invariant", "message_parked", None,
                            f"{service} {it['consumer']} {it['topic']}[{it['partition']}]@{it['offset']}: "
                            f"{it['error'][:200]} payload {it['payload'][:200]}")
                else:
                    rep.parked_poison += 1
        for p in poisons:
            for service in p["consumers"]:
                if not any(p["marker"] in it["payload"] for it in parked.get(service, [])):
                    rep.add("lost", "poison_not_parked", None, f"{p['marker']} on {p['topic']} not parked by {service}")
