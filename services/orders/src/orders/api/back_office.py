"""Merchant API (manufacturer VC systems, POP back offices) and the same order
actions for platform staff (``platform`` mode, warehouse receipt, arbitration)."""
# No `from __future__ import annotations`: the route factories annotate with a variable.
import base64
import binascii
import re
from typing import Literal

from fastapi import APIRouter, Depends, Query, Response

from orders.api.common import (AttachmentId, OrderId, Page, StaffId, add_action_route, content_disposition,
                               instant_filter, merchant, page, platform, get_runtime, text_filter)
from orders.api.responses import (BINARY_RESPONSE, ActionResult, BatchResults, CreatedStaff, OrderSearch,
                                  OrderView, StaffList, StaffOut)
from orders.domain.states import STATES
from orders.handlers import accounts, queries
from orders.handlers.lifecycle import perform, perform_batch
from orders.schemas import (MEDIA_TYPE, AbandonIn, ArbitrationRequestIn, AssignIn, AuditIn, BatchAssignIn, BatchAuditIn,
                            ExchangeShipmentIn, FreightIn, NoteIn, ProcessIn, ReceiptIn, RepairShippedIn, ShipmentIn,
                            StaffIn, StaffPatch, TextIn)
from shared.auth import Policy, Principal
from shared.errors import ApiError
from shared.runtime import Runtime


def _attachments(body: AuditIn) -> list[dict]:
    out = []
    for a in body.attachments:
        try:
            content = base64.b64decode(a.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "bad_attachment", f"{a.filename} is not valid base64") from None
        out.append({"filename": a.filename, "content_type": a.content_type, "size": len(content), "content": content})
    return out


def build(prefix: str, tag: str, back_office) -> APIRouter:
    """The order routes, for merchants under /v1/merchant and for platform staff under /v1/platform."""
    router = APIRouter(prefix=prefix, tags=[tag])

    @router.get("/service-orders", response_model=OrderSearch,
                summary="Search: filters, pagination, counts per state")
    async def search(state: Literal[STATES] | None = Query(None, description="only this state (the tab)"),
                     category: text_filter("after-sales category") = None, sku: text_filter("SKU") = None,
                     sales_order_id: text_filter("sales order id") = None,
                     tracking_number: text_filter("return tracking number") = None,
                     handler_id: text_filter("staff id holding the order") = None,
                     customer_phone: text_filter("customer phone", 20) = None,
                     customer_responded: bool | None = Query(None, description="the customer answered a feedback request"),
                     merchant_id: text_filter("platform staff: one merchant's orders") = None,
                     created_from: instant_filter("created at or after") = None,
                     created_to: instant_filter("created before") = None,
                     pg: Page = Depends(page),
                     rt: Runtime = Depends(get_runtime), p: Principal = Depends(back_office)) -> dict:
        limit, offset = pg.limit, pg.offset
        f = dict(state=state, category=category, sku=sku, sales_order_id=sales_order_id,
                 tracking_number=tracking_number, handler_id=handler_id, customer_phone=customer_phone,
                 customer_responded=customer_responded, merchant_id=merchant_id, created_from=created_from,
                 created_to=created_to)
        return await queries.search(rt, p, f, limit, offset)

    @router.get("/service-orders/{order_id}", response_model=OrderView,
                summary="Full order: timeline with internal notes, attachments")
    async def detail(order_id: OrderId, rt: Runtime = Depends(get_runtime), p: Principal = Depends(back_office)) -> dict:
        return await queries.view(rt, p, order_id)

    @router.get("/service-orders/{order_id}/attachments/{att_id}", summary="Download an audit attachment",
                response_class=Response, responses=BINARY_RESPONSE)
    async def download(order_id: OrderId, att_id: AttachmentId, rt: Runtime = Depends(get_runtime),
                       p: Principal = Depends(back_office)) -> Response:
        a, content = await queries.attachment(rt, p, order_id, att_id)
        media_type = a.content_type if re.fullmatch(MEDIA_TYPE, a.content_type) else "application/octet-stream"
        return Response(content, media_type=media_type,
                        headers={"Content-Disposition": content_disposition(a.filename)})

    def action(path: str, act, model, summary: str, convert=None):
        async def run(rt: Runtime, p: Principal, order_id: str, body, version: int | None) -> dict:
            data = body.model_dump(mode="json")
            if convert:
                data.update(convert(body))
            order = await perform(rt, p, order_id, act(body) if callable(act) else act, data, version)
            # Already JSON-ready (str/int/bool/None): answered as is. ``ActionResult`` documents
            # it (the tests check the answers against it).
            return queries.brief(order, p)

        add_action_route(router, f"/service-orders/{{order_id}}/{path}", back_office, model, run,
                         summary=summary, name=f"{tag}_{path}", response_model=ActionResult)

    action("claim", "claim", NoteIn, "Claim an order from the pool (staff with audit permission)")
    action("assign", "assign", AssignIn, "Assign an order to a staff member (main account)")
    action("audit", lambda b: f"audit.{b.decision}", AuditIn, "Audit decision with opinion and up to 3 attachments",
           convert=lambda b: {"attachments": _attachments(b)})
    action("shipment", "fill_shipment", ShipmentIn, "Fill the return shipment on the customer's behalf")
    action("remind-to-ship", "remind_to_ship", NoteIn, "Remind the customer to ship (at most once a day)")
    action("receipt", "register_receipt", ReceiptIn, "Register receipt of the returned item")
    action("freight", "freight.edit", FreightIn, "Edit the freight to return (until the processing decision)")
    action("process", lambda b: f"process.{b.decision}", ProcessIn, "Processing decision")
    action("exchange-shipment", "exchange.shipped", ExchangeShipmentIn, "Report the exchange order's shipment")
    action("repair-shipped-back", "repair.shipped_back", RepairShippedIn, "The repaired item was shipped back")
    action("cancel-outcome", "cancel_outcome", NoteIn, "Cancel a return-original / offline-exchange outcome")
    action("replies", "reply", TextIn, "Reply to the customer's message", convert=lambda b: {"note": b.text})
    action("resolve", "mark_resolved", NoteIn, "Mark resolved after contacting the customer")
    action("arbitration", "arbitration.request", ArbitrationRequestIn, "Ask the platform to intervene")
    action("abandon", "abandon", AbandonIn, "Abandon on the customer's behalf (note required)")

    @router.post("/service-orders/batch-audit", response_model=BatchResults,
                 summary="Batch audit: reject or abandon many orders")
    async def batch_audit(body: BatchAuditIn, rt: Runtime = Depends(get_runtime),
                          p: Principal = Depends(back_office)) -> dict:
        data = {"opinion": body.opinion, "note": body.note}
        return {"results": await perform_batch(rt, p, body.order_ids, f"audit.{body.decision}", data)}

    @router.post("/service-orders/batch-assign", response_model=BatchResults,
                 summary="Assign many orders to one staff member")
    async def batch_assign(body: BatchAssignIn, rt: Runtime = Depends(get_runtime),
                           p: Principal = Depends(back_office)) -> dict:
        return {"results": await perform_batch(rt, p, body.order_ids, "assign", {"staff_id": body.staff_id})}

    return router


merchant_router = build("/v1/merchant", "merchant", merchant)
platform_orders_router = build("/v1/platform", "platform", platform)

staff_router = APIRouter(prefix="/v1/merchant/staff", tags=["merchant"])


# only the merchant's main account manages staff (the policy says so, for the docs and the matrix)
main_account = Policy("merchant_main", scope="the merchant's own staff")


@staff_router.get("", response_model=StaffList, summary="Staff sub-accounts")
async def staff_list(rt: Runtime = Depends(get_runtime), p: Principal = Depends(main_account)) -> dict:
    return {"items": await accounts.list_staff(rt, p.merchant_id)}


@staff_router.post("", status_code=201, response_model=CreatedStaff,
                   summary="Create a staff sub-account (at most 10); returns its credentials once")
async def staff_create(body: StaffIn, rt: Runtime = Depends(get_runtime), p: Principal = Depends(main_account)) -> dict:
    return await accounts.create_staff(rt, p.merchant_id, body)


@staff_router.patch("/{staff_id}", response_model=StaffOut, summary="Change permissions / categories, or deactivate")
async def staff_patch(staff_id: StaffId, body: StaffPatch, rt: Runtime = Depends(get_runtime),
                      p: Principal = Depends(main_account)) -> dict:
    return await accounts.update_staff(rt, p.merchant_id, staff_id, body.model_dump(exclude_none=True))


_ = AbandonIn
