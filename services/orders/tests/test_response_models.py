"""Response models: every operation of the orders API documents its 2xx answer (an object
schema, or a non-JSON content type), and the answers of a realistic run (every route,
both back offices, the storefront, accounts, the token endpoint) validate against the
schema the OpenAPI document declares for their status, as schemathesis checks them in CI.

On PostgreSQL the order actions and applications are answered by the fast path
(api/fast.py), which FastAPI never validates: these tests are what keeps those answers
and their documented models together."""
from __future__ import annotations

import base64
import json
from decimal import Decimal

import jsonschema_rs
import pytest

from orders.api import responses
from orders.app import create_app
from orders.handlers import accounts, queries
from orders.settings import OrdersSettings
from shared.auth import Principal

M, P, S = "/v1/merchant/service-orders", "/v1/platform/service-orders", "/v1/storefront/service-orders"
METHODS = ("get", "post", "put", "patch", "delete")
JPEG = b"\xff\xd8\xff\xe0 not really a photo \xff\xd9"


def _operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method, path, op


def _json_schema(doc: dict, schema: dict) -> dict:
    """A schema of the document, standalone (its $refs resolved against the components)."""
    return {**schema, "components": doc["components"]}


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_operation_documents_an_object_or_a_binary_2xx_answer(tmp_path):
    app = create_app(OrdersSettings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db",
                                    data_dir=str(tmp_path), log_json=False))
    doc = app.openapi()
    missing = []
    for method, path, op in _operations(doc):
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        if not ok:
            missing.append(f"{method.upper()} {path}: no 2xx response")
        for code, r in ok.items():
            content = r.get("content", {})
            if "application/json" in content:
                schema = content["application/json"].get("schema", {})
                resolved = _resolve(doc, schema)
                if "$ref" not in schema or resolved.get("type") != "object" or not resolved.get("properties"):
                    missing.append(f"{method.upper()} {path} {code}: not an object model ({schema})")
                elif resolved.get("additionalProperties") is not False and not path.startswith(("/admin", "/health",
                                                                                                  "/ready")):
                    missing.append(f"{method.upper()} {path} {code}: the model allows extra keys")
            elif not content or any(c.get("schema", {}).get("format") != "binary" for c in content.values()):
                missing.append(f"{method.upper()} {path} {code}: neither JSON nor a binary content type ({content})")
    assert not missing, "\n".join(missing)
    # the download is the one binary answer
    binary = [(m, p) for m, p, op in _operations(doc) if "*/*" in op["responses"].get("200", {}).get("content", {})]
    assert binary == [("get", f"{M}/{{order_id}}/attachments/{{att_id}}"),
                      ("get", f"{P}/{{order_id}}/attachments/{{att_id}}")]


class Checked:
    """Calls the API by route template and validates every answer against the document."""

    def __init__(self, api) -> None:
        self.api = api
        self.doc = api.app.openapi()
        self.covered: set[tuple[str, str]] = set()
        self._validators: dict[tuple[str, str, int], object] = {}

    def _validator(self, method: str, template: str, status: int):
        key = (method, template, status)
        if key not in self._validators:
            response = self.doc["paths"][template][method]["responses"][str(status)]
            schema = response["content"]["application/json"]["schema"]
            self._validators[key] = jsonschema_rs.validator_for(_json_schema(self.doc, schema), validate_formats=True)
        return self._validators[key]

    async def call(self, method: str, template: str, headers: dict, body=None, status: int = 200, **params):
        r = await self.api.client.request(method.upper(), template.format(**params), headers=headers,
                                          **({} if body is None else {"json": body}))
        assert r.status_code == status, f"{method.upper()} {template}: {r.status_code} {r.text}"
        template = template.partition("?")[0]
        self.covered.add((method, template))
        if r.headers["content-type"].startswith("application/json"):
            errors = [f"{e.instance_path}: {e.message}"
                      for e in self._validator(method, template, status).iter_errors(r.json())]
            assert not errors, f"{method.upper()} {template} {status}: " + "\n".join(errors)
            return r.json()
        return r

    def post(self, template: str, headers: dict, body=None, status: int = 200, **params):
        return self.call("post", template, headers, {} if body is None else body, status, **params)

    def get(self, template: str, headers: dict, status: int = 200, **params):
        return self.call("get", template, headers, None, status, **params)

    async def apply(self, sf: dict, merchant: str, customer: str = "c-1") -> str:
        body = self.api.apply_body(customer, merchant_id=merchant)
        headers = {**sf, "X-Customer-Id": customer, "Idempotency-Key": f"k-{body['sales_order_id']}-{merchant}"}
        o = await self.post(S, headers, body, status=201)
        return o["id"]


async def _back_office(c: Checked, w: dict, *, prefix: str, merchant: str, handler: dict, assigner: dict,
                       staff_id: str) -> dict:
    """Every back-office order route under ``prefix`` answered 2xx at least once; returns some order ids."""
    sf = c.api.cust(w["sf"])
    act = f"{prefix}/{{order_id}}/{{action}}"

    async def do(order_id: str, action: str, headers: dict, body=None) -> dict:
        return await c.post(act.replace("{action}", action), headers, body, order_id=order_id)

    async def returned(order_id: str, *, claim: bool = True) -> None:
        if claim:
            await do(order_id, "claim", handler)
        await do(order_id, "audit", handler, {"decision": "approve_return", "opinion": "send it back"})
        await c.post(f"{S}/{{order_id}}/shipment", sf, {"carrier": "SF", "tracking_number": f"SF-{order_id[:8]}",
                                                        "freight_paid": "12.00"}, order_id=order_id)

    # a refund, with an audit attachment, a reminder, the shipment filled by the back office,
    # edited freight; then the payout, the customer's confirmation and rating
    refunded = await c.apply(w["sf"], merchant)
    await do(refunded, "claim", handler, {"note": "mine"})
    await do(refunded, "audit", handler, {"decision": "approve_return", "opinion": "send it back", "attachments": [
        {"filename": "photo \"1\" été.jpg", "content_type": "image/jpeg",
         "content_base64": base64.b64encode(JPEG).decode()}]})
    await do(refunded, "remind-to-ship", handler)
    await do(refunded, "shipment", handler, {"carrier": "SF", "tracking_number": "SF-1", "freight_paid": "12.00"})
    await do(refunded, "freight", handler, {"freight_to_return": "5.00"})
    await do(refunded, "receipt", handler, {"condition": "screen cracked", "note": "photos taken"})
    await do(refunded, "process", handler, {"decision": "refund", "amount": "199.00", "reason": "quality"})
    await c.post(f"{P}/{{order_id}}/refund-paid", w["op"], {"payout_reference": f"PAY-{refunded[:8]}"},
                 order_id=refunded)
    await c.post(f"{S}/{{order_id}}/confirm", sf, order_id=refunded)
    await c.post(f"{S}/{{order_id}}/rating", sf, {"stars": 4, "text": "fast", "recommend": 9}, order_id=refunded)
    detail = await c.get(f"{prefix}/{{order_id}}", handler, order_id=refunded)
    att = detail["attachments"][0]
    r = await c.get(f"{prefix}/{{order_id}}/attachments/{{att_id}}", handler, order_id=refunded, att_id=att["id"])
    assert r.headers["content-type"] == "image/jpeg" and r.content == JPEG

    # assigned, feedback requested and given, an exchange shipped, a message, a reply, resolved
    exchanged = await c.apply(w["sf"], merchant)
    await do(exchanged, "assign", assigner, {"staff_id": staff_id})
    await do(exchanged, "audit", handler, {"decision": "request_feedback", "opinion": "which colour?"})
    await c.post(f"{S}/{{order_id}}/feedback", sf, {"text": "black", "evidence": ["img-1"]}, order_id=exchanged)
    await returned(exchanged, claim=False)
    await do(exchanged, "receipt", handler, {"condition": "as new"})
    await do(exchanged, "process", handler, {"decision": "exchange", "sku": "sku-2"})
    await do(exchanged, "exchange-shipment", handler, {"carrier": "JD", "tracking_number": "JD-9"})
    await c.post(f"{S}/{{order_id}}/messages", sf, {"text": "the new one is scratched"}, order_id=exchanged)
    await do(exchanged, "replies", handler, {"text": "we will call you"})
    await do(exchanged, "resolve", handler, {"note": "called"})
    await c.get(f"{prefix}/{{order_id}}", handler, order_id=exchanged)

    # a repair shipped back
    repaired = await c.apply(w["sf"], merchant)
    await returned(repaired)
    await do(repaired, "receipt", handler, {"condition": "does not boot"})
    await do(repaired, "process", handler, {"decision": "repair"})
    await do(repaired, "repair-shipped-back", handler, {"carrier": "SF", "tracking_number": "SF-R"})

    # the original returned, cancelled, then arbitration asked by the back office and decided
    arbitrated = await c.apply(w["sf"], merchant)
    await returned(arbitrated)
    await do(arbitrated, "receipt", handler, {"condition": "fine"})
    await do(arbitrated, "process", handler, {"decision": "return_original", "note": "agreed by phone",
                                             "customer_agreed_by_phone": True})
    await do(arbitrated, "cancel-outcome", handler, {"note": "customer disagreed"})
    await do(arbitrated, "arbitration", handler, {"reason": "customer insists"})
    queue = await c.get("/v1/platform/arbitration", w["op"])
    assert arbitrated in [o["id"] for o in queue["items"]]
    await c.post(f"{P}/{{order_id}}/arbitration-decision", w["arb"],
                 {"outcome": "refund", "amount": "100.00", "note": "half the price"}, order_id=arbitrated)

    # the customer asks for arbitration; abandoned by the customer and by the back office
    disputed = await c.apply(w["sf"], merchant)
    await returned(disputed)
    await c.post(f"{S}/{{order_id}}/arbitration", sf, {"reason": "no answer"}, order_id=disputed)
    await c.post(f"{S}/{{order_id}}/abandon", sf, {"reason": "changed my mind"}, order_id=await c.apply(w["sf"], merchant))
    await do(await c.apply(w["sf"], merchant), "abandon", handler, {"reason": "by phone", "note": "called at 10:00"})

    # batches: one order done, one unknown id each
    audited = await c.apply(w["sf"], merchant)
    await do(audited, "claim", handler)
    batch = await c.post(f"{prefix}/batch-audit", handler, {"order_ids": [audited, "no-such-order"],
                                                            "decision": "reject", "opinion": "out of policy"})
    assert [x["ok"] for x in batch["results"]] == [True, False]
    batch = await c.post(f"{prefix}/batch-assign", assigner, {"order_ids": [await c.apply(w["sf"], merchant),
                                                                            "no-such-order"], "staff_id": staff_id})
    assert [x["ok"] for x in batch["results"]] == [True, False]

    found = await c.get(f"{prefix}?state=completed&category=phones&limit=5", handler)
    assert found["items"] and found["counts_by_state"]
    return {"refunded": refunded, "exchanged": exchanged}


@pytest.fixture
async def checked(api, world):
    c = Checked(api)
    # m-2: served in platform mode (the operator handles its orders), with a staff member to assign
    m2 = await c.post("/v1/platform/merchants", world["op"], {
        "id": "m-2", "name": "Merchant m-2", "kind": "manufacturer", "mode": "platform",
        "category_modes": {"tablets": "customer_contact"}, "contact_phone": "400-000-2222",
        "return_address": "Shanghai, 2 Return Rd", "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"},
                                                            {"sku": "sku-2", "category": "phones", "price": "199.00"}]},
        status=201)
    creds = m2["main_account"]
    token = await c.post("/v1/oauth/token", {}, {"grant_type": "client_credentials", "client_id": creds["client_id"],
                                                 "client_secret": creds["client_secret"]})
    world["m2_main"] = {"Authorization": f"Bearer {token['access_token']}"}
    await c.post("/v1/merchant/staff", world["m2_main"], {"login": "bob", "name": "Bob", "permissions": ["audit"],
                                                          "categories": ["phones"]}, status=201)
    return c


async def test_every_answer_validates_against_its_documented_schema(checked, world):
    c, w = checked, world
    await _back_office(c, w, prefix=M, merchant="m-1", handler=w["staff"], assigner=w["main"], staff_id="m-1.alice")
    await _back_office(c, w, prefix=P, merchant="m-2", handler=w["op"], assigner=w["op"], staff_id="m-2.bob")

    # an application again with its key: 200, the same order
    body = c.api.apply_body()
    first = await c.post(S, {**c.api.cust(w["sf"]), "Idempotency-Key": "again"}, body, status=201)
    assert await c.post(S, {**c.api.cust(w["sf"]), "Idempotency-Key": "again"}, body) == first

    sf = c.api.cust(w["sf"])
    mine = await c.get(S, sf)
    assert mine["items"]
    rated = next(o["id"] for o in mine["items"] if o["state"] == "completed")
    await c.get(f"{S}/{{order_id}}", sf, order_id=rated)

    # accounts
    staff = await c.get("/v1/merchant/staff", w["main"])
    assert [s["id"] for s in staff["items"]] == ["m-1.alice"]
    await c.post("/v1/merchant/staff", w["main"], {"login": "carol", "name": "Carol", "permissions": ["process"],
                                                   "categories": ["phones", "tvs"]}, status=201)
    await c.call("patch", "/v1/merchant/staff/{staff_id}", w["main"], {"active": False}, staff_id="m-1.carol")
    await c.get("/v1/platform/merchants/{merchant_id}", w["arb"], merchant_id="m-1")
    await c.call("patch", "/v1/platform/merchants/{merchant_id}", w["op"],
                 {"category_modes": {"tvs": "platform"}, "served_by_platform": False}, merchant_id="m-1")
    await c.call("put", "/v1/platform/merchants/{merchant_id}/skus", w["op"],
                 [{"sku": "sku-9", "category": "tvs", "price": "1999.5"}], merchant_id="m-1")
    client = await c.post("/v1/platform/clients", w["op"], {"client_id": "arb-2", "role": "arbitrator",
                                                             "name": "second arbitrator"}, status=201)
    await c.post("/v1/oauth/token", {}, {"grant_type": "client_credentials", **{
        k: client[k] for k in ("client_id", "client_secret")}})

    # the operations endpoints every service has
    await c.get("/health", {})
    await c.get("/admin/clock", w["op"])
    await c.get("/admin/outbox", w["op"])
    await c.get("/admin/dead-letters", w["op"])

    every = {(m, p) for m, p, _op in _operations(c.doc)}
    # not here: /ready answers 503 (no lifespan under the test client: the runtime is not
    # started) and the clock is not a virtual one (409); the shared library tests them
    assert every - c.covered == {("get", "/ready"), ("post", "/admin/clock/advance")}


async def test_validated_answers_keep_the_handlers_bytes(checked, world):
    """The GET (and account) routes go through FastAPI's validation and serialization by
    their model: the answer must stay the handler's dict, keys in the same order."""
    c, w = checked, world
    ids = await _back_office(c, w, prefix=M, merchant="m-1", handler=w["staff"], assigner=w["main"],
                             staff_id="m-1.alice")
    rt = c.api.rt
    main = Principal("merchant_main", "m-1.main", merchant_id="m-1")
    customer = Principal("storefront", "web", customer_id="c-1")
    same = [
        (f"{M}/{ids['refunded']}", w["main"], await queries.view(rt, main, ids["refunded"])),
        (f"{M}/{ids['exchanged']}", w["main"], await queries.view(rt, main, ids["exchanged"])),
        (f"{S}/{ids['refunded']}", c.api.cust(w["sf"]), await queries.view(rt, customer, ids["refunded"])),
        (f"{M}?limit=3", w["main"], await queries.search(rt, main, {}, 3, 0)),
        ("/v1/platform/merchants/m-1", w["op"], await accounts.get_merchant(rt, "m-1")),
        ("/v1/merchant/staff", w["main"], {"items": await accounts.list_staff(rt, "m-1")}),
    ]
    for url, headers, expected in same:
        r = await c.api.client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert json.dumps(r.json()) == json.dumps(expected), url  # values and key order


async def test_action_answers_are_the_documented_models(checked, world):
    """The actions answer a JSONResponse (not validated by FastAPI): the models must
    describe both sides exactly (the storefront never gets the back-office fields)."""
    c, w = checked, world
    oid = await c.apply(w["sf"], "m-1")
    claimed = await c.post(f"{M}/{{order_id}}/claim", w["staff"], order_id=oid)
    assert responses.ActionResult.model_validate(claimed).model_dump() == claimed
    abandoned = await c.post(f"{S}/{{order_id}}/abandon", c.api.cust(w["sf"]), order_id=oid)
    assert responses.CustomerActionResult.model_validate(abandoned).model_dump() == abandoned
    assert set(claimed) - set(abandoned) == {"freight_to_return", "locked_from", "return_freight_payer"}


async def test_an_amount_without_cents_is_answered_with_two_places(checked, world):
    """The application's answer, the hot path's cached copy and later reads agree: 199 → "199.00"."""
    c, w = checked, world
    sf = c.api.cust(w["sf"])
    for amount in (199, "199", "199.5"):
        o = await c.post(S, {**sf, "Idempotency-Key": f"cents-{amount!r}"},
                         c.api.apply_body(amount_paid=amount), status=201)
        want = f"{Decimal(str(amount)):.2f}"
        assert o["amount_paid"] == want
        claimed = await c.post(f"{M}/{{order_id}}/claim", w["staff"], order_id=o["id"])
        assert claimed["amount_paid"] == want
        assert (await c.get(f"{M}/{{order_id}}", w["staff"], order_id=o["id"]))["amount_paid"] == want


def test_money_is_two_places():
    assert responses.OrderSummary.model_json_schema()["properties"]["amount_paid"]["pattern"] == responses.MONEY_PATTERN
    with pytest.raises(ValueError):
        responses.SkuOut(sku="a", category="b", price="1.5")


