"""队列转接: a manufacturer agent hands a consultation to the platform queue.

Recorded and published in one transaction (the transfer is a business record,
unlike decisions); the platform now serves the manufacturer's customer, so a
billable consultation event goes out with it (SPEC §5.5)."""
from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from consultation_routing.domain.packages import package_for
from consultation_routing.models import ManufacturerRow, TransferRow
from consultation_routing.publisher import PRODUCER
from shared.errors import ApiError
from shared.events import make_envelope


async def transfer_to_platform(rt, routing, *, decision_id: str, manufacturer_id: str, agent_id: str, reason: str,
                               channel: str, sku: str | None) -> TransferRow:
    now = rt.clock.now()
    known_sku = routing.state.skus.get(sku) if sku else None
    category = known_sku.category if known_sku else None
    try:
        async with rt.uow() as s:
            m = await s.get(ManufacturerRow, manufacturer_id)
            if m is None:
                raise ApiError(404, "manufacturer_not_found", f"no enrollment for manufacturer {manufacturer_id}")
            if (await s.scalars(select(TransferRow.id).where(TransferRow.decision_id == decision_id))).first():
                raise ApiError(409, "already_transferred", f"consultation {decision_id} was already transferred")
            row = TransferRow(id=str(uuid.uuid4()), decision_id=decision_id, manufacturer_id=manufacturer_id,
                              agent_id=agent_id, reason=reason, sku=sku, transferred_at=now)
            s.add(row)
            await s.flush()
            await rt.outbox.add(s, make_envelope(
                type_="routing.transferred", key=manufacturer_id, producer=PRODUCER, occurred_at=now,
                data={"transfer_id": row.id, "decision_id": decision_id, "manufacturer_id": manufacturer_id,
                      "agent_id": agent_id, "reason": reason, "transferred_at": now, "sku": sku}))
            await rt.outbox.add(s, make_envelope(
                type_="routing.billable_consultation", key=manufacturer_id, producer=PRODUCER, occurred_at=now,
                data={"consultation_id": decision_id, "manufacturer_id": manufacturer_id,
                      "package": package_for(category, m.package), "cause": "transfer", "channel": channel,
                      "category": category, "occurred_at": now}))
    except IntegrityError:  # a concurrent transfer of the same consultation won
        raise ApiError(409, "already_transferred", f"consultation {decision_id} was already transferred") from None
    return row
