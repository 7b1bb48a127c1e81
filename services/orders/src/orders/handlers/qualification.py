"""``kpi.manufacturer_disqualified`` / ``kpi.manufacturer_requalified`` → merchants (docs/kpis.md).

While a manufacturer is disqualified its NEW service orders are in ``platform`` mode, served
by the platform on its behalf (billable, docs/kpis.md); orders already open keep their mode."""
from __future__ import annotations

import logging

from orders.models import Merchant
from shared.contracts.kpi import ManufacturerDisqualified, ManufacturerRequalified

log = logging.getLogger(__name__)


def qualification_handlers(rt):
    async def on_disqualified(session, env, data: ManufacturerDisqualified) -> None:
        m = await session.get(Merchant, data.manufacturer_id)
        if m is None:
            log.info("disqualification of a merchant not onboarded here", extra={"merchant_id": data.manufacturer_id})
            return
        if m.disqualified_since is None:
            m.disqualified_since = data.disqualified_at

    async def on_requalified(session, env, data: ManufacturerRequalified) -> None:
        m = await session.get(Merchant, data.manufacturer_id)
        if m is not None:
            m.disqualified_since = None

    return {"kpi.manufacturer_disqualified": on_disqualified, "kpi.manufacturer_requalified": on_requalified}
