"""The merchants' catalogue, published: every SKU a merchant's catalogue gains or changes
(onboarding, ``PUT /v1/platform/merchants/{id}/skus``, the demo seed) goes out as
``catalogue.sku_upserted`` through the outbox, in the transaction that writes it. The
routing service follows it (SKU → the merchant whose catalogue holds it, and the
category), so consultations about the SKU reach that manufacturer's queue without a
separate upload to routing; KPI takes merchants' categories from it."""
from __future__ import annotations

from shared.contracts.routing import SkuUpserted
from shared.events import make_envelope


async def publish_skus(rt, session, merchant_id: str, merchant_kind: str, skus) -> None:
    """``skus``: objects with ``sku`` and ``category``. Key: the SKU (one SKU's changes in order)."""
    now = rt.clock.now()
    for item in skus:
        await rt.outbox.add(session, make_envelope(
            type_="catalogue.sku_upserted", key=item.sku, producer=rt.name, occurred_at=now,
            data=SkuUpserted(sku=item.sku, manufacturer_id=merchant_id, category=item.category,
                             merchant_kind=merchant_kind)))
