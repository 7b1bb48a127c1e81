"""Issue 14: every route of the KPI service declares its response in the OpenAPI
document, and what it really answers matches the declaration — with an empty
database and with a realistic history (the checks schemathesis runs in CI with
``response_schema_conformance``, here on answers whose every shape is known: null
and non-null values, both kinds of penalty line, a disqualified and a re-qualified
manufacturer, ...).

Answers are validated against the live ``/openapi.json`` with ``jsonschema_rs`` (what
schemathesis validates with), formats included."""
from __future__ import annotations

import re

import jsonschema_rs
import pytest
from kpi_feed import _auth
from kpi_gen import H, bj

from kpi.domain import projection as P
from kpi.api.schemas import ByPath, OrderFactOut
from kpi.app import create_app
from kpi.settings import KpiSettings
from shared.clock import ManualClock
from shared.events import make_envelope
from shared.testing import eventually
from shared.topics import ROUTING_EVENTS

# The operations of the shared runtime (``shared.runtime.admin_router``,
# ``shared.observability.health_router``): the same in every service and modelled (or
# not) in shared/, not here. Listed so that this test names them and fails once they are
# modelled (then empty this set).
SHARED_UNMODELLED: set = set()  # the shared operations endpoints are modelled too (shared.operations)
# Answers 409 on the system clock the tests run on (it moves only a virtual clock).
NOT_CALLED = {("POST", "/admin/clock/advance")}
CSV = "text/csv"


def _operations(doc: dict) -> dict[tuple[str, str], dict]:
    return {(m.upper(), path): op for path, ops in doc["paths"].items() for m, op in ops.items()}


def _success(op: dict) -> tuple[str, dict]:
    """The operation's 2xx response: (media type, schema)."""
    (status,) = [s for s in op["responses"] if s.startswith("2")]
    ((media, body),) = op["responses"][status].get("content", {}).items()
    return media, body.get("schema", {})


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _undeclared(doc: dict) -> set[tuple[str, str]]:
    """Operations whose 2xx answer is not a declared model: a JSON object schema with
    properties (what a dict annotation or no annotation gives has none), or CSV."""
    out = set()
    for key, op in _operations(doc).items():
        media, schema = _success(op)
        if media == CSV and schema.get("type") == "string":
            continue
        s = _resolve(doc, schema)
        if not (media == "application/json" and s.get("type") == "object" and s.get("properties")):
            out.add(key)
    return out


def test_every_kpi_route_declares_its_response_model():
    doc = create_app(KpiSettings(environment="test")).openapi()
    ops = _operations(doc)
    assert len([k for k in ops if k[1].startswith("/v1/")]) == 17
    assert _undeclared(doc) == SHARED_UNMODELLED
    assert all(not path.startswith("/v1/") for _m, path in SHARED_UNMODELLED)
    # the KPI models forbid keys they do not declare (a key added to a handler without its
    # model fails loudly instead of vanishing from the answer), at every level
    seen, todo = set(), [_success(op)[1] for k, op in ops.items() if k[1].startswith("/v1/")]
    while todo:
        s = todo.pop()
        if "$ref" in s:
            name = s["$ref"].rsplit("/", 1)[1]
            if name in seen:
                continue
            seen.add(name)
            s = doc["components"]["schemas"][name]
            if s.get("type") == "object":
                assert s.get("additionalProperties") is False, name
        todo += [v for k in ("properties",) for v in s.get(k, {}).values()]
        todo += [x for k in ("anyOf", "oneOf") for x in s.get(k, [])]
        todo += [s[k] for k in ("items",) if isinstance(s.get(k), dict)]
    assert {"CompositeIndex", "MerchantIndex", "ByPath", "LateAuditLine", "PenaltyLine", "Statistics"} <= seen


def test_fixed_key_models_follow_the_projection():
    """The order-fact model and the by-path model list exactly the keys the handlers write."""
    fact_keys = [("amount_paid" if c == "amount_cents" else c[:-6]) if c.endswith("_cents") else c for c in P.FIELDS]
    assert list(OrderFactOut.model_fields) == fact_keys
    assert list(ByPath.model_fields) == list(P.PATHS)


class Conformance:
    """Calls the running service and validates each answer against the live OpenAPI."""

    def __init__(self, kpi, doc: dict, headers: dict) -> None:
        self.kpi, self.doc, self.headers = kpi, doc, headers
        self.ops = _operations(doc)
        self.called: set[tuple[str, str]] = set()
        self.failures: list[str] = []
        self._validators: dict = {}

    def _validator(self, key):
        if key not in self._validators:
            media, schema = _success(self.ops[key])
            self._validators[key] = media, jsonschema_rs.validator_for(
                {**schema, "components": self.doc["components"]}, validate_formats=True)
        return self._validators[key]

    async def __call__(self, method: str, template: str, path: dict | None = None, **kw):
        url = template.format(**(path or {}))
        r = await self.kpi.client.request(method, url, headers=self.headers, **kw)
        key = (method, template)
        self.called.add(key)
        where = f"{method} {url} {kw}"
        if not 200 <= r.status_code < 300:
            self.failures.append(f"{where}: {r.status_code} {r.text[:300]}")
            return None
        media, validator = self._validator(key)
        if not r.headers["content-type"].startswith(media):
            self.failures.append(f"{where}: content-type {r.headers['content-type']}, declared {media}")
        if media == CSV:
            return r.text
        body = r.json()
        errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(body)]
        if errors:
            self.failures.append(f"{where}: {errors[:5]}")
        return body

    async def every_read(self, orders: dict[str, str]) -> dict:
        """Each operation (but ``NOT_CALLED`` and the writes) once; the answers by route."""
        window = {"from": "2026-11-01", "to": "2026-11-30"}
        out = {}
        for template, path, params in [
            ("/health", None, {}), ("/ready", None, {}), ("/admin/clock", None, {}),
            ("/admin/dead-letters", None, {}), ("/admin/outbox", None, {}),
            ("/v1/facts/service-orders/{order_id}", {"order_id": orders.get("fact")}, {}),
            ("/v1/scorecards/weekly", None, {"week": "2026-11-16"}),
            ("/v1/scorecards/weekly.csv", None, {"week": "2026-11-16"}),
            ("/v1/rankings/weekly", None, {"week": "2026-11-16"}),
            ("/v1/flags", None, {"week": "2026-11-16"}),
            ("/v1/penalties", None, {}),
            ("/v1/service-express/scores", None, {"week": "2026-11-16"}),
            ("/v1/service-express/disqualifications", None, {}),
            ("/v1/billing", None, {}),
            ("/v1/statistics/{period}", {"period": "2026-11"}, {}),
            ("/v1/staffing/{merchant_id}", {"merchant_id": "m-a"}, window),
            ("/v1/composite-index", None, {"date": "2026-11-30"}),
            ("/v1/composite-index.csv", None, {"date": "2026-11-30"}),
            ("/v1/paid-transactions", None, window),
        ]:
            if template.startswith("/v1/facts/") and path["order_id"] is None:
                continue
            out[template] = await self("GET", template, path, params=params)
        return out


async def _routing(feed, type_: str, **data):
    key = data["manufacturer_id"]
    at = data.get("decided_at") or data.get("occurred_at")
    await feed.send(ROUTING_EVENTS, make_envelope(type_=type_, key=key, producer="consultation-routing",
                                                  occurred_at=at, data=data), key)


async def _seed(feed) -> dict[str, str]:
    """A month of history giving every field of every answer a value (and many a null):
    m-a: rated, audited, received, processed and refunded orders in three weeks (a
    scorecard with F4 not applicable, a bottom-10 flag), an arbitration; m-b: ten late
    audits (a late-audit penalty line), a 48 h penalty and an advance compensation; m-c:
    one order closed by itself within the hour (the platinum label);
    manufacturer mf: consultations in two weeks scoring under 80 (disqualified at the
    close), billable consultations, an on-behalf order, and a scorecard week without
    consultations (no consultation detail)."""
    ids = {}
    for day in (3, 10, 17):  # weeks of 11-02, 11-09, 11-16
        c = bj(2026, 11, day, 9)
        oid = await feed.created("m-a", c, problem_type="quality" if day != 10 else "logistics")
        await feed.act(oid, "m-a", c, "audit.approve_return", c + 2 * H, 2, to_state="awaiting_return_shipment")
        await feed.act(oid, "m-a", c, "fill_shipment", c + 10 * H, 3, to_state="awaiting_receipt",
                       actor_role="customer")
        await feed.act(oid, "m-a", c, "register_receipt", c + 24 * H, 4, to_state="pending_process")
        await feed.act(oid, "m-a", c, "process.refund", c + 30 * H, 5, to_state="provisionally_completed",
                       amount="199.00", completed_by="merchant")
        await feed.act(oid, "m-a", c, "rate", c + 40 * H, 6, stars=3 + (day == 17) * 2, recommend=day % 11)
        ids["fact"] = oid
    c = bj(2026, 11, 18, 9)
    arb = await feed.created("m-a", c, service_type="exchange", sku="sku-2")
    await feed.act(arb, "m-a", c, "arbitration.request", c + 6 * H, 2, to_state="arbitration", actor_role="customer")
    await feed.act(arb, "m-a", c, "arbitration.decide", c + 24 * H, 3, to_state="completed", actor_role="arbitrator",
                   outcome="refund", amount="100.00")
    for i in range(10):  # audited 13 h after creation: late
        c = bj(2026, 11, 17, 8, i)
        oid = await feed.created("m-b", c)
        await feed.act(oid, "m-b", c, "audit.approve_return", c + 13 * H, 2)
    await feed.act(oid, "m-b", c, "register_receipt", c + 20 * H, 3)
    await feed.penalty(oid, c + 68 * H)
    c = bj(2026, 11, 10, 8)
    adv = await feed.created("m-b", c)
    await feed.act(adv, "m-b", c, "system.advance_compensation", c + 7 * 24 * H, 2, to_state="refunded_by_system",
                   actor_role="system", amount="59.90")
    for day in (10, 17):
        t = bj(2026, 11, day, 10)
        await _routing(feed, "routing.decided", decision_id=f"ok-{day}", decided_at=t, channel="im",
                       entry_point="product_page", phase="pre_sale", target="manufacturer", reason="enrolled",
                       manufacturer_id="mf")
        await _routing(feed, "routing.decided", decision_id=f"no-{day}", decided_at=t, channel="im",
                       entry_point="product_page", phase="pre_sale", target="platform", reason="no_agents",
                       manufacturer_id="mf")
        await _routing(feed, "routing.billable_consultation", consultation_id=f"no-{day}", manufacturer_id="mf",
                       package=1 + (day == 17), cause="no_agents", channel="im", occurred_at=t)
    c = bj(2026, 11, 20, 9)  # m-c: rejected within the hour, by itself: platinum
    oid = await feed.created("m-c", c)
    await feed.act(oid, "m-c", c, "audit.reject", c + H, 2, to_state="rejected")
    c = bj(2026, 11, 24, 9)  # mf: a scorecard week (11-23) without consultations
    oid = await feed.created("mf", c, on_behalf=True, mode="platform")
    await feed.act(oid, "mf", c, "audit.approve_return", c + 2 * H, 2)
    return ids


async def test_every_answer_matches_its_declared_schema(start_service, database_url, feed):
    kpi = await start_service(create_app, KpiSettings, database_url=await database_url("kpi"),
                              platinum_min_peers=2)
    kpi.runtime.clock = ManualClock(bj(2026, 11, 30, 12))
    op = _auth(kpi, "platform_operator")
    r = await kpi.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    check = Conformance(kpi, doc, op)

    # an empty database: empty lists, null rates, zero staffing
    empty = await check.every_read({})
    assert check.failures == []
    assert empty["/v1/statistics/{period}"]["return_rate"] is None and empty["/v1/penalties"] == {"lines": []}

    ids = await _seed(feed)
    paid = [{"merchant_id": m, "date": d, "count": n}
            for m, d, n in [("m-a", "2026-11-10", 150), ("m-a", "2026-11-20", 50), ("m-b", "2026-11-17", 100),
                            ("m-c", "2026-11-20", 30), ("mf", "2026-11-24", 20)]]
    assert await check("POST", "/v1/paid-transactions", json={"items": paid}) == {
        "received": 5, "inserted": 5, "updated": 0, "unchanged": 0}

    async def applied():
        lines = (await kpi.client.get("/v1/penalties", headers=op)).json()["lines"]
        scores = (await kpi.client.get("/v1/service-express/scores", params={"week": "2026-11-23"},
                                       headers=op)).json()["scores"]
        ranked = (await kpi.client.get("/v1/rankings/weekly", params={"week": "2026-11-16"}, headers=op)).json()
        bills = (await kpi.client.get("/v1/billing", headers=op)).json()["lines"]
        st = (await kpi.client.get("/v1/statistics/2026-11", headers=op)).json()
        return ({x["kind"] for x in lines} == {"late_audit", "unprocessed_48h", "advance_compensation"}
                and scores and ranked["ranked"] == 3 and len(bills) == 3 and st["arbitrations"] == 1)

    await eventually(applied)
    for week in ("2026-11-09", "2026-11-16"):
        await check("POST", "/v1/periods/{week}/close", {"week": week})
    closed = await check("POST", "/v1/periods/{week}/close", {"week": "2026-11-16"})  # again: nothing new
    assert closed == {"week": "2026-11-16", "flagged": [], "disqualified": []}
    got = await check.every_read(ids)
    assert check.failures == []

    # the answers hold every shape the models allow (so the validation above means something)
    lines = {x["kind"]: x for x in got["/v1/penalties"]["lines"]}
    assert lines["late_audit"]["late_orders"] == 10 and "late_orders" not in lines["unprocessed_48h"]
    assert lines["advance_compensation"]["amount"] == "59.90"
    (mf,) = got["/v1/service-express/disqualifications"]["items"]
    assert mf["disqualified"] is True and re.fullmatch(r"\d{4}-\d\d-\d\dT.*\+00:00", mf["changed_at"])
    cards = {c["merchant_id"]: c for c in got["/v1/scorecards/weekly"]["scorecards"]}
    assert cards["m-a"]["indicators"]["F4"]["value"] is None and cards["m-a"]["indicators"]["F1"]["met"] is True
    assert got["/v1/flags"]["flags"] and got["/v1/rankings/weekly"]["ranked"] == 3
    fact = got["/v1/facts/service-orders/{order_id}"]
    assert fact["refund"] == "199.00" and fact["closed_at"] is None and fact["created_at"].endswith("+00:00")
    st = got["/v1/statistics/{period}"]
    assert st["return_rate"] is not None and st["nps"] is not None and st["top_problem_types"] and st["top_skus"]
    index = got["/v1/composite-index"]
    assert {m["merchant_id"] for m in index["merchants"]} >= {"m-a", "m-b"}
    assert any(v is not None for c in index["categories"] for v in c["platinum_benchmark"].values())
    assert any(m["warnings"] for m in index["merchants"]) and any(m["platinum"] for m in index["merchants"])
    assert any(m["completion_hours"] is None for m in index["merchants"])
    assert {x["item"] for x in got["/v1/billing"]["lines"]} == {
        "service_order", "consultation_package_1", "consultation_package_2"}
    se = {x["manufacturer_id"]: x for x in got["/v1/service-express/scores"]["scores"]}
    assert se["mf"]["consultation_detail"]["components"]["answer_rate"] == "0.5000"
    week = await check("GET", "/v1/service-express/scores", params={"week": "2026-11-23"})
    assert week["scores"][0]["consultation_detail"] is None and week["scores"][0]["after_sales"] is not None

    # the remaining operations and views: a re-qualification, a merchant's own view,
    # a quarter, an unchanged ingest
    assert (await check("POST", "/v1/service-express/{manufacturer_id}/requalify", {"manufacturer_id": "mf"},
                        json={"note": "new agents hired"}))["disqualified"] is False
    (mf,) = (await check("GET", "/v1/service-express/disqualifications"))["items"]
    assert (mf["disqualified"], mf["note"]) == (False, "new agents hired")
    await check("GET", "/v1/statistics/{period}", {"period": "2026-Q4"}, params={"top": 1})
    await check("POST", "/v1/paid-transactions", json={"items": paid[:1]})
    check.headers = _auth(kpi, "merchant_main", "m-a")
    mine = await check("GET", "/v1/composite-index", params={"merchant_id": "m-a"})
    assert [m["merchant_id"] for m in mine["merchants"]] == ["m-a"]
    await check("GET", "/v1/rankings/weekly", params={"week": "2026-11-16"})
    await check("GET", "/v1/billing", params={"month": "2026-11"})
    assert check.failures == []
    assert set(check.ops) - check.called == NOT_CALLED
