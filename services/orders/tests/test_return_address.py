"""The return address the customer is shown is the address of whoever receives the item:
the platform warehouse where the platform does the receipt (`platform`, `customer_contact`),
the merchant in `full_manufacturer` and `pop_self_service` — per mode, and so per category
for a merchant with category modes (issue 16, item 6)."""
import pytest

from orders.settings import OrdersSettings

M = "/v1/merchant/service-orders"
P = "/v1/platform/service-orders"
S = "/v1/storefront/service-orders"
WAREHOUSE = "平台备件库 北京市大兴区 测试收货组 1 号"
FACTORY = "上海市浦东新区 厂家售后中心"


async def _approved(api, w, handler: dict, prefix: str, customer: str, **changes) -> tuple[dict, list[dict]]:
    """An application approved for return: (the customer's progress view, the order's events)."""
    o = await api.apply(w["sf"], customer=customer, merchant_id="mfr-1", **changes)
    oid = o["id"]
    await api.post(f"{prefix}/{oid}/claim", handler)
    await api.post(f"{prefix}/{oid}/audit", handler, {"decision": "approve_return", "opinion": "请寄回"})
    view = (await api.client.get(f"{S}/{oid}", headers=api.cust(w["sf"], customer))).json()
    return view, await api.events(oid)


@pytest.mark.parametrize("sku, category, mode, receiver", [
    ("fridge-1", "appliances", "customer_contact", WAREHOUSE),  # the merchant's mode
    ("tv-1", "tv", "full_manufacturer", FACTORY),               # a category mode
    ("speaker-1", "audio", "platform", WAREHOUSE),
    ("cable-1", "accessories", "pop_self_service", FACTORY),
], ids=["customer_contact", "category_full_manufacturer", "category_platform", "category_pop"])
async def test_the_customer_sends_the_item_to_whoever_receives_it(api, world, sku, category, mode, receiver):
    api.rt.settings.platform_return_address = WAREHOUSE
    main = await api.merchant(world["op"], "mfr-1", mode="customer_contact", kind="manufacturer",
                              return_address=FACTORY,
                              category_modes={"tv": "full_manufacturer", "audio": "platform",
                                              "accessories": "pop_self_service"},
                              skus=[{"sku": "fridge-1", "category": "appliances", "price": "199.00"},
                                    {"sku": "tv-1", "category": "tv", "price": "199.00"},
                                    {"sku": "speaker-1", "category": "audio", "price": "199.00"},
                                    {"sku": "cable-1", "category": "accessories", "price": "199.00"}])
    handler, prefix = (world["op"], P) if mode == "platform" else (main, M)
    view, events = await _approved(api, world, handler, prefix, "c-9", sku=sku, category=category)
    assert view["mode"] == mode
    assert view["return_address"] == receiver
    created = next(e for e in events if e["type"] == "service_order.created")["data"]
    approved = next(e for e in events if e["type"] == "service_order.transitioned"
                    and e["data"]["action"] == "audit.approve_return")["data"]
    # what the notifier puts in the SMS
    assert created["return_address"] == receiver
    assert approved["details"]["return_address"] == receiver
    assert approved["order"]["return_address"] == receiver
    audit = next(e for e in view["timeline"] if e["action"] == "audit.approve_return")
    assert audit["details"]["return_address"] == receiver


async def test_a_merchant_served_by_the_platform_has_its_items_sent_to_the_warehouse(api, world):
    api.rt.settings.platform_return_address = WAREHOUSE
    await api.merchant(world["op"], "mfr-1", mode="full_manufacturer", kind="manufacturer", return_address=FACTORY,
                       served_by_platform=True)
    view, _ = await _approved(api, world, world["op"], P, "c-8")
    assert view["mode"] == "platform" and view["return_address"] == WAREHOUSE
    full = (await api.client.get(f"{P}/{view['id']}", headers=world["op"])).json()
    assert full["on_behalf"] is True and full["return_address"] == WAREHOUSE


def test_the_warehouse_address_is_a_setting(monkeypatch):
    monkeypatch.setenv("ORDERS_PLATFORM_RETURN_ADDRESS", WAREHOUSE)
    assert OrdersSettings(environment="test").platform_return_address == WAREHOUSE
    monkeypatch.delenv("ORDERS_PLATFORM_RETURN_ADDRESS")
    assert OrdersSettings(environment="test").platform_return_address  # a default, never empty
