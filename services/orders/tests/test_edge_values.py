"""Edge values: every query and path parameter is bounded; out of range is a 422 in the
error shape (``validation_error``), never a 500 or a database error."""
import pytest

M = "/v1/merchant/service-orders"
P = "/v1/platform/service-orders"
S = "/v1/storefront/service-orders"

# (who, path) of every list endpoint
LISTS = [("staff", M), ("op", P), ("arb", "/v1/platform/arbitration"), ("customer", S)]

BAD_PAGES = ["offset=9223372036854775808", "offset=-1", "offset=1000001", "limit=0", "limit=201",
             "limit=99999999999999999999", "offset=abc"]


def headers(world, who: str) -> dict:
    return {**world["sf"], "X-Customer-Id": "c-1"} if who == "customer" else world[who]


def assert_422(r) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error", r.text


async def test_every_list_bounds_limit_and_offset(api, world):
    for who, path in LISTS:
        for query in BAD_PAGES:
            assert_422(await api.client.get(f"{path}?{query}", headers=headers(world, who)))
        r = await api.client.get(f"{path}?limit=200&offset=1000000", headers=headers(world, who))
        assert r.status_code == 200, (path, r.text)


async def test_unknown_states_are_refused(api, world):
    for who, path in [("staff", M), ("op", P), ("customer", S)]:
        assert_422(await api.client.get(f"{path}?state=teleported", headers=headers(world, who)))
        assert (await api.client.get(f"{path}?state=pending_claim", headers=headers(world, who))).status_code == 200


@pytest.mark.parametrize("query", [
    "created_from=0001-01-01T00:00:00%2B08:00",  # would overflow when converted to UTC
    "created_to=9999-12-31T23:59:59-08:00",
    "created_from=1999-12-31T23:59:59Z",
    "created_to=2100-01-01T00:00:00Z",
    "created_from=2026-03-01T00:00:00",  # no offset: which day is meant?
    "created_from=yesterday",
    "sku=a%00b",  # NUL: PostgreSQL refuses it with an error
    "category=%0D%0Aphones",
    "sku=" + "x" * 65,
    "customer_phone=" + "1" * 21,
    "tracking_number=",
    "customer_responded=perhaps",
])
async def test_search_filters_are_bounded(api, world, query):
    assert_422(await api.client.get(f"{M}?{query}", headers=world["staff"]))
    assert_422(await api.client.get(f"{P}?{query}", headers=world["op"]))


async def test_filters_at_their_bounds_are_answered(api, world):
    await api.apply(world["sf"])
    r = await api.client.get(f"{M}?created_from=2000-01-01T00:00:00Z&created_to=2099-12-31T23:59:59%2B08:00"
                             f"&sku={'x' * 64}&category=手机", headers=world["staff"])
    assert r.status_code == 200 and r.json()["total"] == 0
    r = await api.client.get(f"{M}?created_from=2026-03-01T00:00:00%2B08:00", headers=world["staff"])
    assert r.status_code == 200 and r.json()["total"] == 1


@pytest.mark.parametrize("order_id", ["x" * 65, "a%00b", "a%20b", "%E4%B8%AD"])
async def test_malformed_order_ids_are_refused(api, world, order_id):
    assert_422(await api.client.get(f"{M}/{order_id}", headers=world["staff"]))
    assert_422(await api.client.get(f"{S}/{order_id}", headers={**world["sf"], "X-Customer-Id": "c-1"}))
    # an action: on PostgreSQL the fast path hands it to the full app, which answers the 422
    assert_422(await api.client.post(f"{M}/{order_id}/claim", headers=world["staff"], json={}))
    assert_422(await api.client.get(f"{M}/{order_id}/attachments/a-1", headers=world["staff"]))


async def test_unknown_well_formed_ids_are_still_404(api, world):
    r = await api.client.get(f"{M}/00000000-0000-4000-8000-000000000000", headers=world["staff"])
    assert r.status_code == 404
    r = await api.client.post(f"{M}/no-such-order/claim", headers=world["staff"], json={})
    assert r.status_code == 404


async def test_other_path_ids_are_bounded(api, world):
    assert_422(await api.client.get(f"/v1/platform/merchants/{'m' * 65}", headers=world["op"]))
    assert_422(await api.client.patch("/v1/merchant/staff/a%00b", headers=world["main"], json={"active": False}))


async def test_nul_in_a_body_is_a_422(api, world):
    r = await api.client.post(S, json=api.apply_body(description="broken\x00screen"),
                              headers={**world["sf"], "X-Customer-Id": "c-1", "Idempotency-Key": "nul-1"})
    assert_422(r)
    o = await api.apply(world["sf"])
    assert_422(await api.client.post(f"{M}/{o['id']}/claim", headers=world["staff"], json={"note": "a\x00"}))


async def test_an_application_lists_its_header_and_body_errors_in_one_answer(api, world):
    r = await api.client.post(S, json={**api.apply_body(), "quantity": "many"},
                              headers={**world["sf"], "X-Customer-Id": "c-1"})
    assert_422(r)
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert fields == ["header.Idempotency-Key", "quantity"], r.text
    r = await api.client.post(S, json=api.apply_body(), headers={**world["sf"], "X-Customer-Id": "c-1",
                                                                 "Idempotency-Key": "k" * 101})
    assert_422(r)
    assert r.json()["error"]["details"][0]["type"] == "string_too_long"


async def test_an_application_checks_its_caller_before_its_body(api, world):
    # no token: 401 whatever the body (nothing of the request is read for a stranger)
    r = await api.client.post(S, content=b"{not json", headers={"Content-Type": "application/json",
                                                                "X-Customer-Id": "c-1", "Idempotency-Key": "k1"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
    r = await api.client.post(S, json=api.apply_body(), headers={**world["staff"], "Idempotency-Key": "k1"})
    assert r.status_code == 403, r.text
    r = await api.client.post(S, json=api.apply_body(), headers={**world["sf"], "Idempotency-Key": "k1"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "customer_required", r.text
    r = await api.client.post(S, content=b"{not json", headers={**world["sf"], "X-Customer-Id": "c-1",
                                                                "Content-Type": "application/json",
                                                                "Idempotency-Key": "k1"})
    assert_422(r)
    assert r.json()["error"]["details"][0]["type"] == "json_invalid"


def test_the_application_route_documents_its_header_body_and_answers(tmp_path):
    from orders.app import create_app
    from orders.settings import OrdersSettings

    app = create_app(OrdersSettings(environment="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db",
                                    data_dir=str(tmp_path), log_json=False))
    op = app.openapi()["paths"][S]["post"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["Idempotency-Key"]["required"] and params["Idempotency-Key"]["schema"]["maxLength"] == 100
    assert "X-Customer-Id" in params
    assert op["requestBody"]["required"]
    assert "sales_order_id" in op["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"200", "201", "401", "403", "422"} <= set(op["responses"])


async def test_ids_that_would_not_fit_are_refused(api, world):
    r = await api.client.post("/v1/platform/merchants", headers=world["op"], json={
        "id": "m" * 60, "name": "long", "kind": "pop_seller", "mode": "pop_self_service",
        "contact_phone": "400-000-1234", "return_address": "addr"})
    assert_422(r)  # its main account "<id>.main" would not fit in a client id
    r = await api.client.post("/v1/merchant/staff", headers=world["main"], json={
        "login": "l" * 40, "name": "x", "permissions": ["audit"], "categories": ["phones"]})
    assert r.status_code == 201  # "m-1." + 40 characters fits
    main = await api.merchant(world["op"], "m" * 30)
    r = await api.client.post("/v1/merchant/staff", headers=main, json={
        "login": "l" * 40, "name": "x", "permissions": ["audit"], "categories": ["phones"]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "login_too_long"
