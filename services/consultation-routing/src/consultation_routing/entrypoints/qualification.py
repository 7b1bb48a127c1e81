"""``kpi.manufacturer_disqualified`` / ``kpi.manufacturer_requalified`` → routing (docs/routing.md, "Enrollment and the catalogue").

The KPI service decides; routing only follows: a disqualified manufacturer's consultations
go to the platform queue with reason ``disqualified`` until an operator requalifies it."""
from __future__ import annotations

import logging

from sqlalchemy import event

from consultation_routing.adapters.state import manufacturer_from_row
from consultation_routing.parts import routing_of
from consultation_routing.models import ManufacturerRow
from shared.contracts.kpi import ManufacturerDisqualified, ManufacturerRequalified

log = logging.getLogger(__name__)


def qualification_handlers(rt):
    state = routing_of(rt).state

    async def apply(session, manufacturer_id: str, disqualified: bool, reason: str | None, at) -> None:
        row = await session.get(ManufacturerRow, manufacturer_id)
        if row is None:
            # Not enrolled: it is routed to the platform anyway; nothing to remember.
            log.info("qualification change for a manufacturer not enrolled", extra={"manufacturer_id": manufacturer_id})
            return
        row.disqualified = disqualified
        row.disqualified_reason = reason if disqualified else None
        row.disqualified_at = at if disqualified else None
        row.updated_at = rt.clock.now()
        await session.flush()
        m = manufacturer_from_row(row)
        # Memory follows only once the row is committed.
        event.listen(session.sync_session, "after_commit", lambda _s: state.put_manufacturer(m), once=True)

    async def on_disqualified(session, env, data: ManufacturerDisqualified) -> None:
        periods = ", ".join(p.isoformat() for p in data.periods)
        await apply(session, data.manufacturer_id, True,
                    f"service-express score under {data.threshold} in consecutive periods {periods}", data.disqualified_at)

    async def on_requalified(session, env, data: ManufacturerRequalified) -> None:
        await apply(session, data.manufacturer_id, False, None, data.requalified_at)

    return {"kpi.manufacturer_disqualified": on_disqualified, "kpi.manufacturer_requalified": on_requalified}
