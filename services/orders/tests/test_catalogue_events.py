"""The merchants' catalogue is published (issue 16, item 14): onboarding with SKUs and
``PUT /v1/platform/merchants/{id}/skus`` put ``catalogue.sku_upserted`` in the outbox, in
the transaction that writes the SKUs, for routing (and KPI) to follow."""
from __future__ import annotations

import msgspec

from shared.contracts.routing import SkuUpserted


async def catalogue(api) -> list[dict]:
    return [e for e in await api.events() if e["type"] == "catalogue.sku_upserted"]


async def test_onboarding_and_the_catalogue_api_publish_the_skus(api):
    op = await api.bootstrap()
    await api.merchant(op, "mfr-1", kind="manufacturer", mode="customer_contact",
                       skus=[{"sku": "fridge-1", "category": "appliances", "price": "3299.00"}])
    [e] = await catalogue(api)
    assert (e["key"], e["producer"]) == ("fridge-1", "orders")
    assert msgspec.convert(e["data"], SkuUpserted) == SkuUpserted(
        sku="fridge-1", manufacturer_id="mfr-1", category="appliances", merchant_kind="manufacturer")

    r = await api.client.put("/v1/platform/merchants/mfr-1/skus", headers=op, json=[
        {"sku": "fridge-1", "category": "kitchen", "price": "3199.00"},
        {"sku": "tv-1", "category": "tv", "price": "2899.00"}])
    assert r.status_code == 200, r.text
    assert [(e["data"]["sku"], e["data"]["category"]) for e in await catalogue(api)] == [
        ("fridge-1", "appliances"), ("fridge-1", "kitchen"), ("tv-1", "tv")]

    # nothing published for a refused change
    r = await api.client.put("/v1/platform/merchants/nobody/skus", headers=op,
                             json=[{"sku": "x", "category": "tv", "price": "1.00"}])
    assert r.status_code == 404
    assert len(await catalogue(api)) == 3
    # a POP seller's catalogue says so
    await api.merchant(op, "pop-1")
    assert {e["data"]["merchant_kind"] for e in await catalogue(api) if e["data"]["manufacturer_id"] == "pop-1"} == {
        "pop_seller"}
