"""Archive and purge records older than the retention period (docs/lifecycle.md: at least 2 years)."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, exists, select, text, tuple_

from orders.models import (FINISHED, Attachment, ExchangeOrder, OrderDeadline, Rating, SalesLine, ServiceOrder,
                           TimelineEntry)


async def archive_and_purge(rt, archive_dir: str | Path, retention_days: int | None = None) -> dict:
    """Write finished orders untouched for the retention period (with their records) to a
    JSON-lines archive, then delete them. Returns counts."""
    days = retention_days or rt.settings.retention_days
    cutoff = rt.clock.now() - timedelta(days=days)
    archive = Path(archive_dir)
    archive.mkdir(parents=True, exist_ok=True)
    path = archive / f"orders-archive-{rt.clock.now():%Y%m%dT%H%M%S}.jsonl"
    purged = 0
    async with rt.uow() as s:
        # FINISHED: the terminal states, in the words of the partial index on updated_at
        orders = (await s.scalars(select(ServiceOrder).where(ServiceOrder.updated_at < cutoff, text(FINISHED)))).all()
        ids = [o.id for o in orders]
        if ids:
            timeline = (await s.scalars(select(TimelineEntry).where(TimelineEntry.order_id.in_(ids)))).all()
            atts = (await s.scalars(select(Attachment).where(Attachment.order_id.in_(ids)))).all()
            by_order: dict[str, list] = {}
            for e in timeline:
                by_order.setdefault(e.order_id, []).append(
                    {"at": e.at.isoformat(), "action": e.action, "actor_role": e.actor_role, "actor_id": e.actor_id,
                     "from": e.from_state, "to": e.to_state, "note": e.note, "internal_note": e.internal_note,
                     "details": e.details})
            with path.open("a", encoding="utf-8") as fh:
                for o in orders:
                    row = {c.name: getattr(o, c.name) for c in ServiceOrder.__table__.columns}
                    row["timeline"] = by_order.get(o.id, [])
                    fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
            for model in (TimelineEntry, Attachment, Rating, ExchangeOrder, OrderDeadline):
                await s.execute(delete(model).where(model.order_id.in_(ids)))
            await s.execute(delete(ServiceOrder).where(ServiceOrder.id.in_(ids)))
            # A line goes with its last order, once nothing was applied for it in the period either.
            await s.execute(delete(SalesLine).where(
                tuple_(SalesLine.sales_order_id, SalesLine.order_line_id).in_(
                    sorted({(o.sales_order_id, o.order_line_id) for o in orders})),
                SalesLine.updated_at < cutoff,
                ~exists().where(ServiceOrder.sales_order_id == SalesLine.sales_order_id,
                                ServiceOrder.order_line_id == SalesLine.order_line_id)))
            purged = len(ids)
            for a in atts:
                await rt.blobstore.delete(a.blob_key)
    return {"purged": purged, "archive": str(path) if purged else None, "cutoff": cutoff.isoformat()}
