"""Routing follows the merchants' catalogue and service orders through events (issue 16,
item 14): a merchant onboarded with SKUs through orders, and a SKU added later through
the catalogue API, reach routing (``catalogue.sku_upserted`` from the orders outbox) with
no upload to routing; a consultation naming only a service order or a sales order is
routed by the SKU of that order (``service_order.created``)."""
from shared.testing import eventually
from tests.helpers import bearer, start_services, submit_application

OP = bearer("platform_operator", "test-operator")
SHOP = bearer("storefront", "test-storefront")
MAKER = "mfr-e2e"


async def test_routing_follows_the_orders_catalogue_and_service_orders(start_service, database_url, broker):
    svc = await start_services(start_service, database_url, broker, ["orders", "consultation-routing"])
    orders, routing = svc["orders"].client, svc["consultation-routing"].client
    # enrolled in routing, open around the clock, with agents: nothing but the catalogue is missing
    r = await routing.put(f"/v1/manufacturers/{MAKER}/enrollment", headers=OP, json={
        "name": "Maker", "categories": ["appliances", "tv"], "im_queue_id": "q-e2e", "phone_extension": "8009",
        "serve_non_working_days": True, "im_hours": {"start": "00:00", "end": "23:59"}})
    assert r.status_code == 200, r.text
    r = await routing.put(f"/v1/queues/{MAKER}/state", headers=OP, json={"agents_online": 3, "queue_length": 0})
    assert r.status_code == 200, r.text

    async def route(**params):
        r = await routing.get("/v1/route", params={"channel": "im", "entry_point": "after_sales_page", **params},
                              headers=SHOP)
        assert r.status_code == 200, r.text
        return r.json()

    assert (await route(sku="fridge-e2e"))["reason"] == "unknown_sku"
    r = await orders.post("/v1/platform/merchants", headers=OP, json={
        "id": MAKER, "name": "Maker", "kind": "manufacturer", "mode": "customer_contact",
        "contact_phone": "13900139000", "return_address": "上海市浦东新区 厂家售后中心",
        "skus": [{"sku": "fridge-e2e", "category": "appliances", "price": "3299.00"}]})
    assert r.status_code == 201, r.text

    async def routed(**params):
        a = await route(**params)
        return a if a["manufacturer_id"] == MAKER else None

    a = await eventually(lambda: routed(sku="fridge-e2e"))
    assert (a["category"], a["target"], a["queue_id"]) == ("appliances", "manufacturer", "q-e2e")

    # a SKU added later through the catalogue API
    r = await orders.put(f"/v1/platform/merchants/{MAKER}/skus", headers=OP,
                         json=[{"sku": "tv-e2e", "category": "tv", "price": "2899.00"}])
    assert r.status_code == 200, r.text
    assert (await eventually(lambda: routed(sku="tv-e2e")))["category"] == "tv"

    # a service order for the fridge: the consultation names only the order
    r = await submit_application(orders, 7, merchant_id=MAKER, sku="fridge-e2e", category="appliances",
                                 amount_paid="3299.00")
    assert r.status_code == 201, r.text
    order = r.json()
    by_service_order = await eventually(lambda: routed(service_order_id=order["id"]))
    assert by_service_order["category"] == "appliances"
    by_sales_order = await routed(sales_order_id="so-7")
    assert by_sales_order is not None and by_sales_order["category"] == "appliances"
    assert (await route(sales_order_id="so-unknown"))["reason"] == "unknown_sku"
