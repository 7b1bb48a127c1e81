"""Platform API: arbitration, merchant onboarding and mode configuration, API clients."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from orders.api.common import MerchantId, OrderId, Page, arbitrator, operator, page, platform, get_runtime
from orders.api.responses import ActionResult, Credentials, MerchantProfile, OnboardedMerchant, OrderSearch
from orders.handlers import accounts, queries
from orders.handlers.lifecycle import perform
from orders.schemas import ArbitrationDecisionIn, ClientIn, MerchantIn, MerchantPatch, RefundPaidIn, SkuIn
from shared.auth import Principal
from shared.runtime import Runtime

router = APIRouter(prefix="/v1/platform", tags=["platform"])


@router.get("/arbitration", response_model=OrderSearch,
            summary="Arbitration queue: locked orders waiting for a decision")
async def queue(pg: Page = Depends(page), rt: Runtime = Depends(get_runtime),
                p: Principal = Depends(platform)) -> dict:
    return await queries.search(rt, p, {"state": "arbitration"}, pg.limit, pg.offset)


@router.post("/service-orders/{order_id}/arbitration-decision", response_model=ActionResult,
             summary="Binding decision on a locked order")
async def decide(order_id: OrderId, body: ArbitrationDecisionIn, rt: Runtime = Depends(get_runtime),
                 p: Principal = Depends(arbitrator)) -> dict:
    return queries.brief(await perform(rt, p, order_id, "arbitration.decide", body.model_dump(mode="json")), p)


@router.post("/service-orders/{order_id}/refund-paid", response_model=ActionResult,
             summary="Finance confirms the refund was paid out")
async def refund_paid(order_id: OrderId, body: RefundPaidIn, rt: Runtime = Depends(get_runtime),
                      p: Principal = Depends(operator)) -> dict:
    return queries.brief(await perform(rt, p, order_id, "refund.paid", body.model_dump(mode="json")), p)


@router.post("/merchants", status_code=201, response_model=OnboardedMerchant,
             summary="Onboard a merchant; returns its main account credentials once")
async def onboard(body: MerchantIn, rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator)) -> dict:
    return await accounts.onboard_merchant(rt, body)


@router.get("/merchants/{merchant_id}", response_model=MerchantProfile,
            summary="A merchant's profile, mode and catalogue")
async def merchant(merchant_id: MerchantId, rt: Runtime = Depends(get_runtime), p: Principal = Depends(platform)) -> dict:
    return await accounts.get_merchant(rt, merchant_id)


@router.patch("/merchants/{merchant_id}", response_model=MerchantProfile,
               summary="Change mode (per merchant / per category), contact, served-by-platform")
async def configure(merchant_id: MerchantId, body: MerchantPatch, rt: Runtime = Depends(get_runtime),
                    p: Principal = Depends(operator)) -> dict:
    return await accounts.configure_merchant(rt, merchant_id, body.model_dump(exclude_none=True))


@router.put("/merchants/{merchant_id}/skus", response_model=MerchantProfile,
            summary="Add or update catalogue SKUs")
async def skus(merchant_id: MerchantId, body: list[SkuIn], rt: Runtime = Depends(get_runtime),
               p: Principal = Depends(operator)) -> dict:
    return await accounts.upsert_skus(rt, merchant_id, body)


@router.post("/clients", status_code=201, response_model=Credentials,
             summary="Create storefront / operator / arbitrator credentials")
async def client(body: ClientIn, rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator)) -> dict:
    return await accounts.create_client(rt, client_id=body.client_id, role=body.role, name=body.name)
