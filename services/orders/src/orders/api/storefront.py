"""Storefront API: the customer's side, called by the storefront back end for one
customer at a time (bearer token of role ``storefront`` + header ``X-Customer-Id``)."""
# No `from __future__ import annotations`: the route factories annotate with a variable.
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field, TypeAdapter

from orders.api.common import OrderId, Page, add_action_route, get_runtime, page
from orders.api.responses import CustomerActionResult, CustomerOrderView, CustomerOrders
from orders.domain.states import STATES
from orders.handlers import queries
from orders.handlers.apply import apply_for_service
from orders.handlers.lifecycle import perform
from orders.schemas import (AbandonIn, ApplicationIn, ArbitrationRequestIn, FeedbackIn, NoteIn, RatingIn,
                            ServiceOrderOut, ShipmentIn, TextIn)
from shared.auth import Principal, require_principal, with_policy
from shared.request_route import RequestRoute, json_body_openapi, read_header_value, read_json_body
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/storefront", tags=["storefront"])


# Every storefront route acts for one customer: the storefront role with X-Customer-Id
# (``shared.auth.Policy``, 422 ``customer_required`` without it).
for_customer = require_principal("storefront", customer=True)
_IDEMPOTENCY_KEY = TypeAdapter(Annotated[str, Field(min_length=1, max_length=100)])
IDEMPOTENCY_KEY_PARAMETER = {"name": "Idempotency-Key", "in": "header", "required": True,
                             "schema": {"type": "string", "minLength": 1, "maxLength": 100,
                                        "title": "Idempotency-Key"}}


# The storefront's busiest route: a ``RequestRoute`` as the order actions (``add_action_route``),
# checking in order the caller, then the Idempotency-Key header and the JSON body (every invalid
# part in one 422, as FastAPI answers it).
async def apply(request: Request) -> JSONResponse:
    p = for_customer.check(request)
    errors: list[dict] = []
    key = read_header_value(request, "Idempotency-Key", _IDEMPOTENCY_KEY, errors)
    body = await read_json_body(request, ApplicationIn, errors)
    if errors:
        raise RequestValidationError(errors)
    order, created = await apply_for_service(request.app.state.runtime, p, body, key)
    # JSON-ready already: answered as is (``response_model`` documents it; see back_office.action)
    return JSONResponse(ServiceOrderOut.model_validate(order, from_attributes=True).model_dump(mode="json"),
                        status_code=201 if created else 200)


router.add_api_route(
    "/service-orders", with_policy(apply, for_customer), methods=["POST"], route_class_override=RequestRoute,
    response_class=JSONResponse, status_code=201, response_model=ServiceOrderOut,
    summary="Customer applies for after-sales service",
    responses={200: {"model": ServiceOrderOut,
                     "description": "this Idempotency-Key was already used for the same application: "
                                    "the order it created"}},
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER], "requestBody": json_body_openapi(ApplicationIn)})


@router.get("/service-orders", response_model=CustomerOrders, summary="The customer's service orders")
async def mine(pg: Page = Depends(page), state: Literal[STATES] | None = Query(None, description="only this state"),
               rt: Runtime = Depends(get_runtime), p: Principal = Depends(for_customer)) -> dict:
    limit, offset = pg.limit, pg.offset
    from orders.models import ServiceOrder
    from sqlalchemy import select

    async with rt.sessions() as s:
        q = select(ServiceOrder).where(ServiceOrder.customer_id == p.customer_id)
        if state:
            q = q.where(ServiceOrder.state == state)
        rows = (await s.scalars(q.order_by(ServiceOrder.created_at.desc()).limit(limit).offset(offset))).all()
    return {"items": [queries.summary(o) | {"current_handler": queries.current_handler(o)} for o in rows]}


@router.get("/service-orders/{order_id}", response_model=CustomerOrderView,
            summary="Progress view: state, handler, expected completion, timeline")
async def progress(order_id: OrderId, rt: Runtime = Depends(get_runtime), p: Principal = Depends(for_customer)) -> dict:
    return await queries.view(rt, p, order_id)


def _action(path: str, action: str, model, summary: str):
    async def run(rt: Runtime, p: Principal, order_id: str, body, version: int | None) -> dict:
        order = await perform(rt, p, order_id, action, body.model_dump(mode="json"), version)
        # JSON-ready already: answered as is, not validated (see back_office.action).
        return queries.brief(order, p)

    add_action_route(router, f"/service-orders/{{order_id}}/{path}", for_customer, model, run,
                     summary=summary, name=f"storefront_{path}", response_model=CustomerActionResult)


class _Empty(NoteIn):
    pass


_action("shipment", "fill_shipment", ShipmentIn, "Fill the return shipment (carrier, tracking number, freight paid)")
_action("feedback", "customer_feedback", FeedbackIn, "Answer the merchant's feedback request")
_action("abandon", "abandon", AbandonIn, "Abandon the service order")
_action("confirm", "confirm", _Empty, "Confirm the outcome resolved the problem")
_action("messages", "message", TextIn, "Leave a follow-up message")
_action("rating", "rate", RatingIn, "Rate 1-5 stars, optional text and 0-10 likelihood to recommend")
_action("arbitration", "arbitration.request", ArbitrationRequestIn, "Ask the platform to intervene")
