"""What routing follows from other services' events (table, then memory after commit):

- ``catalogue.sku_upserted`` (orders publishes its merchants' catalogues): SKU → the
  merchant whose catalogue holds it, and the category. A SKU id both a manufacturer's and
  a POP seller's catalogue list stays the manufacturer's: a POP seller's event never takes
  a SKU from another merchant; a manufacturer's (or an event naming no kind) always wins.
- ``service_order.created`` (``orders.events``): service order → SKU and sales order, so a
  consultation naming only a service order or a sales order is routed by that SKU."""
from __future__ import annotations

from sqlalchemy import event

from consultation_routing.parts import routing_of
from consultation_routing.domain.model import OrderSku, Sku
from consultation_routing.handlers.catalogue import store_skus
from consultation_routing.handlers.upsert import upsert
from consultation_routing.models import OrderSkuRow, SkuRow
from shared.consumer import batched
from shared.contracts.orders import ServiceOrderCreated
from shared.contracts.routing import SkuUpserted


def _after_commit(session, apply) -> None:
    # Memory follows only once the rows are committed.
    event.listen(session.sync_session, "after_commit", lambda _s: apply(), once=True)


def catalogue_handlers(rt):
    state = routing_of(rt).state

    async def on_sku(session, env, data: SkuUpserted) -> None:
        sku = Sku(data.sku.strip(), data.manufacturer_id.strip(), data.category.strip().lower())
        if data.merchant_kind == "pop_seller":
            held = await session.get(SkuRow, sku.sku)
            if held is not None and held.manufacturer_id != sku.manufacturer_id:
                return  # another merchant's (a manufacturer's, or the first seller's) SKU id
        await store_skus(session, [sku], rt.clock.now())
        _after_commit(session, lambda: state.put_skus([sku]))

    return {"catalogue.sku_upserted": on_sku}


def order_handlers(rt):
    state = routing_of(rt).state

    async def store(session, orders: list[OrderSku]) -> None:
        cutoff = rt.clock.now() - state.order_lookup
        # one row per service order (one statement cannot upsert a row twice); older ones are forgotten already
        orders = list({o.service_order_id: o for o in orders if o.created_at >= cutoff}.values())
        if not orders:
            return
        now = rt.clock.now()
        await upsert(session, OrderSkuRow.__table__, [
            {"service_order_id": o.service_order_id, "sales_order_id": o.sales_order_id, "sku": o.sku,
             "created_at": o.created_at, "updated_at": now} for o in orders], "service_order_id")
        _after_commit(session, lambda: state.put_orders(orders))

    def order_of(data: ServiceOrderCreated) -> OrderSku:
        return OrderSku(data.order_id, data.sales_order_id, data.sku, data.created_at)

    async def one(session, env, data: ServiceOrderCreated) -> None:
        await store(session, [order_of(data)])

    async def many(session, items) -> None:
        await store(session, [order_of(data) for _env, data in items])

    return {"service_order.created": batched(one, many)}
