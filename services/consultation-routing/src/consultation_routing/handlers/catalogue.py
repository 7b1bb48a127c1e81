"""Catalogue writes: bulk upload and ``catalogue.sku_upserted`` events."""
from __future__ import annotations

from consultation_routing.domain.catalogue import RowError, parse_csv, parse_jsonl
from consultation_routing.domain.model import Sku
from consultation_routing.handlers.upsert import upsert
from consultation_routing.models import SkuRow


async def store_skus(session, skus: list[Sku], now) -> None:
    rows = [{"sku": s.sku, "manufacturer_id": s.manufacturer_id, "category": s.category, "updated_at": now}
            for s in skus]
    if rows:
        await upsert(session, SkuRow.__table__, rows, "sku")


CHUNK = 5000


async def load_catalogue(rt, routing, text: str, fmt: str) -> tuple[int, list[RowError]]:
    """Keep the good rows, report the bad ones by line.

    One transaction per chunk, each stamped when it starts: a transaction stays
    shorter than the refresh overlap, so other replicas' refreshes see every chunk."""
    good, bad = (parse_csv if fmt == "csv" else parse_jsonl)(text)
    for i in range(0, len(good), CHUNK):
        chunk = good[i:i + CHUNK]
        async with rt.uow() as s:
            await store_skus(s, chunk, rt.clock.now())
        routing.state.put_skus(chunk)
    return len(good), bad
