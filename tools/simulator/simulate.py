"""The Double-11 simulation: a seeded marketplace (tools/workload) played through the real
APIs of a running platform over simulated days, the virtual clock moved one step at a time
so every deadline fires on its own, weeks closed as they end, and the whole run observed
from the event stream (tools/simulator/tap.py) and read back from the services' APIs for
the report (tools/simulator/report.py). docs/simulator.md explains it.

A step (``tick_s`` of virtual time, an hour by default):
1. the applications the Double-11 curve puts in that hour and the consultations that come
   with them (scenario.py), plus every due step of the open orders (audits, shipments,
   receipts, decisions, ratings, arbitration…: the workload's model);
2. the virtual clock moves to the step's end; deadlines due in between fire (auto-refund,
   advance compensation, reminders, escalations, auto-close, auto-confirm, penalties);
3. when a Monday 00:00 (Beijing) has passed, the week before is closed (KPI flags and
   disqualifications), once the KPI consumer has caught up;
4. ``speed`` (virtual seconds per real second; 0: as fast as the platform answers) paces it.

Afterwards it waits until every outbox is empty and every consumer group has caught up,
then reads the figures: orders by state (orders), penalties, scorecards and service-express
scores (kpi), the deadlines that fired (the sla.events stream), the routing decisions."""
from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shared.clock import BEIJING
from shared.topics import ORDER_EVENTS, ROUTING_EVENTS, SLA_EVENTS
from tools.simulator.display import Progress
from tools.simulator.scenario import Plan, ScenarioConfig, double11_start, mondays_between, plan
from tools.simulator.tap import LAG_OF, EventTap, LagProbe, parse_ts, quantile
from tools.workload import Api, Config, Workload
from tools.workload.api import ApiError, Unavailable
from tools.workload.model import TERMINAL

SERVICES = ("orders", "consultation-routing", "sla-timer", "kpi", "notifier")
OPEN_STATES = ("pending_claim", "pending_audit", "awaiting_customer_feedback", "awaiting_return_shipment",
               "awaiting_receipt", "pending_process", "provisionally_completed", "unresolved", "arbitration")


@dataclass
class SimConfig:
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    speed: float = 0.0  # virtual seconds per real second (0: as fast as the platform answers)
    concurrency: int = 8
    quiesce_timeout_s: float = 120.0


@dataclass
class Observed:
    """What the event stream showed, kept for the report (virtual times, epoch seconds).
    Delivery is at least once: each event is kept once, by its key (order and version, the
    fired timer's event id, the decision id)."""

    created: dict[str, float] = field(default_factory=dict)  # order id -> created at
    merchant_of: dict[str, str] = field(default_factory=dict)
    by_version: dict[tuple[str, int], tuple[float, str, int, str, str, str]] = field(default_factory=dict)
    # (order id, version) -> (occurred at, order id, version, from state, to state, action)
    rated: dict[tuple[str, int], tuple[int, int | None]] = field(default_factory=dict)  # -> (stars, recommend)
    fired_by_id: dict[str, tuple[float, str, str, str]] = field(default_factory=dict)
    # event id -> (fired at, order id, rule, action)
    decided: dict[str, tuple[str, str, str | None, str]] = field(default_factory=dict)
    # decision id -> (target, reason, manufacturer id, customer id)
    transferred: set[str] = field(default_factory=set)  # decision ids
    billable: set[str] = field(default_factory=set)  # consultation (decision) ids

    @property
    def transitions(self) -> list[tuple[float, str, int, str, str, str]]:
        return list(self.by_version.values())

    @property
    def ratings(self) -> list[tuple[int, int | None]]:
        return list(self.rated.values())

    @property
    def fired(self) -> list[tuple[float, str, str, str]]:
        return list(self.fired_by_id.values())


class Simulation:
    def __init__(self, config: SimConfig, platform, *, log=print, progress: Progress | None = None) -> None:
        self.cfg = config
        self.platform = platform
        self.say = log
        self.progress = progress
        self.plan: Plan = plan(config.scenario)
        self.merchant_ids = {m.id for m in self.plan.merchants}
        self.seen = Observed()
        self.closed_weeks: list[dict] = []
        self.start_virtual = 0.0
        self.tick = 0
        self.real_started = 0.0
        self.api: Api | None = None
        self.workload: Workload | None = None
        self.tap: EventTap | None = None
        self.probe: LagProbe | None = None

    # ------------------------------------------------------------------ events
    def _on_event(self, topic: str, env: dict, ts: float) -> None:
        d, typ, s = env["data"], env.get("type"), self.seen
        if topic == ORDER_EVENTS:
            if typ == "service_order.created":
                if d.get("merchant_id") in self.merchant_ids:
                    s.created[d["order_id"]] = parse_ts(d["created_at"])
                    s.merchant_of[d["order_id"]] = d["merchant_id"]
            elif typ == "service_order.transitioned" and d.get("order_id") in s.created:
                key = (d["order_id"], d["version"])
                s.by_version[key] = (parse_ts(d["occurred_at"]), d["order_id"], d["version"], d["from_state"],
                                     d["to_state"], d["action"])
                if d["action"] == "rate":
                    det = d.get("details") or {}
                    s.rated[key] = (int(det.get("stars", 0)), det.get("recommend"))
        elif topic == SLA_EVENTS:
            if typ == "sla.deadline_fired":
                s.fired_by_id[env["id"]] = (parse_ts(d["fired_at"]), d["order_id"], d["rule"], d["action"])
        elif topic == ROUTING_EVENTS:
            if typ == "routing.decided":
                s.decided[d["decision_id"]] = (d["target"], d["reason"], d.get("manufacturer_id"),
                                               d.get("customer_id") or "")
            elif typ == "routing.transferred":
                s.transferred.add(d["decision_id"])
            elif typ == "routing.billable_consultation":
                s.billable.add(d["consultation_id"])

    # ------------------------------------------------------------------ run
    async def run(self) -> dict:
        sc = self.cfg.scenario
        p = self.platform
        self.real_started = time.monotonic()
        self.api = Api(p.urls, max_connections=max(16, self.cfg.concurrency * 2))
        op = p.operator["client_id"]
        self.api.add_client(op, p.operator["client_secret"])
        self.workload = Workload(self.api, op, Config(
            seed=sc.seed, merchants=sc.merchants, orders_per_round=0, consultations_per_round=0,
            concurrency=self.cfg.concurrency, tag=sc.id_tag), log=self.say)
        stop = asyncio.Event()
        self.tap = EventTap(p.bootstrap, (ORDER_EVENTS, SLA_EVENTS, ROUTING_EVENTS), on_event=self._on_event)
        self.probe = LagProbe(p.bootstrap, self.tap, every_s=0.5)
        watchers = [asyncio.create_task(self.tap.run(stop)), asyncio.create_task(self.probe.run(stop))]
        try:
            await self.workload.setup()
            await self._to_double11()
            await self._play()
            quiet = await self._quiesce()
            figures = await self._figures(quiet)
        finally:
            stop.set()
            await asyncio.gather(*watchers, return_exceptions=True)
            await self.api.close()
        return figures

    async def _to_double11(self) -> None:
        """Move the virtual clock to the next 11-11 00:00 Beijing (a fresh platform: almost a year)."""
        op = self.workload.op
        await self.api.read_clock(op, SERVICES[2:] + ("orders",))
        self.start_virtual = double11_start(self.api.clock.now() + 60)
        await self.workload.advance(self.start_virtual - self.api.clock.now())
        self.workload.clock_history.clear()
        self.say(f"virtual clock at {_bj(self.api.clock.now())} (Beijing); {len(self.plan.arrivals)} applications "
                 f"over {sc_days(self.cfg.scenario)} days, {self.cfg.scenario.ticks} steps of "
                 f"{self.cfg.scenario.tick_s / 60:.0f} min")

    async def _play(self) -> None:
        sc, w = self.cfg.scenario, self.workload
        mondays = mondays_between(self.start_virtual, self.start_virtual + sc.ticks * sc.tick_s)
        if self.cfg.speed > 0:
            w.cfg.round_min_s = sc.tick_s / self.cfg.speed
        for k in range(sc.ticks):
            self.tick = k
            await w.round(orders=self.plan.orders_per_tick[k], consultations=self.plan.consultations_per_tick[k],
                          step_s=sc.tick_s)
            while mondays and self.api.clock.now() >= datetime(mondays[0].year, mondays[0].month, mondays[0].day,
                                                                tzinfo=BEIJING).timestamp():
                await self._close_week(mondays.pop(0) - timedelta(days=7))
            self._show()
        self.tick = sc.ticks

    async def _close_week(self, monday) -> None:
        await self._wait_caught_up(("kpi.facts",), 30.0)
        try:
            r = await self.api.ok("kpi", "POST", f"/v1/periods/{monday.isoformat()}/close", as_=self.workload.op)
        except (ApiError, Unavailable) as exc:
            self.say(f"closing the week of {monday}: {exc}")
            return
        self.closed_weeks.append({"week": r["week"], "flagged": sorted(x for x in r["flagged"] if x in self.merchant_ids),
                                  "disqualified": sorted(x for x in r["disqualified"] if x in self.merchant_ids)})
        self.say(f"week of {monday} closed: {len(r['flagged'])} flagged, {len(r['disqualified'])} disqualified")

    async def _wait_caught_up(self, groups: tuple[str, ...], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.probe.backlog.get(g, 0) == 0 and self.probe.samples.get(g) for g in groups):
                return True
            await asyncio.sleep(0.25)
        return False

    async def _quiesce(self) -> dict:
        """Every service on the last virtual time, every outbox empty and every consumer
        group at the end of what the tap read — twice in a row, a second apart."""
        op = self.workload.op
        target = self.api.clock.offset_s
        deadline = time.monotonic() + self.cfg.quiesce_timeout_s
        calm, last = 0, {}
        while time.monotonic() < deadline:
            try:
                clocks = await asyncio.gather(*(self.api.ok(s, "GET", "/admin/clock", as_=op) for s in SERVICES))
                boxes = await asyncio.gather(*(self.api.ok(s, "GET", "/admin/outbox", as_=op) for s in SERVICES))
                offsets = {s: float(c["offset_seconds"]) for s, c in zip(SERVICES, clocks)}
                outbox = {s: b["pending"] for s, b in zip(SERVICES, boxes)}
            except (ApiError, Unavailable) as exc:
                last, calm = {"error": str(exc)[:200]}, 0
                await asyncio.sleep(1)
                continue
            behind = {s: round(target - o) for s, o in offsets.items() if o < target - 1}
            last = {"outbox": outbox, "backlog": dict(self.probe.backlog), "clock_behind": behind}
            calm = calm + 1 if not behind and not any(outbox.values()) and self.probe.caught_up() else 0
            self._show()
            if calm >= 2:
                return last
            await asyncio.sleep(1)
        self.say(f"not quiet after {self.cfg.quiesce_timeout_s:.0f}s: {last}")
        return last

    # ------------------------------------------------------------------ progress
    def snapshot(self) -> dict:
        w = self.workload
        elapsed = max(1e-6, time.monotonic() - self.real_started)
        return {"sim_time": _bj(self.api.clock.now()) if self.api else "",
                "tick": self.tick, "ticks": self.cfg.scenario.ticks,
                "orders": len(w.tracks) if w else 0,
                "states": dict(Counter(t.state for t in w.tracks.values())) if w else {},
                "actions": w.stats["actions"] if w else 0, "actions_per_s": (w.stats["actions"] if w else 0) / elapsed,
                "deadlines_fired": len(self.seen.fired_by_id),
                "lag_s": {svc: round(self.probe.lag_now(svc), 2) for svc in LAG_OF} if self.probe else {},
                "errors": w.stats["errors"] if w else 0, "elapsed_s": elapsed}

    def _show(self) -> None:
        if self.progress is not None:
            self.progress.update(self.snapshot())

    # ------------------------------------------------------------------ figures
    async def _figures(self, quiet: dict) -> dict:
        api, op, sc, s = self.api, self.workload.op, self.cfg.scenario, self.seen
        w = self.workload
        ours = set(w.tracks)
        # orders by state, as the orders service counts them (one search per merchant)
        by_state: Counter = Counter()
        for m in self.plan.merchants:
            r = await api.ok("orders", "GET", "/v1/platform/service-orders", as_=op,
                             params={"merchant_id": m.id, "limit": 1})
            by_state.update({k: v for k, v in r["counts_by_state"].items() if v})
        # the time series, by step of virtual time
        n = sc.ticks
        start = self.start_virtual

        def bucket(t: float) -> int:
            return min(n - 1, max(0, int((t - start) // sc.tick_s)))

        opened, closed = [0] * n, [0] * n
        for oid, at in s.created.items():
            opened[bucket(at)] += 1
        state = {oid: "pending_claim" for oid in s.created}
        ended: set[str] = set()
        backlog = {st: [0] * n for st in OPEN_STATES}
        actions = [0] * n
        events = sorted(s.transitions)
        created_sorted = sorted(s.created.items(), key=lambda kv: kv[1])
        alive: dict[str, str] = {}
        ci = ei = 0
        for k in range(n):
            edge = start + (k + 1) * sc.tick_s
            while ci < len(created_sorted) and created_sorted[ci][1] < edge:
                alive[created_sorted[ci][0]] = "pending_claim"
                ci += 1
            while ei < len(events) and events[ei][0] < edge:
                at, oid, _v, _from, to, _a = events[ei]
                ei += 1
                actions[k] += 1
                state[oid] = to
                alive[oid] = to
                if to in TERMINAL and oid not in ended:
                    ended.add(oid)
                    closed[k] += 1
            counts = Counter(alive.values())
            for st in OPEN_STATES:
                backlog[st][k] = counts.get(st, 0)
        fired_by_rule = Counter(rule for _at, oid, rule, _a in s.fired if oid in s.created)
        fired_series = [0] * n
        for at, oid, _rule, _a in s.fired:
            if oid in s.created:
                fired_series[bucket(at)] += 1
        effects = Counter(a for _at, _o, _v, _f, _t, a in s.transitions if a.startswith("system."))
        # penalties, scorecards, service-express scores, billing (kpi)
        pen_kind: dict[str, dict] = defaultdict(lambda: {"lines": 0, "orders": 0, "amount": 0.0})
        pen_merchant: dict[str, float] = defaultdict(float)
        for m in self.plan.merchants:
            for line in (await api.ok("kpi", "GET", "/v1/penalties", as_=op, params={"merchant_id": m.id}))["lines"]:
                k = pen_kind[line["kind"]]
                k["lines"] += 1
                k["orders"] += len(line.get("order_ids") or []) or line.get("late_orders", 0)
                k["amount"] += float(line["amount"])
                pen_merchant[m.id] += float(line["amount"])
        weeks = sorted({d - timedelta(days=d.weekday()) for d in _days(start, start + n * sc.tick_s)})
        scores: dict[str, dict[str, float | None]] = {}
        se_scores: dict[str, dict[str, float | None]] = {}
        for wk in weeks:
            r = await api.ok("kpi", "GET", "/v1/scorecards/weekly", as_=op, params={"week": wk.isoformat()})
            scores[wk.isoformat()] = {c["merchant_id"]: _f(c["score"]) for c in r["scorecards"]
                                      if c["merchant_id"] in self.merchant_ids}
            r = await api.ok("kpi", "GET", "/v1/service-express/scores", as_=op, params={"week": wk.isoformat()})
            se_scores[wk.isoformat()] = {x["manufacturer_id"]: _f(x["after_sales"]) for x in r["scores"]
                                         if x["manufacturer_id"] in self.merchant_ids}
        billing = 0
        for m in self.plan.merchants:
            r = await api.ok("kpi", "GET", "/v1/billing", as_=op, params={"manufacturer_id": m.id})
            billing += len(r["lines"])
        # routing: the decisions the storefront's consultations got (routing.events)
        mine = {d: v for d, v in s.decided.items() if v[3].startswith(sc.id_tag)}
        by_target = Counter(v[0] for v in mine.values())
        by_reason = Counter(f"{v[0]}:{v[1]}" for v in mine.values())
        # ratings and the NPS question
        answers = [r for _s, r in s.ratings if r is not None]
        nps = None
        if answers:
            nps = round(100 * (sum(a >= 9 for a in answers) - sum(a <= 6 for a in answers)) / len(answers), 1)
        arbitration = Counter(a for _at, _o, _v, _f, _t, a in s.transitions if a.startswith("arbitration."))
        lag = {}
        for svc in LAG_OF:
            v = self.probe.lag_samples(svc)
            lag[svc] = {"p50_s": _r(quantile(v, 0.5)), "p99_s": _r(quantile(v, 0.99)), "max_s": _r(max(v, default=None))}
        elapsed = time.monotonic() - self.real_started
        merchants = []
        per_merchant = Counter(s.merchant_of[o] for o in s.created)
        for m in self.plan.merchants:
            merchants.append({"id": m.id, "mode": m.effective_mode, "quality": m.quality,
                              "orders": per_merchant.get(m.id, 0), "penalties_cny": round(pen_merchant.get(m.id, 0.0), 2)})
        return {
            "scenario": {"seed": sc.seed, "merchants": sc.merchants, "orders_planned": len(self.plan.arrivals),
                         "days": sc.days, "tick_minutes": sc.tick_s / 60, "speed": self.cfg.speed,
                         "start_beijing": _bj(start), "plan_digest": self.plan.digest(), "tag": sc.id_tag},
            "run": {"real_seconds": round(elapsed, 1), "steps": n, "actions": w.stats["actions"],
                    "actions_per_s": round(w.stats["actions"] / elapsed, 1), "consultations": w.stats["consultations"],
                    "workload_errors": w.stats["errors"], "first_errors": w.errors[:5],
                    "refusals": {k: v for k, v in w.stats.items() if k.startswith("refused:")},
                    "quiet": quiet, "tap_events": self.tap.read},
            "orders": {"opened": len(s.created), "applied": len(ours), "closed": sum(closed),
                       "by_state": dict(sorted(by_state.items())),
                       "by_state_events": dict(sorted(Counter(state.values()).items()))},
            "series": {"step_hours": sc.tick_s / 3600, "opened": opened, "closed": closed, "backlog": backlog,
                       "transitions": actions, "deadlines_fired": fired_series},
            "deadlines": {"fired_total": sum(fired_by_rule.values()), "fired_by_rule": dict(fired_by_rule.most_common()),
                          "effects": dict(effects.most_common())},
            "penalties": {"by_kind": {k: {**v, "amount": round(v["amount"], 2)} for k, v in sorted(pen_kind.items())},
                          "total_cny": round(sum(v["amount"] for v in pen_kind.values()), 2)},
            "scores": {"pop_weekly": scores, "service_express_after_sales": se_scores},
            "weeks_closed": self.closed_weeks,
            "routing": {"decisions": len(mine), "by_target": dict(by_target), "by_reason": dict(by_reason.most_common()),
                        "transferred": len(s.transferred & set(mine)), "billable": len(s.billable & set(mine)),
                        "billing_lines": billing},
            "ratings": {"count": len(s.ratings), "stars": dict(sorted(Counter(st for st, _r in s.ratings).items())),
                        "nps_answers": len(answers), "nps": nps},
            "arbitration": dict(arbitration),
            "lag": lag,
            "merchants": merchants,
        }


def sc_days(sc: ScenarioConfig) -> str:
    return f"{sc.days:g}"


def _bj(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _days(start: float, end: float):
    d = datetime.fromtimestamp(start, timezone.utc).astimezone(BEIJING).date()
    last = datetime.fromtimestamp(end, timezone.utc).astimezone(BEIJING).date()
    while d <= last:
        yield d
        d += timedelta(days=1)


def _f(v) -> float | None:
    return None if v is None else float(v)


def _r(v) -> float | None:
    return None if v is None else round(v, 3)


async def run_simulation(config: SimConfig, platform, *, log=print, progress: Progress | None = None,
                         out_dir: Path | None = None) -> dict:
    """Run it against ``platform`` (started) and write the report when ``out_dir`` is given."""
    sim = Simulation(config, platform, log=log, progress=progress)
    figures = await sim.run()
    if out_dir is not None:
        from tools.simulator.report import write_report

        write_report(figures, out_dir)
    return figures
