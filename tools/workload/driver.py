"""Drive the marketplace of ``model`` through the platform's real APIs.

``Workload.setup()`` onboards it (API clients, merchants with catalogues and staff,
manufacturers enrolled in consultation routing with their SKUs); ``Workload.run()`` then
plays rounds until told to stop. A round:

1. reads the virtual clock and every order's state (one paged search);
2. opens new applications (storefront, ``Idempotency-Key``);
3. takes each open order's next step if its actor is due (``model.next_step``): audits,
   shipments, receipts, processing decisions, confirmations, ratings, arbitration requests
   and decisions, exchange shipments, refund payouts… (``If-Match`` on every order action);
4. asks consultation routing where a few consultations go, as the storefront (and now and
   then a manufacturer transfers one back to the platform);
5. moves the virtual clock forward by the round's step (15 minutes to 9 days), so the
   deadlines fire on their own: escalations, reminders, auto-refunds, advance
   compensation, auto-close, auto-confirm, penalties.

What it did is recorded for checking: every order action the platform acknowledged
(``acked``), every consultation routing answered (``consultations``) and transfer made.
"""
from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from tools.workload import model
from tools.workload.api import Api, ApiError, Unavailable
from tools.workload.model import D, H, Merchant, Step, Track
from shared.retry import Backoff

# clock steps of a round (seconds) and their weights
CLOCK_STEPS = ((15 * 60, 2), (1 * H, 4), (3 * H, 4), (8 * H, 3), (1 * D, 3), (3 * D, 2), (9 * D, 1))
ORDER_PATH = {"customer": "/v1/storefront/service-orders", "merchant": "/v1/merchant/service-orders",
              "platform": "/v1/platform/service-orders"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def parse_ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


@dataclass
class Consultation:
    consultation_id: str
    decision_id: str
    manufacturer_id: str | None
    target: str
    reason: str
    billable: bool
    transferred: bool = False


@dataclass
class Config:
    seed: int = 1
    merchants: int = 8
    orders_per_round: int = 6
    consultations_per_round: int = 4
    concurrency: int = 8
    max_orders: int = 0  # 0: no limit
    round_min_s: float = 0.0  # pacing: a round lasts at least this long (real seconds)
    clock_scale: float = 1.0  # multiplies every clock step (2: twice as many virtual days per round)
    tag: str = ""  # prefix of every id the workload creates (default: w<seed>)
    # where orders' states come from: "search" (the paged search each round) or "events"
    # (the caller feeds them to ``observe``, e.g. from the orders.events topic)
    refresh: str = "search"


@dataclass
class Acked:
    order_id: str
    version: int
    kind: str
    at: float = 0.0  # wall-clock time the answer arrived (for end-to-end latencies)


class Workload:
    def __init__(self, api: Api, operator_id: str, config: Config, log=print,
                 on_ack: Callable[[Acked], None] | None = None) -> None:
        self.api = api
        self.on_ack = on_ack  # called with every acknowledged order action
        self.op = operator_id
        self.cfg = config
        self.tag = config.tag or f"w{config.seed}"
        self.log = log
        self.shops: list[Merchant] = []
        self.tracks: dict[str, Track] = {}
        self.acked: list[Acked] = []
        self.consultations: dict[str, Consultation] = {}
        self.stats: Counter = Counter()
        self.errors: list[str] = []  # unexpected refusals (a workload or platform bug), first ones kept
        self.rounds = 0
        self.clock_history: list[tuple[float, float]] = []  # (wall time answered, offset after) per advance
        self.next_order = 0
        self.next_consultation = 0
        self.storefront = f"{self.tag}-storefront"
        self.arbitrator = f"{self.tag}-arbitrator"
        self._sem = asyncio.Semaphore(config.concurrency)
        # Open orders by the virtual time they are looked at next (``_due_steps``): a heap of
        # (time, sequence, order id); an order's live entry is the one whose sequence
        # ``_looks`` holds (an order indexed again leaves its older entry behind, skipped when
        # popped). Orders with a call in flight are in ``_busy`` and indexed when it ends.
        self._heap: list[tuple[float, int, str]] = []
        self._looks: dict[str, int] = {}
        self._seq = 0
        self._looked_at = 0.0  # the virtual time of the last look: an order that moved is looked at from then
        self._busy: set[str] = set()

    # ------------------------------------------------------------------ onboarding
    async def setup(self) -> None:
        api, op = self.api, self.op
        for cid, role in ((self.storefront, "storefront"), (self.arbitrator, "arbitrator")):
            c = await api.ok("orders", "POST", "/v1/platform/clients", as_=op,
                             json={"client_id": cid, "role": role, "name": f"workload {role}"})
            api.add_client(c["client_id"], c["client_secret"])
        self.shops = model.merchants(self.cfg.seed, self.cfg.merchants, self.tag)
        for m in self.shops:
            body = {"id": m.id, "name": f"Shop {m.id}", "kind": m.kind, "mode": m.mode,
                    "contact_phone": m.contact_phone, "return_address": f"{m.id} warehouse, 1 Return Rd",
                    "served_by_platform": m.served_by_platform,
                    "skus": [{"sku": s.sku, "category": s.category, "price": s.price} for s in m.skus]}
            r = await api.ok("orders", "POST", "/v1/platform/merchants", as_=op, json=body)
            m.main = r["main_account"]["client_id"]
            api.add_client(m.main, r["main_account"]["client_secret"])
            for login, perms in (("audit", ["audit"]), ("proc", ["process"])):
                st = await api.ok("orders", "POST", "/v1/merchant/staff", as_=m.main, json={
                    "login": login, "name": f"{login} of {m.id}", "permissions": perms, "categories": m.categories})
                api.add_client(st["credentials"]["client_id"], st["credentials"]["client_secret"])
                if login == "audit":
                    m.auditor = st["staff"]["id"]
                else:
                    m.processor = st["staff"]["id"]
            if m.enrolled:
                await api.ok("consultation-routing", "PUT", f"/v1/manufacturers/{m.id}/enrollment", as_=op, json={
                    "name": f"Maker {m.id}", "categories": m.categories, "im_queue_id": f"q-{m.id}",
                    "phone_extension": f"{8000 + len(self.shops)}", "serve_non_working_days": True})
        csv = "sku,manufacturer_id,category\n" + "".join(
            f"{s.sku},{m.id},{s.category}\n" for m in self.shops if m.enrolled for s in m.skus)
        r = await api.ok("consultation-routing", "POST", "/v1/catalogue/skus", as_=op, content=csv.encode(),
                         headers={"content-type": "text/csv"})
        if r.get("rejected"):
            raise RuntimeError(f"routing refused catalogue rows: {r['errors'][:3]}")
        await self._report_queues()
        await api.read_clock(op)
        self.log(f"onboarded {len(self.shops)} merchants (" + ", ".join(
            f"{m.id}:{m.effective_mode}/{m.quality}" for m in self.shops) + ")")

    async def _report_queues(self) -> None:
        await asyncio.gather(*(
            self.api.ok("consultation-routing", "PUT", f"/v1/queues/{m.id}/state", as_=self.op,
                        json={"agents_online": m.agents, "queue_length": 0, "expected_wait_s": 10})
            for m in self.shops if m.enrolled))

    # ------------------------------------------------------------------ rounds
    async def run(self, stop: asyncio.Event, *, rounds: int = 0) -> None:
        while not stop.is_set() and (not rounds or self.rounds < rounds):
            try:
                await self.round(stop)
            except Unavailable as exc:  # the whole platform away for a long while: try again
                self.stats["round_unavailable"] += 1
                self.log(f"round {self.rounds}: {exc}")
                await asyncio.sleep(1)

    async def round(self, stop: asyncio.Event | None = None, *, orders: int | None = None,
                    consultations: int | None = None, step_s: float | None = None) -> None:
        """One round; ``orders``, ``consultations`` and the clock step ``step_s`` default to the
        configuration's (the step then drawn from CLOCK_STEPS), a caller with its own
        arrival curve (the Double-11 simulator) passes them."""
        api, op = self.api, self.op
        started = asyncio.get_running_loop().time()
        r = model.rng_for(self.cfg.seed, "round", self.rounds)
        await api.read_clock(op)
        if self.cfg.refresh == "search":
            await self.refresh()
        now = api.clock.now()
        n = self.cfg.orders_per_round if orders is None else orders
        if self.cfg.max_orders:
            n = min(n, self.cfg.max_orders - self.next_order)
        jobs = [self._apply(self.next_order + k, now) for k in range(max(0, n))]
        self.next_order += max(0, n)
        jobs += [self._act(t, step) for t, step in self._due_steps(now, len(self.tracks))]
        for _ in range(self.cfg.consultations_per_round if consultations is None else consultations):
            jobs.append(self._consult(r))
        await asyncio.gather(*jobs)
        if stop is not None and stop.is_set():
            return
        if step_s is None:
            step_s = r.choices([s for s, _ in CLOCK_STEPS], [w for _, w in CLOCK_STEPS])[0] * self.cfg.clock_scale
        await self.advance(step_s)
        self.rounds += 1
        await self._report_queues()  # agents online as of the new time (reports older than a minute are stale)
        rest = self.cfg.round_min_s - (asyncio.get_running_loop().time() - started)
        if rest > 0:
            await asyncio.sleep(rest)

    # ------------------------------------------------------------------ paced load
    async def pace(self, stop: asyncio.Event, *, rate: float, virtual_per_s: float = 0.0, tick_s: float = 0.2,
                   consultations_per_s: float = 0.0, apply_share: float = 0.15, clock_every_s: float = 1.0) -> None:
        """Open-loop load at ``rate`` order actions per second (the whole-platform benchmark).
        Each tick of ``tick_s`` starts rate × tick calls spread evenly over the tick: the due
        steps of open orders first (at most ``1 - apply_share`` of them), new applications
        for the rest; the virtual clock moves ``virtual_per_s`` per real second (one advance
        every ``clock_every_s``), so deadlines fire steadily rather than in bursts. Orders'
        states come from ``observe`` (``Config.refresh="events"``) or a search every 5 s.
        A due step not started in its tick stays due; with 4 × concurrency calls in flight no
        new call starts (the platform is not keeping up, and the achieved rate shows it).

        Choosing the due steps costs O(log n) per order looked at, not a pass over every open
        order (``_due_steps``): at hundreds of actions per second the scan was the load
        generator's bottleneck."""
        loop = asyncio.get_running_loop()
        await self.api.read_clock(self.op)
        tasks: set[asyncio.Task] = set()
        clock_task: asyncio.Task | None = None
        r = model.rng_for(self.cfg.seed, "pace")
        carry = carry_c = 0.0
        last_clock = last_refresh = next_tick = loop.time()
        while not stop.is_set():
            t0 = loop.time()
            if virtual_per_s and t0 - last_clock >= clock_every_s and (clock_task is None or clock_task.done()):
                clock_task = asyncio.create_task(self.advance(virtual_per_s * (t0 - last_clock)))
                last_clock = t0
            if self.cfg.refresh == "search" and t0 - last_refresh >= 5:
                await self.refresh()
                last_refresh = loop.time()
            budget_f = rate * tick_s + carry
            budget = int(budget_f)
            carry = budget_f - budget
            room = max(0, 4 * self.cfg.concurrency - len(tasks))  # consultations in flight count too
            budget = min(budget, room)
            jobs = []
            if budget:
                now = self.api.clock.now()
                steps = self._due_steps(now, budget - max(1, round(budget * apply_share)) if budget > 1 else budget)
                jobs = [self._act(t, step) for t, step in steps]
                n = budget - len(jobs)
                if self.cfg.max_orders:
                    n = min(n, self.cfg.max_orders - self.next_order)
                jobs += [self._apply(self.next_order + k, now) for k in range(max(0, n))]
                self.next_order += max(0, n)
            cons_f = consultations_per_s * tick_s + carry_c
            carry_c = cons_f - int(cons_f)
            jobs += [self._consult(r) for _ in range(min(int(cons_f), room - budget))]
            for k, job in enumerate(jobs):
                task = asyncio.create_task(_later(k * tick_s / len(jobs), job))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            next_tick += tick_s
            if next_tick < loop.time() - tick_s:  # fell behind by more than a tick: no catching up in a burst
                next_tick = loop.time()
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, next_tick - loop.time()))
            except asyncio.TimeoutError:
                pass
        if tasks:
            await asyncio.gather(*tasks)
        if clock_task is not None:
            await clock_task

    def _due_steps(self, now: float, cap: int) -> list[tuple[Track, Step]]:
        """Up to ``cap`` orders whose actor is due at virtual time ``now``, those due longest
        first. Only orders whose time has come are looked at (``model.look``); one with
        nobody due yet is indexed again at the time someone may be, an ended one (nobody
        acts again until it moves) is not; one with a call in flight waits for its answer."""
        out: list[tuple[Track, Step]] = []
        looks = self._looks
        self._looked_at = now
        while self._heap and len(out) < cap and self._heap[0][0] <= now:  # (``_index`` may compact the heap)
            _when, seq, oid = heapq.heappop(self._heap)
            if looks.get(oid) != seq:
                continue  # indexed again since
            del looks[oid]
            if oid in self._busy:
                continue  # indexed when its call ends
            t = self.tracks[oid]
            step, wake = model.look(t, self.cfg.seed, now)
            if step is not None:
                self._busy.add(oid)  # from now: its call may start a moment later (spread over the tick)
                out.append((t, step))
            elif wake != math.inf:
                # just after ``now`` at the earliest: the float sum behind ``wake`` may round below it
                self._index(oid, max(wake, now + 1e-3))
        return out

    def _index(self, oid: str, when: float | None = None) -> None:
        """Look at order ``oid`` at virtual time ``when`` (default: at the next look)."""
        self._seq += 1
        self._looks[oid] = self._seq
        heapq.heappush(self._heap, (self._looked_at if when is None else when, self._seq, oid))
        if len(self._heap) > 4 * len(self._looks) + 1024:  # superseded entries pile up: drop them
            self._heap = [e for e in self._heap if self._looks.get(e[2]) == e[1]]
            heapq.heapify(self._heap)

    async def refresh(self) -> None:
        """Every order's state and version from the platform's search (operators see all)."""
        if not self.tracks:
            return
        seen: dict[str, dict] = {}
        offset = 0
        while True:
            page = await self.api.ok("orders", "GET", "/v1/platform/service-orders", as_=self.op,
                                     params={"limit": 200, "offset": offset})
            for item in page["items"]:
                seen[item["id"]] = item
            offset += 200
            if offset >= page["total"]:
                break
        for oid, t in self.tracks.items():
            item = seen.get(oid)
            if item is not None and item["version"] > t.version:
                self._moved(t, item["state"], item["version"], parse_ts(item["updated_at"]))

    async def advance(self, step_s: float) -> float:
        """Move the shared virtual clock ``step_s`` forward; returns the new offset."""
        target = (await self.api.read_clock(self.op)) + step_s
        offset = await self.api.advance_clock_to(self.op, target)
        self.clock_history.append((time.time(), offset))
        self.stats["clock_jumps"] += 1
        self.stats["virtual_seconds"] += step_s
        return offset

    def observe(self, order_id: str, state: str, version: int, at: float) -> None:
        """What the platform did to an order (``Config.refresh="events"``: the caller reads
        the orders.events topic); unknown orders (another workload's) are ignored."""
        t = self.tracks.get(order_id)
        if t is not None and version > t.version:
            self._moved(t, state, version, at)

    def _ack(self, order_id: str, version: int, kind: str) -> None:
        a = Acked(order_id, version, kind, time.time())
        self.acked.append(a)
        if self.on_ack is not None:
            self.on_ack(a)

    def _moved(self, t: Track, state: str, version: int, at: float) -> None:
        if t.id not in self._busy:
            self._index(t.id)  # a new state: its actors' delays start again (after a call: indexed when it ends)
        if state != t.state:
            t.state, t.entered_at, t.entered_version = state, at, version
            if state == "refunded_by_system":
                t.refund_to_pay = True
        t.version = max(t.version, version)

    # ------------------------------------------------------------------ applications
    async def _apply(self, index: int, now: float) -> None:
        plan = model.order_plan(self.cfg.seed, index, self.shops, self.tag)
        body = plan.application(iso(now - plan.delivered_days_ago * D))
        async with self._sem:
            try:
                r = await self.api.call("orders", "POST", "/v1/storefront/service-orders", as_=self.storefront,
                                        customer=plan.customer_id, json=body,
                                        headers={"Idempotency-Key": plan.idempotency_key})
            except Unavailable as exc:
                self._error(f"apply {index}: {exc}")
                return
        if r.status_code not in (200, 201):
            self._error(f"apply {index}: {r.status_code} {r.text[:200]}")
            return
        o = r.json()
        self.tracks[o["id"]] = Track(plan=plan, id=o["id"], state=o["state"], version=o["version"],
                                     entered_at=parse_ts(o["created_at"]))
        self._index(o["id"])
        self._ack(o["id"], 1, "apply")
        self.stats["applications"] += 1
        self.stats["actions"] += 1

    # ------------------------------------------------------------------ order actions
    def _who(self, t: Track, actor: str) -> tuple[str, str | None, str]:
        """(client id, X-Customer-Id, path prefix) of the step's actor."""
        m = t.plan.merchant
        if actor == "customer":
            return self.storefront, t.plan.customer_id, ORDER_PATH["customer"]
        if actor == "operator":
            return self.op, None, ORDER_PATH["platform"]
        if actor == "arbitrator":
            return self.arbitrator, None, ORDER_PATH["platform"]
        client = {"merchant_main": m.main, "merchant_auditor": m.auditor, "merchant_processor": m.processor}[actor]
        return client, None, ORDER_PATH["merchant"]

    async def _act(self, t: Track, step: Step) -> None:
        self._busy.add(t.id)
        try:
            await self._call(t, step)
        finally:
            self._busy.discard(t.id)
            self._index(t.id)  # whatever the answer: looked at again from the next look

    async def _call(self, t: Track, step: Step) -> None:
        client, customer, prefix = self._who(t, step.actor)
        kind = step.kind or f"process.{step.body.get('decision')}"
        headers = {}
        if step.action not in ("refund-paid", "arbitration-decision"):
            headers["If-Match"] = str(t.version)
        async with self._sem:
            try:
                r = await self.api.call("orders", "POST", f"{prefix}/{t.id}/{step.action}", as_=client,
                                        customer=customer, json=step.body, headers=headers)
            except Unavailable as exc:
                self._error(f"{kind} {t.id}: {exc}")
                return
            if r.status_code == 200:
                o = r.json()
                if o["version"] > t.version:
                    self._ack(t.id, o["version"], kind)
                    self.stats["actions"] += 1
                    self.stats[f"action:{kind}"] += 1
                    self._after(t, kind, step, o)
                return
            code = _code(r)
            if r.status_code in (409, 429) or (r.status_code == 404 and code == "order_not_found"):
                # the order moved on (a deadline fired, or our earlier attempt went through):
                # read it again before anything else
                self.stats[f"refused:{code}"] += 1
                await self._reload(t)
                return
            self._error(f"{kind} {t.id} in {t.state} as {step.actor}: {r.status_code} {r.text[:300]}")

    def _after(self, t: Track, kind: str, step: Step, o: dict) -> None:
        self._moved(t, o["state"], o["version"], parse_ts(o["updated_at"]))
        if kind.startswith("process.") or kind == "arbitration.decide":
            decision = step.body.get("decision") or step.body.get("outcome")
            t.outcome = decision
            if decision == "exchange":
                t.exchange_pending = True
            elif decision == "repair":
                t.repair_pending = True
            elif decision == "refund":
                t.refund_to_pay = True
        elif kind == "audit.resend_without_return":
            t.exchange_pending = True
        elif kind == "exchange.shipped":
            t.exchange_shipped = True
        elif kind == "repair.shipped_back":
            t.repair_pending = False
        elif kind == "refund.paid":
            t.refund_paid = True
        elif kind == "rate":
            t.rated = True
        elif kind == "remind_to_ship":
            t.reminded = True
        elif kind == "freight.edit":
            t.freight_edited = True
        elif kind == "reply":
            t.replied = True
        elif kind == "customer_feedback":
            t.feedback_rounds += 1
        elif kind == "cancel_outcome":
            t.outcome = None

    async def _reload(self, t: Track) -> None:
        """The order as the platform has it (what our acknowledged-or-not attempts did)."""
        try:
            d = await self.api.ok("orders", "GET", f"{ORDER_PATH['platform']}/{t.id}", as_=self.op)
        except (Unavailable, ApiError) as exc:
            self._error(f"reload {t.id}: {exc}")
            return
        self._moved(t, d["state"], d["version"], parse_ts(d["updated_at"]))
        actions = [e["action"] for e in d["timeline"]]
        t.rated = d.get("rating") is not None
        t.refund_to_pay = t.refund_to_pay or float(d.get("refunded_amount") or 0) > 0
        t.refund_paid = "refund.paid" in actions
        xos = d.get("exchange_orders") or []
        t.exchange_pending = t.exchange_pending or bool(xos)
        t.exchange_shipped = any(x["status"] == "shipped" for x in xos)
        t.repair_pending = d.get("outcome") == "repair" and "repair.shipped_back" not in actions
        t.reminded = "remind_to_ship" in actions
        t.freight_edited = "freight.edit" in actions
        t.replied = "reply" in actions
        t.feedback_rounds = actions.count("customer_feedback")
        if d.get("outcome") != t.outcome and d.get("outcome") is not None:
            t.outcome = d["outcome"]

    # ------------------------------------------------------------------ consultations
    async def _consult(self, r) -> None:
        n = self.next_consultation
        self.next_consultation += 1
        makers = [m for m in self.shops if m.enrolled]
        m = r.choice(makers) if makers and r.random() < 0.8 else r.choice(self.shops)
        if r.random() < 0.1:
            sku = f"{self.tag}-unknown-{n}"
        else:
            sku = r.choice(m.skus).sku
        cid = f"{self.tag}-cons-{n}"
        params = {"channel": r.choice(("im", "phone")), "entry_point": r.choice(("product_page", "after_sales_page")),
                  "sku": sku, "consultation_id": cid, "phase": r.choice(("pre_sale", "after_sale"))}
        repeat = r.random() < 0.1  # the page rendered twice: one consultation, one bill
        transfer = r.random() < 0.3
        async with self._sem:
            for _ in range(2 if repeat else 1):
                try:
                    resp = await self.api.call("consultation-routing", "GET", "/v1/route", as_=self.storefront,
                                               customer=f"{self.tag}c{n % 50}", params=params)
                except Unavailable as exc:
                    self._error(f"route {cid}: {exc}")
                    return
                if resp.status_code != 200:
                    self._error(f"route {cid}: {resp.status_code} {resp.text[:200]}")
                    return
                a = resp.json()
                c = self.consultations.get(a["decision_id"])
                billable = a["target"] == "platform" and a["reason"] in ("disqualified", "out_of_hours", "no_agents",
                                                                         "overflow")
                if c is None:
                    c = self.consultations[a["decision_id"]] = Consultation(
                        cid, a["decision_id"], a.get("manufacturer_id"), a["target"], a["reason"], billable)
                else:
                    c.billable = c.billable or billable
                self.stats["consultations"] += 1
                self.stats[f"route:{a['target']}:{a['reason']}"] += 1
            if transfer and c.target == "manufacturer" and c.manufacturer_id:
                maker = next((x for x in makers if x.id == c.manufacturer_id), None)
                if maker is not None:
                    # The decision is written to routing's store a moment after the answer: a
                    # 404 decision_not_found says to retry, which a real agent's desk does too.
                    pace = Backoff(0.2, 1.0)
                    for attempt in range(20):
                        try:
                            tr = await self.api.call(
                                "consultation-routing", "POST", "/v1/transfers", as_=maker.main,
                                json={"decision_id": c.decision_id, "manufacturer_id": maker.id,
                                      "agent_id": "agent-1", "reason": "needs the platform",
                                      "channel": params["channel"], "sku": sku})
                        except Unavailable as exc:
                            self._error(f"transfer {cid}: {exc}")
                            return
                        if tr.status_code != 404 or "decision_not_found" not in tr.text:
                            break
                        await pace.wait()
                    if tr.status_code == 201:
                        c.transferred = True
                        self.stats["transfers"] += 1
                    else:
                        self._error(f"transfer {cid}: {tr.status_code} {tr.text[:200]}")

    # ------------------------------------------------------------------ reporting
    def _error(self, msg: str) -> None:
        self.stats["errors"] += 1
        if len(self.errors) < 50:
            self.errors.append(msg)
            self.log(f"workload: {msg}")

    def summary(self) -> dict:
        states = Counter(t.state for t in self.tracks.values())
        return {"rounds": self.rounds, "orders": len(self.tracks), "actions": self.stats["actions"],
                "consultations": self.stats["consultations"], "errors": self.stats["errors"],
                "virtual_days": round(self.stats["virtual_seconds"] / D, 1), "states": dict(states)}


async def _later(delay: float, job) -> None:
    if delay > 0:
        await asyncio.sleep(delay)
    await job


def _code(r) -> str | None:
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


