"""The pages' use cases: read the read model and the services, shape a :class:`Page`.

Each builder is one page (docs/console.md describes what each figure means). Figures
from the console's own tables are always there; a service that does not answer costs
only its own sections (the page says which)."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Awaitable
from urllib.parse import quote

from console.adapters import readmodel as store
from console.adapters.platform import PlatformGateway, ServiceRefused, ServiceUnavailable
from console.domain import access
from console.domain import metric_names as names
from console.domain.figures import backlog_trend, last_hours, range_label, share
from console.domain.metrics import Scrape, bucket_counts, buckets, by_label, histogram_quantile
from console.domain.metrics import total as metric_total
from console.domain.i18n import STATES, Words, beijing_label
from console.domain.readmodel import hour_of, is_open
from console.handlers.views import Card, Cell, Chart, Column, Page, Table
from shared.clock import BEIJING

OLDEST_SHOWN = 10
LIST_LIMIT = 200


@dataclass
class Ctx:
    sessions: Any  # the console database's session factory
    gateway: PlatformGateway
    words: Words
    role: str
    now: datetime  # the platform clock (virtual in demos)
    limit: int = 200  # rows a list shows (CSV exports ask for more)


def _error(page: Page, text: str) -> None:
    if text not in page.errors:  # one line per service and cause, however many sections need it
        page.errors.append(text)


async def _try(page: Page, w: Words, call: Awaitable, default: Any) -> Any:
    try:
        return await call
    except ServiceUnavailable as exc:
        _error(page, w("error.service", service=exc.service, message=exc.message))
    except ServiceRefused as exc:
        _error(page, w("error.refused", service=exc.service, message=f"{exc.code}: {exc.message}"))
    return default


def hourly_axis(labels: list[str], shown: int = 6) -> dict:
    """An x axis of hour labels (Beijing), about ``shown`` of them written out."""
    step = max(1, len(labels) // shown)
    return {"type": "category", "tickmode": "array", "tickvals": labels[::step], "tickangle": 0}


def _order_link(order_id: str) -> str:
    return f"/orders/{quote(order_id, safe='')}"


def _merchant_link(merchant_id: str) -> str:
    return f"/merchants/{quote(merchant_id, safe='')}"


def _dt(v) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    try:
        return datetime.fromisoformat(str(v))
    except ValueError:
        return None


def _dec(v) -> Decimal | None:
    try:
        return None if v is None else Decimal(str(v))
    except InvalidOperation:
        return None


# ------------------------------------------------------------------------------------------ overview
async def overview(ctx: Ctx) -> Page:
    w, now = ctx.words, ctx.now
    now_hour = hour_of(now)
    hours = last_hours(now_hour, 48)
    async with ctx.sessions() as s:
        counts = await store.state_counts(s)
        hourly = await store.hourly_orders(s, hours[0])
        oldest = await store.oldest_open(s, OLDEST_SHOWN)
        tops = await store.top_backlogs(s, OLDEST_SHOWN)
        merchants = await store.merchant_count(s)
    page = Page("overview", w("overview.title"))
    total = sum(n for _s, _m, n in counts)
    open_now = sum(n for st, _m, n in counts if is_open(st))
    in_arbitration = sum(n for st, _m, n in counts if st == "arbitration")
    opened = {h: o for h, (o, _c) in hourly.items()}
    closed = {h: c for h, (_o, c) in hourly.items()}
    later = {h: v for h, v in hourly.items() if h > now_hour}
    day = hours[-24:]
    page.cards = [
        Card("total", w("overview.total"), w.count(total, "orders"), total),
        Card("open", w("overview.open"), w.count(open_now, "orders"), open_now),
        Card("opened_24h", w("overview.opened_24h"), w.count(sum(opened.get(h, 0) for h in day), "orders")),
        Card("closed_24h", w("overview.closed_24h"), w.count(sum(closed.get(h, 0) for h in day), "orders")),
        Card("arbitration", w("overview.arbitration"), w.count(in_arbitration, "orders"), in_arbitration,
             "warn" if in_arbitration else None),
        Card("merchants", w("overview.merchants"), w.count(merchants, "merchants"), merchants),
    ]
    states = [st for st in STATES if any(c[0] == st for c in counts)]
    states += sorted({st for st, _m, _n in counts} - set(states))
    modes = sorted({m for _s, m, _n in counts})
    grid = defaultdict(int)
    for st, m, n in counts:
        grid[(st, m)] += n
    page.charts.append(Chart("by_state", w("overview.by_state"), [
        {"type": "bar", "name": w.mode(m), "x": [w.state(st) for st in states], "y": [grid[(st, m)] for st in states]}
        for m in modes], {"barmode": "stack"}))
    page.charts.append(Chart("per_hour", w("overview.per_hour"), [
        {"type": "bar", "name": w("col.opened"), "x": [beijing_label(h) for h in day],
         "y": [opened.get(h, 0) for h in day]},
        {"type": "bar", "name": w("col.closed"), "x": [beijing_label(h) for h in day],
         "y": [closed.get(h, 0) for h in day]}],
        {"barmode": "group", "xaxis": hourly_axis([beijing_label(h) for h in day])}))
    trend = backlog_trend(open_now, hours, opened, closed, later)
    page.charts.append(Chart("backlog", w("overview.backlog"), [
        {"type": "scatter", "mode": "lines+markers", "name": w("col.backlog"), "x": [beijing_label(h) for h in hours],
         "y": trend, "fill": "tozeroy"}], {"xaxis": hourly_axis([beijing_label(h) for h in hours])}))
    t = Table("by_state", w("overview.by_state"),
              [Column("state", w("col.state"))] + [Column(m, w.mode(m), True) for m in modes]
              + [Column("total", w("col.total"), True)])
    for st in states:
        row_total = sum(grid[(st, m)] for m in modes)
        t.rows.append([Cell(w.state(st), st)] + [Cell(w.count(grid[(st, m)]), grid[(st, m)]) for m in modes]
                      + [Cell(w.count(row_total), row_total)])
    page.tables.append(t)
    t = Table("oldest", w("overview.oldest"), [
        Column("number", w("col.order")), Column("merchant_id", w("col.merchant")), Column("state", w("col.state")),
        Column("mode", w("col.mode")), Column("created_at", w("col.created")),
        Column("waiting_s", w("col.age"), True), Column("in_state_s", w("col.in_state"), True)])
    for o in oldest:
        age = (now - o["created_at"]).total_seconds()
        in_state = (now - o["entered_state_at"]).total_seconds()
        t.rows.append([Cell(o["number"], o["number"], _order_link(o["order_id"])), Cell(o["merchant_id"]),
                       Cell(w.state(o["state"]), o["state"]), Cell(w.mode(o["mode"]), o["mode"]),
                       Cell(w.time(o["created_at"]), o["created_at"]),
                       Cell(w.duration(age), int(age), tone="bad" if age > 7 * 86400 else None),
                       Cell(w.duration(in_state), int(in_state))])
    page.tables.append(t)
    t = Table("top_merchants", w("overview.top_merchants"), [
        Column("merchant_id", w("col.merchant")), Column("open", w("col.open"), True),
        Column("total", w("col.all"), True)])
    for m in tops:
        href = _merchant_link(m["merchant_id"]) if access.may_see(ctx.role, "merchants") else None
        t.rows.append([Cell(m["merchant_id"], m["merchant_id"], href), Cell(w.count(m["open"], "orders"), m["open"]),
                       Cell(w.count(m["total"], "orders"), m["total"])])
    page.tables.append(t)
    return page


# ------------------------------------------------------------------------------------------ deadlines
async def deadlines(ctx: Ctx) -> Page:
    w, now = ctx.words, ctx.now
    page = Page("deadlines", w("deadlines.title"))
    due = await _try(page, w, ctx.gateway.read("sla-timer", "/v1/timers/due"), {"items": []})
    scrape: Scrape = await _try(page, w, ctx.gateway.metrics("sla-timer"), {})
    async with ctx.sessions() as s:
        n_breach, breaches = await store.open_fired(s, "breach", ctx.limit)
        n_escalate, escalations = await store.open_fired(s, "escalate", ctx.limit)
        fired = await store.fired_since(s, now - timedelta(hours=24))
    items = due.get("items", [])
    # what the deadlines dashboard shows, from the same series (since the replica started)
    lateness = buckets(scrape, names.FIRING_LATENESS_BUCKET)
    p50, p99 = histogram_quantile(0.5, lateness), histogram_quantile(0.99, lateness)
    pending = {k[0]: int(v) for k, v in by_label(scrape, names.PENDING_TIMERS, "rule", how="max").items()}
    overdue = metric_total(scrape, names.OVERDUE_TIMERS)
    n_pending = sum(pending.values()) if names.PENDING_TIMERS in scrape else None
    page.cards = [
        Card("pending", w("deadlines.pending"), w.count(n_pending, "timers"), n_pending),
        Card("due_next_hour", w("deadlines.due_next_hour"), w.count(sum(i["next_hour"] for i in items), "timers")),
        Card("due_next_day", w("deadlines.due_next_day"), w.count(sum(i["next_day"] for i in items), "timers")),
        Card("overdue", w("deadlines.overdue"), w.count(None if overdue is None else int(overdue), "timers"),
             overdue, tone="warn" if overdue else None),
        Card("open_breaches", w("deadlines.open_breaches"), w.count(n_breach, "orders"), n_breach,
             "bad" if n_breach else None),
        Card("open_escalations", w("deadlines.open_escalations"), w.count(n_escalate, "orders"), n_escalate,
             "warn" if n_escalate else None),
        Card("fired_24h", w("deadlines.fired_24h"), w.count(len(fired), "timers"), len(fired)),
        Card("lateness_p50", w("deadlines.lateness_p50"), w.seconds(p50), p50),
        Card("lateness_p99", w("deadlines.lateness_p99"), w.seconds(p99), p99),
    ]
    rules = sorted(items, key=lambda i: (-i["next_day"], i["rule"]))
    page.charts.append(Chart("due_by_rule", w("deadlines.due"), [
        {"type": "bar", "name": w("col.next_hour"), "x": [w.rule(i["rule"]) for i in rules],
         "y": [i["next_hour"] for i in rules]},
        {"type": "bar", "name": w("col.next_day"), "x": [w.rule(i["rule"]) for i in rules],
         "y": [i["next_day"] for i in rules]},
    ], {"barmode": "group"}))
    by_rule = sorted(((r, n) for r, n in pending.items() if n), key=lambda kv: (-kv[1], kv[0]))
    page.charts.append(Chart("pending_by_rule", w("deadlines.pending_by_rule"), [
        {"type": "bar", "name": w("col.pending"), "x": [w.rule(r) for r, _n in by_rule],
         "y": [n for _r, n in by_rule]}]))
    spread = bucket_counts(lateness)
    page.charts.append(Chart("lateness", w("deadlines.lateness"), [
        {"type": "bar", "name": w("col.lateness"), "x": [range_label(lo, hi) for lo, hi, _n in spread],
         "y": [n for _lo, _hi, n in spread]}]))
    t = Table("due", w("deadlines.due"), [
        Column("rule", w("col.rule")), Column("action", w("col.action")), Column("overdue", w("col.overdue"), True),
        Column("next_hour", w("col.next_hour"), True), Column("next_day", w("col.next_day"), True),
        Column("pending", w("col.pending"), True)])
    for i in rules:
        n = pending.get(i["rule"])
        t.rows.append([Cell(w.rule(i["rule"]), i["rule"]), Cell(w.fired_action(i["action"]), i["action"]),
                       Cell(w.count(i["overdue"]), i["overdue"], tone="warn" if i["overdue"] else None),
                       Cell(w.count(i["next_hour"]), i["next_hour"]), Cell(w.count(i["next_day"]), i["next_day"]),
                       Cell(w.count(n), n)])
    page.tables.append(t)
    for table_id, title, rows, total in (("breaches", w("deadlines.breaches"), breaches, n_breach),
                                         ("escalations", w("deadlines.escalations"), escalations, n_escalate)):
        t = Table(table_id, title, [
            Column("number", w("col.order")), Column("merchant_id", w("col.merchant")), Column("rule", w("col.rule")),
            Column("detail", w("col.indicator") if table_id == "breaches" else w("col.to")),
            Column("order_state", w("col.state")), Column("due_at", w("col.due_at")),
            Column("open_s", w("col.age"), True)], total=total)
        for f in rows:
            detail = f["indicator"] if table_id == "breaches" else f"{f['to'] or ''} L{f['level'] or ''}".strip()
            since = (now - f["due_at"]).total_seconds()
            t.rows.append([Cell(f["number"], f["number"], _order_link(f["order_id"])), Cell(f["merchant_id"]),
                           Cell(w.rule(f["rule"]), f["rule"]), Cell(detail or w("none"), detail),
                           Cell(w.state(f["order_state"]), f["order_state"]), Cell(w.time(f["due_at"]), f["due_at"]),
                           Cell(w.duration(since), int(since), tone="bad")])
        page.tables.append(t)
    t = Table("fired", w("deadlines.recent"), [
        Column("fired_at", w("col.fired_at")), Column("rule", w("col.rule")), Column("action", w("col.action")),
        Column("order_id", w("col.order")), Column("due_at", w("col.due_at")),
        Column("lateness_s", w("col.lateness"), True)], total=len(fired))
    for f in fired[:ctx.limit]:
        t.rows.append([Cell(w.time(f["fired_at"]), f["fired_at"]), Cell(w.rule(f["rule"]), f["rule"]),
                       Cell(w.fired_action(f["action"]), f["action"]),
                       Cell(f["order_id"][:8], f["order_id"], _order_link(f["order_id"])),
                       Cell(w.time(f["due_at"]), f["due_at"]), Cell(w.seconds(f["lateness_s"]), f["lateness_s"])])
    page.tables.append(t)
    return page


# ------------------------------------------------------------------------------------------ arbitration
async def arbitration(ctx: Ctx) -> Page:
    w, now = ctx.words, ctx.now
    page = Page("arbitration", w("arbitration.title"))
    queue = await _try(page, w, ctx.gateway.read("orders", "/v1/platform/arbitration", {"limit": 200}),
                       {"items": [], "total": 0})
    items = queue.get("items", [])
    async with ctx.sessions() as s:
        entered = await store.entered_state(s, [o["id"] for o in items])
    waits = {o["id"]: (now - (entered.get(o["id"]) or _dt(o["updated_at"]) or now)).total_seconds() for o in items}
    longest = max(waits.values(), default=None)
    total = queue.get("total", len(items))
    page.cards = [Card("waiting", w("arbitration.waiting"), w.count(total, "orders"), total,
                       "warn" if total else None),
                  Card("oldest", w("arbitration.oldest"), w.duration(longest), longest)]
    bins = [(w.duration(0) + "–" + w.duration(86400), 0, 86400), (w.duration(86400) + "–" + w.duration(3 * 86400),
            86400, 3 * 86400), (w.duration(3 * 86400) + "–" + w.duration(7 * 86400), 3 * 86400, 7 * 86400),
            ("≥ " + w.duration(7 * 86400), 7 * 86400, float("inf"))]
    page.charts.append(Chart("waits", w("col.waiting"), [{"type": "bar", "name": w("col.waiting"),
                                                           "x": [b[0] for b in bins],
                                                           "y": [sum(1 for v in waits.values() if b[1] <= v < b[2])
                                                                 for b in bins]}]))
    t = Table("queue", w("arbitration.queue"), [
        Column("number", w("col.order")), Column("merchant_id", w("col.merchant")),
        Column("service_type", w("col.service_type")), Column("category", w("col.category")),
        Column("amount_paid", w("col.amount"), True), Column("created_at", w("col.created")),
        Column("waiting_s", w("col.waiting"), True)], total=total)
    for o in sorted(items, key=lambda o: -waits[o["id"]]):
        t.rows.append([Cell(o["number"], o["number"], _order_link(o["id"])), Cell(o["merchant_id"]),
                       Cell(o["service_type"]), Cell(o["category"]),
                       Cell(w.money(o["amount_paid"]), _dec(o["amount_paid"])),
                       Cell(w.time(o["created_at"]), o["created_at"]),
                       Cell(w.duration(waits[o["id"]]), int(waits[o["id"]]),
                            tone="bad" if waits[o["id"]] > 3 * 86400 else None)])
    page.tables.append(t)
    return page


async def order(ctx: Ctx, order_id: str, session_token_valid: bool) -> Page:
    """One order's full picture: the orders timeline, its timers, its messages (operators),
    and the binding decision for an arbitrator."""
    w = ctx.words
    page = Page("order", w("order.title", number=order_id))
    oid = quote(order_id, safe="")
    view = await _try(page, w, ctx.gateway.read("orders", f"/v1/platform/service-orders/{oid}", fresh=True), None)
    if view is None:
        page.extra = {"view": None}
        return page
    page.title = w("order.title", number=view["number"])
    timers = await _try(page, w, ctx.gateway.read("sla-timer", f"/v1/service-orders/{oid}/timers", fresh=True),
                        {"items": []})
    page.cards = [Card("state", w("col.state"), w.state(view["state"]), view["state"]),
                  Card("mode", w("col.mode"), w.mode(view["mode"]), view["mode"]),
                  Card("merchant", w("col.merchant"), view["merchant_id"]),
                  Card("amount_paid", w("order.amount_paid"), w.money(view["amount_paid"])),
                  Card("refunded", w("order.refunded"), w.money(view.get("refunded_amount"))),
                  Card("created", w("col.created"), w.time(view["created_at"]))]
    if view.get("locked_from"):
        page.cards.append(Card("locked_from", w("order.locked_from"), w.state(view["locked_from"])))
    t = Table("timeline", w("order.timeline"), [
        Column("at", w("col.time")), Column("action", w("col.action")), Column("actor", w("col.actor")),
        Column("change", w("col.from_to")), Column("note", w("col.note")), Column("version", w("col.version"), True)])
    for e in view.get("timeline", []):
        change = w.state(e["to_state"]) if not e["from_state"] else (
            f"{w.state(e['from_state'])} → {w.state(e['to_state'])}" if e["from_state"] != e["to_state"] else
            w.state(e["to_state"]))
        note = e.get("internal_note") or e.get("note") or ""
        details = e.get("details") or {}
        if details.get("outcome"):
            note = f"{details['outcome']}: {note}" if note else str(details["outcome"])
        t.rows.append([Cell(w.time(e["at"]), e["at"]), Cell(w.action(e["action"]), e["action"]),
                       Cell(f"{w.actor(e['actor_role'])} {e['actor_id']}", e["actor_id"]),
                       Cell(change, e["to_state"]), Cell(note), Cell(str(e["version"]), e["version"])])
    page.tables.append(t)
    t = Table("timers", w("order.timers"), [
        Column("rule", w("col.rule")), Column("action", w("col.action")), Column("state", w("col.status")),
        Column("due_at", w("col.due_at")), Column("ended_at", w("col.ended_at"))])
    for tm in timers.get("items", []):
        t.rows.append([Cell(w.rule(tm["rule"]), tm["rule"]), Cell(w.fired_action(tm["action"]), tm["action"]),
                       Cell(w.timer_state(tm["state"]), tm["state"], tone="warn" if tm["state"] == "pending" else None),
                       Cell(w.time(tm["due_at"]), tm["due_at"]),
                       Cell(w.time(tm.get("fired_at") or tm.get("cancelled_at")),
                            tm.get("fired_at") or tm.get("cancelled_at"))])
    page.tables.append(t)
    if ctx.role in access.ORDER_MESSAGES:
        msgs = await _try(page, w, ctx.gateway.read("notifier", "/v1/messages", {"order_id": order_id, "limit": 500}),
                          {"items": []})
        t = Table("messages", w("order.messages"), [
            Column("created_at", w("col.created_at")), Column("channel", w("col.channel")),
            Column("template", w("col.template")), Column("recipient", w("col.recipient")),
            Column("status", w("col.status")), Column("error", w("col.error"))])
        for m in msgs.get("items", []):
            t.rows.append([Cell(w.time(m["created_at"]), m["created_at"]), Cell(w.channel(m["channel"]), m["channel"]),
                           Cell(m["template_key"]), Cell(m["recipient"]), Cell(w.status(m["status"]), m["status"]),
                           Cell(m.get("last_error") or "", tone="bad" if m["status"] == "failed" else None)])
        page.tables.append(t)
    page.extra = {"view": view, "can_decide": ctx.role in access.DECIDERS and view["state"] == "arbitration",
                  "token_valid": session_token_valid, "outcomes": ("refund", "exchange", "return_original", "reject")}
    return page


async def decide(ctx: Ctx, person_token: str, order_id: str, form: dict[str, str]) -> dict:
    """The arbitrator's binding decision, made by the orders service with their own token."""
    body: dict[str, Any] = {"outcome": form.get("outcome", ""), "note": form.get("note", "").strip()}
    if form.get("amount", "").strip():
        body["amount"] = form["amount"].strip()
    if form.get("sku", "").strip():
        body["sku"] = form["sku"].strip()
    return await ctx.gateway.act(person_token, "orders",
                                 f"/v1/platform/service-orders/{quote(order_id, safe='')}/arbitration-decision", body)


# ------------------------------------------------------------------------------------------ routing
async def routing(ctx: Ctx) -> Page:
    w, now = ctx.words, ctx.now
    page = Page("routing", w("routing.title"))
    now_hour = hour_of(now)
    hours = last_hours(now_hour, 24)
    async with ctx.sessions() as s:
        rows = [r for r in await store.routing_since(s, hours[0]) if r["hour"] <= now_hour]
        transfers = await store.transfers_since(s, hours[0])
    disq = await _try(page, w, ctx.gateway.read("kpi", "/v1/service-express/disqualifications"), {"items": []})
    total = sum(r["n"] for r in rows)
    by_target = defaultdict(int)
    by_reason = defaultdict(int)
    per_hour = defaultdict(int)
    per_maker = defaultdict(lambda: {"manufacturer": 0, "platform": 0})
    for r in rows:
        by_target[r["target"]] += r["n"]
        by_reason[(r["reason"], r["target"])] += r["n"]
        per_hour[(r["hour"], r["target"])] += r["n"]
        per_maker[(r["manufacturer_id"], r["channel"])][r["target"]] += r["n"]
    disqualified = [d for d in disq.get("items", []) if d.get("disqualified")]
    n_transfers = sum(transfers.values())
    page.cards = [
        Card("decisions", w("routing.decisions"), w.count(total, "consultations"), total),
        Card("manufacturer_share", w("routing.manufacturer_share"), w.pct(by_target["manufacturer"], total),
             share(by_target["manufacturer"], total)),
        Card("platform_share", w("routing.platform_share"), w.pct(by_target["platform"], total),
             share(by_target["platform"], total)),
        Card("transfers", w("routing.transfers"), w.count(n_transfers, "consultations"), n_transfers),
        Card("disqualified", w("routing.disqualified"), w.count(len(disqualified), "manufacturers"),
             len(disqualified), "warn" if disqualified else None),
    ]
    # the routing dashboard's series: decisions by target and reason since the replica started
    scrape: Scrape = await _try(page, w, ctx.gateway.metrics("consultation-routing"), {})
    decided = by_label(scrape, names.ROUTING_DECISIONS, "target", "reason")
    counted = defaultdict(int)
    for (tg, reason), n in decided.items():
        counted[(reason, tg)] += int(n)
    page.charts.append(Chart("share", w("routing.share"), [
        {"type": "pie", "hole": 0.45, "labels": [w.target(t) for t in ("manufacturer", "platform")],
         "values": [sum(n for (_r, tg), n in counted.items() if tg == t) for t in ("manufacturer", "platform")],
         "sort": False}], {"showlegend": True}))
    reasons = sorted({r for r, _t in counted}, key=lambda r: -(counted[(r, "manufacturer")] + counted[(r, "platform")]))
    page.charts.append(Chart("reasons", w("routing.reasons_since"), [
        {"type": "bar", "name": w.target(tg), "x": [w.reason(r) for r in reasons],
         "y": [counted[(r, tg)] for r in reasons]} for tg in ("manufacturer", "platform")], {"barmode": "stack"}))
    page.charts.append(Chart("per_hour", w("routing.per_hour"), [
        {"type": "bar", "name": w.target(tg), "x": [beijing_label(h) for h in hours],
         "y": [per_hour[(h, tg)] for h in hours]} for tg in ("manufacturer", "platform")],
        {"barmode": "stack", "xaxis": hourly_axis([beijing_label(h) for h in hours])}))
    t = Table("reasons", w("routing.reasons"), [
        Column("reason", w("col.reason")), Column("target", w("col.target")), Column("count", w("col.count"), True),
        Column("share", w("col.share"), True)])
    for (reason, tg), n in sorted(((k, n) for k, n in by_reason.items() if n), key=lambda kv: -kv[1]):
        t.rows.append([Cell(w.reason(reason), reason), Cell(w.target(tg), tg), Cell(w.count(n, "consultations"), n),
                       Cell(w.pct(n, total), share(n, total))])
    page.tables.append(t)
    t = Table("manufacturers", w("routing.per_manufacturer"), [
        Column("manufacturer_id", w("col.manufacturer")), Column("channel", w("col.channel")),
        Column("to_manufacturer", w("col.to_manufacturer"), True), Column("to_platform", w("col.to_platform"), True),
        Column("manufacturer_share", w("routing.manufacturer_share"), True),
        Column("transfers", w("col.transfers"), True)])
    for (maker, channel), v in sorted(per_maker.items(), key=lambda kv: -(kv[1]["manufacturer"] + kv[1]["platform"])):
        n = v["manufacturer"] + v["platform"]
        t.rows.append([Cell(maker or w("none"), maker), Cell(w.channel(channel), channel),
                       Cell(w.count(v["manufacturer"]), v["manufacturer"]), Cell(w.count(v["platform"]), v["platform"]),
                       Cell(w.pct(v["manufacturer"], n), share(v["manufacturer"], n)),
                       Cell(w.count(transfers.get(maker, 0)), transfers.get(maker, 0))])
    page.tables.append(t)
    t = Table("disqualified", w("routing.disqualified"), [
        Column("manufacturer_id", w("col.manufacturer")), Column("since_period", w("col.since")),
        Column("changed_at", w("col.time")), Column("note", w("col.note"))])
    for d in disqualified:
        t.rows.append([Cell(d["manufacturer_id"]), Cell(d["since_period"]), Cell(w.time(d["changed_at"]), d["changed_at"]),
                       Cell(d.get("note") or "")])
    page.tables.append(t)
    return page


# ------------------------------------------------------------------------------------------ notifications
STATUS_ORDER = ("sent", "delivered", "retrying", "queued", "failed", "cancelled")
STATUS_COLORS = {"sent": "#1f6feb", "delivered": "#2da44e", "retrying": "#bf8700", "queued": "#8c959f",
                 "failed": "#cf222e", "cancelled": "#8250df"}


async def notifications(ctx: Ctx) -> Page:
    w = ctx.words
    page = Page("notifications", w("notifications.title"))
    summary = await _try(page, w, ctx.gateway.read("notifier", "/v1/messages/summary"), {"groups": [], "failures": []})
    groups = summary.get("groups", [])
    status_of = lambda g: "retrying" if g["retrying"] else g["status"]  # noqa: E731
    totals = defaultdict(int)
    by_channel = defaultdict(int)
    by_template = defaultdict(lambda: defaultdict(int))
    for g in groups:
        st = status_of(g)
        totals[st] += g["count"]
        by_channel[(g["channel"], st)] += g["count"]
        by_template[(g["channel"], g["template_key"])][st] += g["count"]
    sent = totals["sent"] + totals["delivered"]
    page.cards = [
        Card("sent", w("notifications.sent"), w.count(sent, "messages"), sent),
        Card("failed", w("notifications.failed"), w.count(totals["failed"], "messages"), totals["failed"],
             "bad" if totals["failed"] else None),
        Card("retrying", w("notifications.retrying"), w.count(totals["retrying"], "messages"), totals["retrying"],
             "warn" if totals["retrying"] else None),
        Card("queued", w("notifications.queued"), w.count(totals["queued"], "messages"), totals["queued"]),
    ]
    channels = sorted({c for c, _s in by_channel})
    page.charts.append(Chart("by_channel", w("notifications.status_chart"), [
        {"type": "bar", "name": w.status(st), "x": [w.channel(c) for c in channels],
         "y": [by_channel[(c, st)] for c in channels], "marker": {"color": STATUS_COLORS[st]}} for st in STATUS_ORDER if any(by_channel[(c, st)]
                                                                                    for c in channels)],
        {"barmode": "stack"}))
    keys = sorted(by_template, key=lambda k: (-sum(by_template[k].values()), k))
    page.charts.append(Chart("by_template", w("notifications.by_channel"), [
        {"type": "bar", "orientation": "h", "name": w.status(st), "y": [f"{w.channel(c)} · {tk}" for c, tk in keys],
         "x": [by_template[k][st] for k in keys], "marker": {"color": STATUS_COLORS[st]}} for st in STATUS_ORDER if any(by_template[k][st] for k in keys)],
        {"barmode": "stack", "height": max(260, 28 * len(keys) + 80), "margin": {"l": 220, "r": 12, "t": 8, "b": 40}}))
    t = Table("by_template", w("notifications.by_channel"),
              [Column("channel", w("col.channel")), Column("template", w("col.template"))]
              + [Column(st, w.status(st), True) for st in STATUS_ORDER])
    for c, tk in keys:
        t.rows.append([Cell(w.channel(c), c), Cell(tk)] + [
            Cell(w.count(by_template[(c, tk)][st]), by_template[(c, tk)][st],
                 tone="bad" if st == "failed" and by_template[(c, tk)][st] else None) for st in STATUS_ORDER])
    page.tables.append(t)
    # the notifications dashboard's counters (since the notifier replica started)
    scrape: Scrape = await _try(page, w, ctx.gateway.metrics("notifier"), {})
    counters = (("sent", names.MESSAGES_SENT), ("failed", names.MESSAGES_FAILED), ("retries", names.MESSAGE_RETRIES))
    counted = {key: by_label(scrape, name, "channel", "template") for key, name in counters}
    counted_channels = sorted({c for per in counted.values() for c, _tk in per})
    page.charts.append(Chart("counted", w("notifications.counted"), [
        {"type": "bar", "name": w(f"col.{key}"), "x": [w.channel(c) for c in counted_channels],
         "y": [int(sum(n for (c2, _tk), n in counted[key].items() if c2 == c)) for c in counted_channels],
         "marker": {"color": {"sent": STATUS_COLORS["sent"], "failed": STATUS_COLORS["failed"],
                              "retries": STATUS_COLORS["retrying"]}[key]}}
        for key, _name in counters], {"barmode": "group"}))
    t = Table("counted", w("notifications.counted_table"),
              [Column("channel", w("col.channel")), Column("template", w("col.template"))]
              + [Column(key, w(f"col.{key}"), True) for key, _name in counters])
    for c, tk in sorted({k for per in counted.values() for k in per}):
        values = [int(counted[key].get((c, tk), 0)) for key, _name in counters]
        t.rows.append([Cell(w.channel(c), c), Cell(tk)] + [
            Cell(w.count(n), n, tone="bad" if key == "failed" and n else None)
            for (key, _name), n in zip(counters, values)])
    page.tables.append(t)
    failures = summary.get("failures", [])
    t = Table("failures", w("notifications.failures"), [
        Column("created_at", w("col.created_at")), Column("channel", w("col.channel")),
        Column("template", w("col.template")), Column("order_id", w("col.order")),
        Column("recipient", w("col.recipient")), Column("attempts", w("col.attempts"), True),
        Column("error", w("col.error"))], total=summary.get("failed_total"))
    for m in failures:
        t.rows.append([Cell(w.time(m["created_at"]), m["created_at"]), Cell(w.channel(m["channel"]), m["channel"]),
                       Cell(m["template_key"]),
                       Cell((m.get("order_id") or "")[:8], m.get("order_id"),
                            _order_link(m["order_id"]) if m.get("order_id") else None),
                       Cell(m["recipient"]), Cell(str(m["attempts"]), m["attempts"]),
                       Cell(m.get("last_error") or "", tone="bad")])
    page.tables.append(t)
    return page


# ------------------------------------------------------------------------------------------ platform
async def platform(ctx: Ctx) -> Page:
    """The services' health as the consumers-and-outbox and overview dashboards show it: each
    service's /metrics (operators only), read at once; a service that does not answer is
    marked so and counts as not ready."""
    w = ctx.words
    page = Page("platform", w("platform.title"))
    services = names.EVERY_SERVICE
    scrapes: list[Scrape | None] = list(await asyncio.gather(
        *(_try(page, w, ctx.gateway.metrics(svc), None) for svc in services)))
    read = {svc: sc for svc, sc in zip(services, scrapes) if sc is not None}
    lag, lag_messages, held = {}, {}, {}
    for svc, sc in read.items():
        for (group,), v in by_label(sc, names.CONSUMER_LAG_SECONDS, "group", how="max").items():
            lag[(svc, group)] = v
        for (group,), v in by_label(sc, names.CONSUMER_LAG_MESSAGES, "group").items():
            lag_messages[(svc, group)] = v
        for (group,), v in by_label(sc, names.CONSUMER_DEAD_LETTERS, "group", how="max").items():
            held[(svc, group)] = int(v)
    failing = {svc: sorted(k[0] for k, v in by_label(sc, names.SERVICE_READY, "check", how="max").items() if v < 1)
               for svc, sc in read.items()}
    ready = [svc for svc in read if names.SERVICE_READY in read[svc] and not failing[svc]]
    pending = {svc: metric_total(sc, names.OUTBOX_PENDING) for svc, sc in read.items()}
    oldest = {svc: metric_total(sc, names.OUTBOX_OLDEST_AGE) for svc, sc in read.items()}
    held_by_service = {svc: sum(n for (s2, _g), n in held.items() if s2 == svc) for svc in read}
    max_lag = max(lag.values(), default=None)
    n_held = sum(held.values())
    n_pending = int(sum(v for v in pending.values() if v is not None))
    max_oldest = max((v for v in oldest.values() if v is not None), default=None)
    page.cards = [
        Card("ready", w("platform.ready"), f"{len(ready)} / {len(services)}", len(ready),
             "bad" if len(ready) < len(services) else "good"),
        Card("max_lag", w("platform.max_lag"), w.seconds(max_lag), max_lag,
             "warn" if max_lag and max_lag > 30 else None),
        Card("dead_letters", w("platform.dead_letters"), w.count(n_held, "messages"), n_held,
             "bad" if n_held else None),
        Card("outbox_pending", w("platform.outbox_pending"), w.count(n_pending, "events"), n_pending),
        Card("outbox_oldest", w("platform.outbox_oldest"), w.seconds(max_oldest), max_oldest,
             "warn" if max_oldest and max_oldest > 60 else None),
    ]
    groups = sorted(lag, key=lambda k: (-lag[k], k))
    page.charts.append(Chart("lag", w("platform.lag_chart"), [
        {"type": "bar", "orientation": "h", "name": w("col.lag_s"), "y": [g for _svc, g in groups],
         "x": [lag[k] for k in groups]}],
        {"height": max(260, 26 * len(groups) + 80), "margin": {"l": 240, "r": 12, "t": 8, "b": 40}}))
    page.charts.append(Chart("dead_letters", w("platform.dead_letters_chart"), [
        {"type": "bar", "name": w("col.dead_letters"), "x": list(held_by_service),
         "y": list(held_by_service.values()), "marker": {"color": "#cf222e"}}]))
    page.charts.append(Chart("outbox", w("platform.outbox_chart"), [
        {"type": "bar", "name": w("col.outbox_pending"), "x": list(pending),
         "y": [int(v or 0) for v in pending.values()]}]))
    t = Table("services", w("platform.services"), [
        Column("service", w("col.service")), Column("ready", w("col.ready")), Column("failing", w("col.failing")),
        Column("outbox_pending", w("col.outbox_pending"), True),
        Column("outbox_oldest_s", w("col.outbox_oldest"), True),
        Column("dead_letters", w("col.dead_letters"), True)])
    for svc in services:
        if svc not in read:
            t.rows.append([Cell(svc), Cell(w("platform.unreachable"), False, tone="bad"), Cell(""), Cell(w("none")),
                           Cell(w("none")), Cell(w("none"))])
            continue
        ok = svc in ready
        t.rows.append([Cell(svc), Cell(w("yes") if ok else w("no"), ok, tone="good" if ok else "bad"),
                       Cell(", ".join(w.check(c) for c in failing[svc]), ";".join(failing[svc])),
                       Cell(w.count(None if pending[svc] is None else int(pending[svc])), pending[svc]),
                       Cell(w.seconds(oldest[svc]), oldest[svc]),
                       Cell(w.count(held_by_service[svc]), held_by_service[svc],
                            tone="bad" if held_by_service[svc] else None)])
    page.tables.append(t)
    t = Table("consumers", w("platform.consumers"), [
        Column("service", w("col.service")), Column("group", w("col.group")), Column("lag_s", w("col.lag_s"), True),
        Column("lag_messages", w("col.lag_messages"), True), Column("dead_letters", w("col.dead_letters"), True)])
    for svc, group in sorted(set(lag) | set(lag_messages) | set(held)):
        n_lag, n_msgs, n_dead = lag.get((svc, group)), lag_messages.get((svc, group)), held.get((svc, group))
        t.rows.append([Cell(svc), Cell(group), Cell(w.seconds(n_lag), n_lag),
                       Cell(w.count(None if n_msgs is None else int(n_msgs)), n_msgs),
                       Cell(w.count(n_dead), n_dead, tone="bad" if n_dead else None)])
    page.tables.append(t)
    return page


# ------------------------------------------------------------------------------------------ merchants
def monday_of(d: date) -> date:
    return d - timedelta(days=d.weekday())


def beijing_today(now: datetime) -> date:
    return now.astimezone(BEIJING).date()


async def merchants(ctx: Ctx, week: date | None) -> Page:
    w = ctx.words
    today = beijing_today(ctx.now)
    wk = week or monday_of(today)
    month = f"{wk.year:04d}-{wk.month:02d}" if week else f"{today.year:04d}-{today.month:02d}"
    page = Page("merchants", w("merchants.title"))
    read = ctx.gateway.read
    cards = await _try(page, w, read("kpi", "/v1/scorecards/weekly", {"week": wk.isoformat()}), {"scorecards": []})
    ranking = await _try(page, w, read("kpi", "/v1/rankings/weekly", {"week": wk.isoformat()}),
                         {"ranking": [], "ranked": 0})
    flags = await _try(page, w, read("kpi", "/v1/flags", {"week": wk.isoformat()}), {"flags": []})
    penalties = await _try(page, w, read("kpi", "/v1/penalties", {"week": wk.isoformat()}), {"lines": []})
    billing = await _try(page, w, read("kpi", "/v1/billing", {"month": month}), {"lines": []})
    index = await _try(page, w, read("kpi", "/v1/composite-index"), {"merchants": [], "categories": []})
    penalty_total = sum((_dec(p["amount"]) or Decimal(0)) for p in penalties.get("lines", []))
    billing_total = sum((_dec(b["amount"]) or Decimal(0)) for b in billing.get("lines", []))
    bottom = {e["merchant_id"] for e in ranking.get("ranking", []) if e.get("bottom10")}
    flagged = {f["merchant_id"] for f in flags.get("flags", [])}
    page.extra = {"week": wk.isoformat(), "month": month, "weeks": [(monday_of(today) - timedelta(weeks=k)).isoformat()
                                                                    for k in range(8)]}
    page.cards = [
        Card("ranked", w("merchants.ranked"), w.count(ranking.get("ranked", 0), "merchants"), ranking.get("ranked", 0)),
        Card("flagged", w("merchants.flagged"), w.count(len(flagged), "merchants"), len(flagged),
             "bad" if flagged else None),
        Card("penalties", w("merchants.penalty_total"), w.money(penalty_total), str(penalty_total)),
        Card("billing", w("merchants.billing_total"), w.money(billing_total), str(billing_total)),
    ]
    scores = [float(c["score"]) * 100 for c in cards.get("scorecards", []) if c.get("score") is not None]
    page.charts.append(Chart("scores", w("merchants.score_dist"), [
        {"type": "histogram", "x": scores, "name": w("col.score"), "xbins": {"start": 0, "end": 100.01, "size": 10}}],
        {"xaxis": {"range": [0, 100]}}))
    t = Table("scorecards", w("merchants.scorecards"), [
        Column("rank", w("col.rank"), True), Column("merchant_id", w("col.merchant")),
        Column("score", w("col.score"), True)] + [Column(f, f) for f in ("F1", "F2", "F3", "F4")]
        + [Column("bottom10", "Bottom 10")])
    for c in sorted(cards.get("scorecards", []), key=lambda c: (c["rank"] is None, c["rank"] or 0, c["merchant_id"])):
        ind = c["indicators"]
        cells = [Cell(str(c["rank"]) if c["rank"] is not None else w("none"), c["rank"]),
                 Cell(c["merchant_id"], c["merchant_id"], _merchant_link(c["merchant_id"])),
                 Cell(w.score(float(c["score"]) * 100) if c["score"] is not None else w("none"),
                      float(c["score"]) * 100 if c["score"] is not None else None)]
        for f in ("F1", "F2", "F3", "F4"):
            v = ind[f]["value"]
            cells.append(Cell(w("none") if v is None else f"{float(v) * 100:.1f}%", None if v is None else float(v),
                              tone=None if ind[f]["met"] is None else ("good" if ind[f]["met"] else "bad")))
        is_bottom = c["merchant_id"] in bottom
        cells.append(Cell(w("yes") if is_bottom else "", is_bottom, tone="bad" if is_bottom else None))
        t.rows.append(cells)
    page.tables.append(t)
    t = Table("flags", w("merchants.flags"), [Column("merchant_id", w("col.merchant")),
                                              Column("weeks", w("col.weeks"))])
    for f in flags.get("flags", []):
        t.rows.append([Cell(f["merchant_id"], f["merchant_id"], _merchant_link(f["merchant_id"])),
                       Cell(", ".join(f["weeks"]))])
    page.tables.append(t)
    t = Table("penalties", w("merchants.penalties"), [
        Column("merchant_id", w("col.merchant")), Column("kind", w("col.kind")), Column("count", w("col.count"), True),
        Column("amount", w("col.amount"), True), Column("orders", w("col.orders"))])
    for p in penalties.get("lines", []):
        t.rows.append([Cell(p["merchant_id"], p["merchant_id"], _merchant_link(p["merchant_id"])), Cell(p["kind"]),
                       Cell(str(p["count"]), p["count"]), Cell(w.money(p["amount"]), _dec(p["amount"])),
                       Cell(w.count(len(p["order_ids"]), "orders"), ";".join(p["order_ids"]))])
    page.tables.append(t)
    t = Table("billing", w("merchants.billing"), [
        Column("month", w("col.month")), Column("manufacturer_id", w("col.manufacturer")), Column("item", w("col.kind")),
        Column("quantity", w("col.quantity"), True), Column("unit_price", w("col.unit_price"), True),
        Column("amount", w("col.amount"), True)])
    for b in billing.get("lines", []):
        t.rows.append([Cell(b["month"]), Cell(b["manufacturer_id"], b["manufacturer_id"],
                                              _merchant_link(b["manufacturer_id"])),
                       Cell(b["item"]), Cell(str(b["quantity"]), b["quantity"]),
                       Cell(w.money(b["unit_price"]), _dec(b["unit_price"])), Cell(w.money(b["amount"]), _dec(b["amount"]))])
    page.tables.append(t)
    page.tables.append(_index_table(w, index.get("merchants", [])))
    return page


def _index_table(w: Words, rows: list[dict]) -> Table:
    t = Table("index", w("merchants.index"), [
        Column("merchant_id", w("col.merchant")), Column("category", w("col.category")),
        Column("index_score", w("col.index_score"), True), Column("dispute_rate", w("col.dispute_rate"), True),
        Column("completion_hours", w("col.refund_speed"), True),
        Column("self_completion_rate", w("col.self_completion"), True), Column("platinum", w("col.platinum"))])
    for m in sorted(rows, key=lambda m: -(float(m["index_score"]) if m.get("index_score") else -1)):
        t.rows.append([
            Cell(m["merchant_id"], m["merchant_id"], _merchant_link(m["merchant_id"])), Cell(m["category"]),
            Cell(f"{m['index_score']}%" if m.get("index_score") else w("none"), _dec(m.get("index_score"))),
            Cell(f"{float(m['dispute_rate']) * 100:.3f}%" if m.get("dispute_rate") else w("none"),
                 _dec(m.get("dispute_rate"))),
            Cell(f"{m['completion_hours']} h" if m.get("completion_hours") else w("none"),
                 _dec(m.get("completion_hours"))),
            Cell(f"{float(m['self_completion_rate']) * 100:.1f}%" if m.get("self_completion_rate") else w("none"),
                 _dec(m.get("self_completion_rate"))),
            Cell(w("yes") if m["platinum"] else w("no"), m["platinum"], tone="good" if m["platinum"] else None)])
    return t


async def merchant(ctx: Ctx, merchant_id: str) -> Page:
    """A merchant's drill-down: recent weekly scorecards, penalties, billing, index, and
    its open orders from the read model."""
    w = ctx.words
    page = Page("merchant", w("merchant.title", id=merchant_id))
    today = beijing_today(ctx.now)
    weeks = [monday_of(today) - timedelta(weeks=k) for k in range(7, -1, -1)]
    read = ctx.gateway.read
    history = []
    for wk in weeks:
        body = await _try(page, w, read("kpi", "/v1/scorecards/weekly", {"week": wk.isoformat(),
                                                                          "merchant_id": merchant_id}), None)
        if body is None:
            break
        history.append((wk, (body.get("scorecards") or [None])[0]))
    penalties = await _try(page, w, read("kpi", "/v1/penalties", {"merchant_id": merchant_id}), {"lines": []})
    billing = await _try(page, w, read("kpi", "/v1/billing", {"manufacturer_id": merchant_id}), {"lines": []})
    try:
        index = await read("kpi", "/v1/composite-index", {"merchant_id": merchant_id})
    except ServiceRefused as exc:
        if exc.status != 404:  # 404: no refunds nor paid transactions in the window (no index yet)
            _error(page, w("error.refused", service=exc.service, message=f"{exc.code}: {exc.message}"))
        index = {"merchants": []}
    except ServiceUnavailable as exc:
        _error(page, w("error.service", service=exc.service, message=exc.message))
        index = {"merchants": []}
    async with ctx.sessions() as s:
        backlog = await store.merchant_backlog(s, merchant_id) or {"open": 0, "total": 0}
        open_orders = await store.oldest_open(s, ctx.limit, merchant_id)
    latest = history[-1][1] if history else None
    page.cards = [
        Card("open", w("merchant.backlog"), w.count(backlog["open"], "orders"), backlog["open"]),
        Card("total", w("overview.total"), w.count(backlog["total"], "orders"), backlog["total"]),
        Card("score", w("col.score"), w.score(float(latest["score"]) * 100) if latest and latest["score"] else w("none")),
        Card("rank", w("col.rank"), str(latest["rank"]) if latest and latest["rank"] else w("none")),
    ]
    page.charts.append(Chart("history", w("merchant.history"), [
        {"type": "scatter", "mode": "lines+markers", "name": w("col.score"), "x": [wk.isoformat() for wk, _c in history],
         "y": [float(c["score"]) * 100 if c and c["score"] is not None else None for _wk, c in history]}],
        {"yaxis": {"range": [0, 100]}}))
    t = Table("history", w("merchant.history"), [
        Column("week", w("col.week")), Column("score", w("col.score"), True), Column("rank", w("col.rank"), True)]
        + [Column(f, f) for f in ("F1", "F2", "F3", "F4")])
    for wk, c in reversed(history):
        if c is None:
            continue
        cells = [Cell(wk.isoformat()), Cell(w.score(float(c["score"]) * 100) if c["score"] else w("none"),
                                             float(c["score"]) * 100 if c["score"] else None),
                 Cell(str(c["rank"]) if c["rank"] else w("none"), c["rank"])]
        for f in ("F1", "F2", "F3", "F4"):
            v = c["indicators"][f]["value"]
            cells.append(Cell(w("none") if v is None else f"{float(v) * 100:.1f}%", None if v is None else float(v)))
        t.rows.append(cells)
    page.tables.append(t)
    t = Table("penalties", w("merchants.penalties"), [
        Column("week", w("col.week")), Column("kind", w("col.kind")), Column("count", w("col.count"), True),
        Column("amount", w("col.amount"), True)])
    for p in penalties.get("lines", []):
        t.rows.append([Cell(p["week"]), Cell(p["kind"]), Cell(str(p["count"]), p["count"]),
                       Cell(w.money(p["amount"]), _dec(p["amount"]))])
    page.tables.append(t)
    t = Table("billing", w("merchants.billing"), [
        Column("month", w("col.month")), Column("item", w("col.kind")), Column("quantity", w("col.quantity"), True),
        Column("amount", w("col.amount"), True)])
    for b in billing.get("lines", []):
        t.rows.append([Cell(b["month"]), Cell(b["item"]), Cell(str(b["quantity"]), b["quantity"]),
                       Cell(w.money(b["amount"]), _dec(b["amount"]))])
    page.tables.append(t)
    page.tables.append(_index_table(w, index.get("merchants", [])))
    t = Table("open_orders", w("merchant.open_orders"), [
        Column("number", w("col.order")), Column("state", w("col.state")), Column("created_at", w("col.created")),
        Column("waiting_s", w("col.age"), True)], total=backlog["open"])
    for o in open_orders:
        age = (ctx.now - o["created_at"]).total_seconds()
        t.rows.append([Cell(o["number"], o["number"], _order_link(o["order_id"])), Cell(w.state(o["state"]), o["state"]),
                       Cell(w.time(o["created_at"]), o["created_at"]), Cell(w.duration(age), int(age))])
    page.tables.append(t)
    return page
