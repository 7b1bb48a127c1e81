"""Order and SLA events → KPI facts (never another service's tables)."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from kpi.domain.timeline import EXCHANGE_CREATING, milestone_for
from kpi.facts import record, record_consultation, upsert_order
from shared.contracts.orders import ServiceOrderCreated, ServiceOrderTransitioned
from shared.contracts.routing import BillableConsultation, ConsultationTransferred, RoutingDecided
from shared.contracts.sla import DeadlineFired
from shared.runtime import Runtime


def _amount(details: dict, key: str) -> Decimal | None:
    try:
        return Decimal(str(details[key])).quantize(Decimal("0.01")) if key in details else None
    except InvalidOperation:
        return None


def order_handlers(rt: Runtime):
    async def on_created(session, env, data: ServiceOrderCreated) -> None:
        await upsert_order(session, data.order_id, data)

    async def on_transitioned(session, env, data: ServiceOrderTransitioned) -> None:
        await upsert_order(session, data.order_id, data.order)
        kind = milestone_for(data.action)
        if kind is not None:
            stars = data.details.get("stars") if kind == "rated" else None
            await record(session, data.order_id, kind, data.occurred_at,
                         value=int(stars) if isinstance(stars, (int, str)) and str(stars).isdigit() else None,
                         amount=_amount(data.details, "amount"))
        rec = data.details.get("recommend") if data.action == "rate" else None
        if isinstance(rec, int) and 0 <= rec <= 10:
            await record(session, data.order_id, "recommended", data.occurred_at, value=rec)
        if data.action in EXCHANGE_CREATING:
            await record(session, data.order_id, "exchange_created", data.occurred_at)

    return {"service_order.created": on_created, "service_order.transitioned": on_transitioned}


def sla_handlers(rt: Runtime):
    async def on_fired(session, env, data: DeadlineFired) -> None:
        if data.action == "penalty":
            await record(session, data.order_id, "penalty_48h", data.fired_at,
                         amount=_amount(data.details, "amount_cny") or Decimal("2000.00"))

    return {"sla.deadline_fired": on_fired}


def routing_handlers(rt: Runtime):
    async def on_decided(session, env, data: RoutingDecided) -> None:
        if data.manufacturer_id:
            await record_consultation(session, "decided", data.decision_id, data.manufacturer_id, data.decided_at,
                                      target=data.target, reason=data.reason)

    async def on_transferred(session, env, data: ConsultationTransferred) -> None:
        await record_consultation(session, "transferred", data.transfer_id, data.manufacturer_id,
                                  data.transferred_at, reason=data.reason)

    async def on_billable(session, env, data: BillableConsultation) -> None:
        await record_consultation(session, "billable", data.consultation_id, data.manufacturer_id, data.occurred_at,
                                  reason=data.cause, package=data.package)

    return {"routing.decided": on_decided, "routing.transferred": on_transferred,
            "routing.billable_consultation": on_billable}
