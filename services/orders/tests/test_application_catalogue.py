"""Applications against the merchant's catalogue (issue 16, item 12): when the merchant has a
catalogue the SKU must be in it (422 ``unknown_sku``, nothing stored), and the order's category
— which decides the eligibility window and the category mode — is the catalogue's, whatever
category the caller named. A merchant without a catalogue keeps the caller's category. Both
write paths: the PostgreSQL hot path (one read for the facts) and the session path (SQLite)."""
from datetime import timedelta

S = "/v1/storefront/service-orders"
P = "/v1/platform/service-orders"


async def _post(api, w, customer: str, key: str, **changes):
    return await api.client.post(S, json=api.apply_body(customer, **changes),
                                 headers={**api.cust(w["sf"], customer), "Idempotency-Key": key})


async def _stored(api, w) -> list[dict]:
    return (await api.client.get(P, headers=w["op"])).json()["items"]


async def test_a_sku_outside_the_catalogue_is_refused_and_nothing_is_stored(api, world):
    r = await _post(api, world, "c-1", "k-unknown", sku="sku-404")
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "unknown_sku" and err["details"] == {"sku": "sku-404", "merchant_id": "m-1"}
    assert await _stored(api, world) == []
    assert [e for e in await api.events() if e["type"] == "service_order.created"] == []
    # the same customer with a SKU of the catalogue: accepted
    r = await _post(api, world, "c-1", "k-known", sku="sku-3")
    assert r.status_code == 201, r.text


async def test_the_category_is_the_catalogues_not_the_callers(api, world):
    r = await _post(api, world, "c-1", "k-cat", sku="sku-1", category="furniture")
    assert r.status_code == 201, r.text
    assert r.json()["category"] == "phones"
    oid = r.json()["id"]
    view = (await api.client.get(f"{S}/{oid}", headers=api.cust(world["sf"]))).json()
    assert view["category"] == "phones"
    created = next(e for e in await api.events(oid) if e["type"] == "service_order.created")["data"]
    assert created["category"] == "phones"
    # staff of the catalogue's category see it (search by category)
    found = (await api.client.get(f"{P}?category=phones", headers=world["op"])).json()["items"]
    assert [o["id"] for o in found] == [oid]


async def test_the_eligibility_window_is_the_catalogue_categorys(api, world):
    # furniture is repaired for two years, phones for one
    api.rt.settings.eligibility_windows = {"furniture:repair": 730}
    delivered = (api.clock.now() - timedelta(days=500)).isoformat()
    r = await _post(api, world, "c-1", "k-win", sku="sku-1", category="furniture", service_type="repair",
                    delivered_at=delivered)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "window_expired"
    assert r.json()["error"]["details"]["window_days"] == 365
    assert await _stored(api, world) == []


async def test_the_category_decides_the_mode(api, world):
    await api.merchant(world["op"], "mfr-1", mode="customer_contact", kind="manufacturer",
                       category_modes={"tv": "full_manufacturer"},
                       skus=[{"sku": "tv-1", "category": "tv", "price": "199.00"}])
    r = await _post(api, world, "c-2", "k-mode", merchant_id="mfr-1", sku="tv-1", category="appliances")
    assert r.status_code == 201, r.text
    view = (await api.client.get(f"{S}/{r.json()['id']}", headers=api.cust(world["sf"], "c-2"))).json()
    assert (view["category"], view["mode"]) == ("tv", "full_manufacturer")


async def test_a_merchant_without_a_catalogue_keeps_the_callers_sku_and_category(api, world):
    await api.merchant(world["op"], "bare", skus=[])
    r = await _post(api, world, "c-3", "k-bare", merchant_id="bare", sku="anything", category="furniture")
    assert r.status_code == 201, r.text
    assert (r.json()["sku"], r.json()["category"]) == ("anything", "furniture")


async def test_a_retry_answers_the_stored_order(api, world):
    body = {"sku": "sku-2", "category": "toys"}
    first = await _post(api, world, "c-4", "k-retry", **body)
    api._n -= 1  # the same sales order again
    again = await _post(api, world, "c-4", "k-retry", **body)
    assert (first.status_code, again.status_code) == (201, 200), again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["category"] == "phones"
