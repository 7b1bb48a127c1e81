"""Every route declares what it answers, and answers what it declares (issue 14: response
models on every route; schemathesis checks answers against the OpenAPI document in CI).

The models live in ``consultation_routing.api.schemas``; each answer below is checked
against the model its operation's OpenAPI entry names (``$ref``), and must come back
unchanged through that model: no key the model lacks, no value it would re-render."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from consultation_routing.api import schemas
from shared.auth import Principal, issue_token

from .test_api import CSV, ready

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
# The shared runtime's operations (``shared.observability.health_router``,
# ``shared.runtime.admin_router``): the same in every service and modelled (or not) in
# shared/, not here. The only operations allowed to lack a model, until shared/ gives them one.
SHARED_RUNTIME = {("GET", "/health"), ("GET", "/ready"), ("GET", "/admin/clock"),
                  ("POST", "/admin/clock/advance"), ("GET", "/admin/dead-letters"), ("GET", "/admin/outbox")}


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(m.upper(), path, op) for path, ops in doc["paths"].items() for m, op in ops.items() if m in HTTP_METHODS]


def _success_schema(op: dict) -> tuple[str, dict]:
    ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
    assert len(ok) == 1, ok
    (code, response), = ok.items()
    return code, response["content"]["application/json"]["schema"]


def _resolve(doc: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _has_properties(doc: dict, schema: dict, seen: tuple = ()) -> bool:
    """A JSON object with declared properties, all of them described (no bare ``{}``),
    recursively through nested objects and arrays."""
    schema = _resolve(doc, schema)
    if schema.get("type") != "object" or not schema.get("properties"):
        return False
    for name, prop in schema["properties"].items():
        if name in seen:
            continue
        for alt in prop.get("anyOf", [prop]):
            alt = _resolve(doc, alt)
            if not alt or alt == {"additionalProperties": True, "type": "object"}:
                return False
            if alt.get("type") == "object" and alt.get("properties") and not _has_properties(doc, alt, (*seen, name)):
                return False
            if alt.get("type") == "array" and not _resolve(doc, alt.get("items", {})):
                return False
    return True


async def test_every_operation_documents_an_object_answer(api):
    doc = api.app.openapi()
    ops = _operations(doc)
    assert ops
    undocumented = {(m, p) for m, p, op in ops if not _has_properties(doc, _success_schema(op)[1])}
    assert undocumented <= SHARED_RUNTIME, undocumented - SHARED_RUNTIME
    # the service's own operations: all of them modelled, and each by a model of api.schemas
    own = [(m, p, op) for m, p, op in ops if (m, p) not in SHARED_RUNTIME]
    assert len(own) == 8 and all(p.startswith("/v1/") for _m, p, _op in own)
    for _m, _p, op in own:
        assert issubclass(getattr(schemas, _success_schema(op)[1]["$ref"].rsplit("/", 1)[1]), schemas.Out)
    # extra="forbid" at every level: a key a route adds without its model fails its answer
    # (FastAPI validates the route's dict against the model) instead of vanishing from it
    nested = [name for name, s in doc["components"]["schemas"].items()
              if isinstance(getattr(schemas, name, None), type) and issubclass(getattr(schemas, name), schemas.Out)]
    assert {"EnrollmentOut", "HoursOut", "CapacityOut", "RowErrorOut", "Fallback"} <= set(nested)
    assert all(doc["components"]["schemas"][name]["additionalProperties"] is False for name in nested)


class Checker:
    """Calls the API and checks every 2xx answer against the model the OpenAPI names."""

    def __init__(self, api) -> None:
        self.api = api
        self.doc = api.app.openapi()
        self.seen: set[tuple[str, str]] = set()

    def model_for(self, method: str, template: str) -> tuple[int, type[BaseModel]]:
        code, schema = _success_schema(self.doc["paths"][template][method.lower()])
        return int(code), getattr(schemas, schema["$ref"].rsplit("/", 1)[1])

    async def call(self, method: str, template: str, path: str | None = None, **kw) -> dict:
        code, model = self.model_for(method, template)
        r = await self.api.client.request(method, path or template, **kw)
        assert r.status_code == code, r.text
        body = r.json()
        # extra="forbid" on every model: an undeclared key fails here too
        assert model.model_validate(body).model_dump(mode="json") == body, (template, body)
        self.seen.add((method, template))
        return body


async def test_every_answer_matches_its_declared_model(api):
    c = Checker(api)
    op = api.op
    enroll = "/v1/manufacturers/{manufacturer_id}/enrollment"
    disq = "/v1/manufacturers/{manufacturer_id}/disqualification"

    # enrollment: defaults (nullable capacity and hover text null), then every field set
    body = {"name": "Maker m-1", "categories": ["phones"], "im_queue_id": "q-m-1", "phone_extension": "8001"}
    e = await c.call("PUT", enroll, "/v1/manufacturers/m-1/enrollment", json=body, headers=op)
    assert e["capacity"]["max_queue_length"] is None and e["hover_text"] is None and e["disqualified_at"] is None
    full = {**body, "name": "Maker m-2", "categories": ["Phones", "appliances"], "hover_text": "厂商客服 8002",
            "phone_hours": {"start": "08:30", "end": "20:00"}, "serve_non_working_days": True,
            "capacity": {"min_agents": 2, "max_queue_length": 30, "max_expected_wait_s": 300}, "package": 2}
    e = await c.call("PUT", enroll, "/v1/manufacturers/m-2/enrollment", json=full, headers=op)
    assert e["capacity"]["max_expected_wait_s"] == 300 and e["package"] == 2
    e = await c.call("GET", enroll, "/v1/manufacturers/m-2/enrollment", headers=op)
    assert datetime.fromisoformat(e["updated_at"]).utcoffset() is not None

    # disqualification: reason and time set, then both null again
    d = await c.call("POST", disq, "/v1/manufacturers/m-2/disqualification", json={"reason": "score 0"}, headers=op)
    assert d["disqualified"] is True and datetime.fromisoformat(d["disqualified_at"]).utcoffset() is not None
    d = await c.call("DELETE", disq, "/v1/manufacturers/m-2/disqualification", headers=op)
    assert (d["disqualified"], d["disqualified_reason"], d["disqualified_at"]) == (False, None, None)

    # catalogue: good rows, bad rows reported by line (CSV and JSON lines)
    csv_headers = {**op, "content-type": "text/csv"}
    s = await c.call("POST", "/v1/catalogue/skus", content=(CSV + ",m-1,phones\n").encode(), headers=csv_headers)
    assert (s["accepted"], s["rejected"], s["errors"][0]["line"]) == (3, 1, 5)
    jl = b'{"sku": "sku-9", "manufacturer_id": "m-2", "category": "phones"}\nnot json\n'
    s = await c.call("POST", "/v1/catalogue/skus", content=jl, headers={**op, "content-type": "application/x-ndjson"})
    assert (s["accepted"], s["rejected"]) == (1, 1)

    # queue state: expected wait unknown (null), then known
    q = await c.call("PUT", "/v1/queues/{manufacturer_id}/state", "/v1/queues/m-1/state", headers=op,
                     json={"agents_online": 2, "queue_length": 0})
    assert q["expected_wait_s"] is None
    q = await c.call("PUT", "/v1/queues/{manufacturer_id}/state", "/v1/queues/m-2/state", headers=op,
                     json={"agents_online": 5, "queue_length": 3, "expected_wait_s": 40})
    assert q["expected_wait_s"] == 40

    # GET /v1/route: manufacturer and platform targets, both channels,
    # the storefront's consultation and an operator's what-if
    sf = api.storefront
    answers = [
        await c.call("GET", "/v1/route", params={"channel": "im", "entry_point": "product_page", "sku": "sku-1"},
                     headers=sf),
        await c.call("GET", "/v1/route", params={"channel": "phone", "entry_point": "product_page", "sku": "sku-1",
                                                 "consultation_id": "c-1"}, headers=sf),
        await c.call("GET", "/v1/route", params={"channel": "phone", "entry_point": "after_sales_page", "sku": "nope",
                                                 "phase": "after_sale"}, headers=sf),
        await c.call("GET", "/v1/route", params={"channel": "im", "entry_point": "product_page", "sku": "sku-1",
                                                 "at": "2026-03-03T22:00:00+08:00"}, headers=op),
    ]
    assert [(a["target"], a["reason"], a["what_if"]) for a in answers] == [
        ("manufacturer", "enrolled", False), ("manufacturer", "enrolled", False),
        ("platform", "unknown_sku", False), ("platform", "out_of_hours", True)]
    assert answers[1]["extension"] == "8001" and answers[0]["fallback"]["hotline"] is None

    # transfers: IM (queue id) by the manufacturer's staff, phone (hotline) by an operator
    staff = {"Authorization": "Bearer " + issue_token(Principal("merchant_staff", "s-1", merchant_id="m-1"),
                                                      api.rt.settings.token_secret, now=api.clock.now())}
    t = await c.call("POST", "/v1/transfers", json={
        "decision_id": answers[0]["decision_id"], "manufacturer_id": "m-1", "agent_id": "agent-7",
        "reason": "a coupon question", "channel": "im", "sku": "sku-1"}, headers=staff)
    assert (t["queue_id"], t["hotline"]) == ("platform", None)
    t = await c.call("POST", "/v1/transfers", json={
        "decision_id": answers[1]["decision_id"], "manufacturer_id": "m-1", "agent_id": "agent-8",
        "reason": "warranty elsewhere", "channel": "phone"}, headers=op)
    assert (t["queue_id"], t["hotline"]) == (None, "400-606-5500")

    # every route of the service's own API was called (a route added later needs a case here)
    own = {(m, p) for m, p, _ in _operations(c.doc) if p.startswith("/v1/")}
    assert own - c.seen == set()


async def test_the_route_answer_on_a_degraded_or_disqualified_path_matches_too(api):
    """Answers with every optional field null: a disqualified manufacturer's SKU on IM."""
    await ready(api)
    c = Checker(api)
    await api.client.post("/v1/manufacturers/m-1/disqualification", json={"reason": "r"}, headers=api.op)
    a = await c.call("GET", "/v1/route", params={"channel": "im", "entry_point": "shop_page", "sku": "sku-1"},
                     headers=api.storefront)
    assert (a["reason"], a["extension"], a["hover_text"], a["hotline"]) == ("disqualified", None, None, None)
