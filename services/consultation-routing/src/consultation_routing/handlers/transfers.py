"""队列转接: a manufacturer agent hands a consultation to the platform queue.

A transfer names a real decision (``decisions``, written by the decision writer with the
decision's events) that sent that consultation to that manufacturer's queue, and each
decision is transferred once. Recorded and published in one transaction (the transfer
is a business record, unlike decisions); the platform now serves the manufacturer's
customer, so a billable consultation event goes out with it (docs/routing.md, "Billable consultations"), priced by the
category the decision found."""
from __future__ import annotations

import uuid
from datetime import timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from consultation_routing.domain.packages import package_for
from consultation_routing.models import DecisionRow, ManufacturerRow, TransferRow
from consultation_routing.adapters.publisher import PRODUCER
from shared.errors import ApiError
from shared.events import make_envelope


def _not_found(decision_id: str) -> ApiError:
    return ApiError(404, "decision_not_found",
                    f"no routing decision {decision_id} that involved a manufacturer (unknown, older than the "
                    f"retention, or not yet written: retry in a moment)", {"decision_id": decision_id})


async def _decision(rt, routing, decision_id: str) -> DecisionRow | None:
    async with rt.sessions() as s:
        d = await s.get(DecisionRow, decision_id)
    if (d is None or d.target != "manufacturer") and routing.publisher.buffered():
        # perhaps answered (again) a moment ago by this replica, not yet written: wait for the
        # writer (bounded)
        await routing.publisher.settle(rt.settings.transfer_wait_s)
        async with rt.sessions() as s:
            d = await s.get(DecisionRow, decision_id)
    return d


async def transfer_to_platform(rt, routing, *, decision_id: str, manufacturer_id: str, agent_id: str, reason: str,
                               channel: str | None, sku: str | None, by_merchant: bool) -> tuple[TransferRow, str]:
    """The transfer and its channel (the decision's). ``by_merchant``: the caller is the
    manufacturer's own account, which is never told about other manufacturers' decisions."""
    now = rt.clock.now().astimezone(timezone.utc)
    d = await _decision(rt, routing, decision_id)
    if d is None:
        raise _not_found(decision_id)
    if d.manufacturer_id != manufacturer_id:
        if by_merchant:
            raise _not_found(decision_id)
        raise ApiError(409, "decision_of_another_manufacturer",
                       f"decision {decision_id} concerns manufacturer {d.manufacturer_id}, not {manufacturer_id}",
                       {"decision_id": decision_id, "manufacturer_id": d.manufacturer_id})
    if d.target != "manufacturer":
        raise ApiError(409, "decision_not_to_manufacturer",
                       f"decision {decision_id} sent the consultation to the platform queue ({d.reason}); "
                       f"there is nothing to transfer", {"decision_id": decision_id, "reason": d.reason})
    for name, given, decided in (("channel", channel, d.channel), ("sku", sku, d.sku)):
        if given is not None and given != decided:
            raise ApiError(422, "decision_mismatch", f"{name} differs from the decision's ({decided})",
                           {"field": name, "decision": decided})
    try:
        async with rt.uow() as s:
            m = await s.get(ManufacturerRow, manufacturer_id)
            if m is None:
                raise ApiError(404, "manufacturer_not_found", f"no enrollment for manufacturer {manufacturer_id}")
            if (await s.scalars(select(TransferRow.id).where(TransferRow.decision_id == decision_id))).first():
                raise ApiError(409, "already_transferred", f"consultation {decision_id} was already transferred")
            row = TransferRow(id=str(uuid.uuid4()), decision_id=decision_id, manufacturer_id=manufacturer_id,
                              agent_id=agent_id, reason=reason, sku=d.sku, transferred_at=now)
            s.add(row)
            await s.flush()
            await rt.outbox.add(s, make_envelope(
                type_="routing.transferred", key=manufacturer_id, producer=PRODUCER, occurred_at=now,
                data={"transfer_id": row.id, "decision_id": decision_id, "manufacturer_id": manufacturer_id,
                      "agent_id": agent_id, "reason": reason, "transferred_at": now, "sku": d.sku}))
            await rt.outbox.add(s, make_envelope(
                type_="routing.billable_consultation", key=manufacturer_id, producer=PRODUCER, occurred_at=now,
                data={"consultation_id": decision_id, "manufacturer_id": manufacturer_id,
                      "package": package_for(d.category, m.package), "cause": "transfer", "channel": d.channel,
                      "category": d.category, "occurred_at": now}))
    except IntegrityError:  # a concurrent transfer of the same consultation won
        raise ApiError(409, "already_transferred", f"consultation {decision_id} was already transferred") from None
    return row, d.channel
