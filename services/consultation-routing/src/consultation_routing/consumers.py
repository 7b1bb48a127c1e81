"""``catalogue.sku_upserted`` → the routing catalogue (table, then memory after commit)."""
from __future__ import annotations

from sqlalchemy import event

from consultation_routing.domain.model import Sku
from consultation_routing.handlers.catalogue import store_skus
from shared.contracts.routing import SkuUpserted


def catalogue_handlers(rt):
    async def on_sku(session, env, data: SkuUpserted) -> None:
        sku = Sku(data.sku.strip(), data.manufacturer_id.strip(), data.category.strip().lower())
        await store_skus(session, [sku], rt.clock.now())
        # Memory follows only once the row is committed.
        event.listen(session.sync_session, "after_commit", lambda _s: rt.routing.state.put_skus([sku]), once=True)

    return {"catalogue.sku_upserted": on_sku}
