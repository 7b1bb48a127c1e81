"""Every route declares what it answers, and answers what it declares (issue 14: response
models on every route; schemathesis checks answers against the OpenAPI document in CI).

The models live in ``notifier.api.schemas``; each answer below is checked against the model its
operation's OpenAPI entry names (``$ref``) and must come back unchanged through that model:
no key the model lacks, no value it would re-render. The data is what the service really
holds: messages queued, sent, delivered, failed (bad number, missing field, provider receipt)
and cancelled (stale deadline), read and unread in-site messages, template versions,
phone reveals."""
from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest
from pydantic import BaseModel

from notifier.api import schemas
from notifier.models import SeenTransition
from notifier.parts import notifier_parts
from notifier.adapters.providers import sign
from shared.testing import eventually

pytestmark = pytest.mark.broker

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
SECRET = "response-models-secret-0123456789-abcdef"
ADDRESS = "上海市浦东新区张江路100号 售后仓"
# The shared runtime's operations (``shared.observability``, ``shared.runtime``): the same in
# every service and modelled in shared/, not here.
SHARED_RUNTIME = {("GET", "/health"), ("GET", "/ready"), ("GET", "/admin/clock"),
                  ("POST", "/admin/clock/advance"), ("GET", "/admin/dead-letters"), ("GET", "/admin/outbox")}
OWN_OPERATIONS = 14


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


def _has_properties(doc: dict, schema: dict) -> bool:
    """A JSON object with declared properties, all of them described (no bare ``{}``),
    recursively through nested objects and arrays."""
    schema = _resolve(doc, schema)
    if schema.get("type") != "object" or not schema.get("properties"):
        return False
    for prop in schema["properties"].values():
        for alt in prop.get("anyOf", [prop]):
            alt = _resolve(doc, alt)
            if not alt or alt == {"additionalProperties": True, "type": "object"}:
                return False
            if alt.get("type") == "object" and alt.get("properties") and not _has_properties(doc, alt):
                return False
            if alt.get("type") == "array":
                item = _resolve(doc, alt.get("items", {}))
                if not item or (item.get("type") == "object" and not _has_properties(doc, item)):
                    return False
    return True


@pytest.fixture
async def api(notifier_factory):
    # The dispatcher is stepped by hand: messages are seen queued, then sent.
    return await notifier_factory(sms_gateway_secret=SECRET, dispatch_interval_s=3600)


async def test_every_operation_documents_an_object_answer(api):
    doc = api.svc.app.openapi()
    ops = _operations(doc)
    undocumented = {(m, p) for m, p, op in ops if not _has_properties(doc, _success_schema(op)[1])}
    assert undocumented <= SHARED_RUNTIME, undocumented - SHARED_RUNTIME
    own = [(m, p, op) for m, p, op in ops if (m, p) not in SHARED_RUNTIME]
    assert len(own) == OWN_OPERATIONS and all(p.startswith("/v1/") for _m, p, _op in own)
    for _m, _p, op in own:
        assert issubclass(getattr(schemas, _success_schema(op)[1]["$ref"].rsplit("/", 1)[1]), schemas.Out)
    # extra="forbid" at every level: a key a route adds without its model fails its answer
    nested = [name for name, s in doc["components"]["schemas"].items()
              if isinstance(getattr(schemas, name, None), type) and issubclass(getattr(schemas, name), schemas.Out)]
    assert {"MessageOut", "TemplateOut", "InboxItemOut", "RevealOut"} <= set(nested)
    assert all(doc["components"]["schemas"][name]["additionalProperties"] is False for name in nested)
    # times are documented as date-time strings
    message = doc["components"]["schemas"]["MessageOut"]["properties"]
    assert message["created_at"]["format"] == "date-time"
    assert {"type": "string", "format": "date-time"}.items() <= next(
        a for a in message["sent_at"]["anyOf"] if a.get("type") == "string").items()


class Checker:
    """Calls the API and checks every 2xx answer against the model the OpenAPI names."""

    def __init__(self, api) -> None:
        self.api = api
        self.doc = api.svc.app.openapi()
        self.seen: set[tuple[str, str]] = set()

    def model_for(self, method: str, template: str) -> tuple[int, type[BaseModel]]:
        code, schema = _success_schema(self.doc["paths"][template][method.lower()])
        return int(code), getattr(schemas, schema["$ref"].rsplit("/", 1)[1])

    async def call(self, method: str, template: str, path: str | None = None, **kw) -> dict:
        code, model = self.model_for(method, template)
        r = await self.api.client.request(method, path or template, **kw)
        assert r.status_code == code, r.text
        body = r.json()
        assert model.model_validate(body).model_dump(mode="json") == body, (template, body)
        self.seen.add((method, template))
        return body


async def _seen(api, order) -> None:
    async def check():
        async with api.rt.sessions() as s:
            return await s.get(SeenTransition, (order.order_id, order.version))
    await eventually(check)


def _signed(message_id: str, status: str, now: datetime) -> tuple[bytes, dict]:
    raw = json.dumps({"message_id": message_id, "status": status, "detail": "空号" if status == "failed" else None},
                     ensure_ascii=False).encode()
    ts, nonce = str(int(now.timestamp())), uuid.uuid4().hex
    return raw, {"content-type": "application/json", "x-timestamp": ts, "x-nonce": nonce,
                 "x-signature": sign(SECRET, ts, nonce, raw)}


async def test_every_answer_matches_its_declared_model(api, feed_for):
    c = Checker(api)
    op = api.operator
    sf = api.headers("storefront", customer_id="c-1")
    merchant = api.headers("merchant_main", merchant_id="m-1")

    # templates: the seeded ones, a new version, its preview
    t = await c.call("GET", "/v1/templates", headers=op)
    assert {x["key"] for x in t["items"]} >= {"audit_rejected", "ship_back_reminder"}
    saved = await c.call("PUT", "/v1/templates/{key}", "/v1/templates/audit_rejected", headers=op, json={
        "title": "审核结果", "body": "售后单${number}未通过：${opinion}", "variables": ["number", "opinion"]})
    assert saved["version"] == 2 and datetime.fromisoformat(saved["created_at"]).utcoffset() is not None
    v = await c.call("GET", "/v1/templates/{key}/versions", "/v1/templates/audit_rejected/versions", headers=op)
    assert [x["version"] for x in v["items"]] == [1, 2]
    p = await c.call("POST", "/v1/templates/{key}/preview", "/v1/templates/audit_rejected/preview", headers=op,
                     json={"variables": {"number": "SO1", "opinion": "过期"}})
    assert p["text"] == "售后单SO1未通过：过期"

    # messages in every status: an approval (SMS queued then sent, in-site delivered), an
    # auto-refund (merchant copies), a bad number (failed), a missing field (failed), a
    # reminder whose deadline went stale while queued (cancelled)
    o = feed_for(api)
    await o.created()
    await o.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    await o.act("system.auto_refund", "refunded_by_system", amount="199.00")
    bad = feed_for(api, customer_phone="12345")
    await bad.created()
    await bad.act("audit.reject", "rejected", opinion="x")
    missing = feed_for(api)
    await missing.created()
    await missing.act("exchange.shipped", carrier="顺丰")
    stale = feed_for(api)
    await stale.created()
    await stale.act("audit.approve_return", "awaiting_return_shipment", return_address=ADDRESS)
    armed = stale.version
    await _seen(api, stale)
    await stale.fired("remind_customer", "ship_back_reminder_1", order_version=armed,
                      cancelled_by=["action:fill_shipment"], day=5)
    await api.wait_messages(stale.order_id, 1, kind="ship_back_reminder", channel="sms", status="queued")
    await api.wait_messages(o.order_id, 3, channel="sms", status="queued")  # customer x2, merchant
    queued = await c.call("GET", "/v1/messages", params={"order_id": o.order_id, "status": "queued"}, headers=op)
    assert len(queued["items"]) == 3 and all(m["next_attempt_at"] and m["sent_at"] is None for m in queued["items"])
    await stale.act("fill_shipment", "awaiting_receipt", carrier="顺丰", tracking_number="SF1")
    await _seen(api, stale)
    await notifier_parts(api.rt).dispatcher.step()
    await api.wait_messages(o.order_id, 3, channel="sms", status="sent")
    await api.wait_messages(bad.order_id, 1, channel="sms", status="failed")
    await api.wait_messages(missing.order_id, 1, status="failed")

    # delivery receipts: one delivered, one failed
    sent = [m for m in (await c.call("GET", "/v1/messages", params={"order_id": o.order_id}, headers=op))["items"]
            if m["channel"] == "sms"]
    raw, headers = _signed(sent[0]["provider_message_id"], "delivered", api.rt.clock.now())
    rc = await c.call("POST", "/v1/sms/receipts", content=raw, headers=headers)
    assert rc == {"id": sent[0]["id"], "status": "delivered"}
    raw, headers = _signed(sent[1]["provider_message_id"], "failed", api.rt.clock.now())
    assert (await c.call("POST", "/v1/sms/receipts", content=raw, headers=headers))["status"] == "failed"

    everything = (await c.call("GET", "/v1/messages", params={"limit": 500}, headers=op))["items"]
    assert {m["status"] for m in everything} == {"sent", "delivered", "failed", "cancelled"}
    assert any(m["receipt"] for m in everything) and any(m["delivered_at"] for m in everything)
    assert any(m["template_version"] is None or m["last_error"] for m in everything)
    for m in everything:
        assert datetime.fromisoformat(m["created_at"]).utcoffset() is not None
    summary = await c.call("GET", "/v1/messages/summary", headers=op)
    assert summary["failed_total"] == len([m for m in everything if m["status"] == "failed"]) == len(summary["failures"])
    assert sum(g["count"] for g in summary["groups"]) == len(everything)
    await c.call("GET", "/v1/messages", params={"order_id": o.order_id}, headers=sf)
    await c.call("GET", "/v1/messages", params={"order_id": o.order_id}, headers=merchant)

    # phones: masked contact, one recorded reveal of each kind, the reveal log
    contact = await c.call("GET", "/v1/order-contacts/{order_id}", f"/v1/order-contacts/{o.order_id}", headers=op)
    assert contact["customer_phone"] == "138****8000" and contact["return_address"] == ADDRESS
    await c.call("GET", "/v1/order-contacts/{order_id}", f"/v1/order-contacts/{bad.order_id}", headers=op)
    await c.call("POST", "/v1/messages/{message_id}/reveal-phone", f"/v1/messages/{sent[0]['id']}/reveal-phone",
                 json={"reason": "客户投诉未收到短信"}, headers=op)
    await c.call("POST", "/v1/order-contacts/{order_id}/reveal", f"/v1/order-contacts/{o.order_id}/reveal",
                 json={"reason": "回访客户"}, headers=op)
    log = await c.call("GET", "/v1/phone-reveals", headers=op)
    assert log["total"] == 2 and {e["message_id"] is None for e in log["items"]} == {True, False}

    # in-site messages: unread list, one read, then all
    box = await c.call("GET", "/v1/inbox", headers=sf)
    assert box["unread"] >= 2 and all(not i["read"] for i in box["items"])
    read = await c.call("POST", "/v1/inbox/{message_id}/read", f"/v1/inbox/{box['items'][0]['id']}/read", headers=sf)
    assert read == {"id": box["items"][0]["id"], "read": True}
    box = await c.call("GET", "/v1/inbox", headers=sf)
    assert {i["read"] for i in box["items"]} == {True, False}
    assert (await c.call("POST", "/v1/inbox/read-all", headers=merchant))["marked"] >= 1

    # every route of the service's own API was called (a route added later needs a case here)
    own = {(m, p) for m, p, _ in _operations(c.doc) if (m, p) not in SHARED_RUNTIME}
    assert own - c.seen == set()
