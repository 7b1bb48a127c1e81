"""Operator and CS-system endpoints: enrollment, disqualification, catalogue,
live queue state, transfers. Platform operators only (bearer token), except
transfers, which a manufacturer's own accounts may also record."""
from __future__ import annotations

import re
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator, model_validator

from consultation_routing.api.schemas import CatalogueLoadOut, EnrollmentOut, QueueStateOut, TransferOut
from consultation_routing.parts import routing_of
from consultation_routing.domain.model import DEFAULT_HOURS
from consultation_routing.handlers.catalogue import load_catalogue
from consultation_routing.handlers.enrollment import get_enrollment, save_enrollment, set_disqualified
from consultation_routing.handlers.queues import report_queue
from consultation_routing.handlers.transfers import transfer_to_platform
from consultation_routing.models import ManufacturerRow
from shared.auth import Principal, require_principal
from shared.errors import ApiError
from shared.runtime import Runtime, get_runtime

router = APIRouter(prefix="/v1", tags=["operators"])
operator = require_principal("platform_operator")
Id = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
_HM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_UPLOAD = 50 * 1024 * 1024


class Hours(BaseModel):
    start: str = Field(description="HH:MM Beijing time, inclusive")
    end: str = Field(description="HH:MM Beijing time, exclusive")

    @model_validator(mode="after")
    def _valid(self) -> "Hours":
        if not (_HM.match(self.start) and _HM.match(self.end)):
            raise ValueError("hours are HH:MM")
        if self.start >= self.end:
            raise ValueError("start must be before end, within one day")
        return self


def _default(ch: str) -> Hours:
    s, e = DEFAULT_HOURS[ch]
    return Hours(start=s.strftime("%H:%M"), end=e.strftime("%H:%M"))


class Capacity(BaseModel):
    min_agents: int = Field(default=1, ge=1, le=100000)
    max_queue_length: int | None = Field(default=None, ge=1, le=1000000)
    max_expected_wait_s: int | None = Field(default=None, ge=1, le=86400)


class Enrollment(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    categories: list[str] = Field(max_length=200, description="Categories with service-express consultation")
    phone_hours: Hours = Field(default_factory=lambda: _default("phone"))
    im_hours: Hours = Field(default_factory=lambda: _default("im"))
    serve_non_working_days: bool = False
    im_queue_id: str = Id
    phone_extension: str = Field(min_length=1, max_length=20, pattern=r"^\d+$")
    hover_text: str | None = Field(default=None, max_length=500)
    capacity: Capacity = Field(default_factory=Capacity)
    package: Literal[1, 2] = Field(default=1, description="Billing package for categories §5.5 does not list")

    @field_validator("categories")
    @classmethod
    def _cats(cls, v: list[str]) -> list[str]:
        out = sorted({c.strip().lower() for c in v})
        if any(not c or len(c) > 100 for c in out):
            raise ValueError("categories are 1..100 characters")
        return out


def enrollment_view(r: ManufacturerRow) -> dict:
    return {
        "id": r.id, "name": r.name, "categories": r.categories,
        "phone_hours": {"start": r.hours["phone"][0], "end": r.hours["phone"][1]},
        "im_hours": {"start": r.hours["im"][0], "end": r.hours["im"][1]},
        "serve_non_working_days": r.serve_non_working_days, "im_queue_id": r.im_queue_id,
        "phone_extension": r.phone_extension, "hover_text": r.hover_text,
        "capacity": {"min_agents": r.min_agents, "max_queue_length": r.max_queue_length,
                     "max_expected_wait_s": r.max_expected_wait_s},
        "package": r.package, "disqualified": r.disqualified, "disqualified_reason": r.disqualified_reason,
        "disqualified_at": r.disqualified_at.isoformat() if r.disqualified_at else None,
        "updated_at": r.updated_at.isoformat(),
    }


@router.put("/manufacturers/{manufacturer_id}/enrollment", summary="Enroll or update a manufacturer (service express)",
            response_model=EnrollmentOut)
async def put_enrollment(manufacturer_id: str, body: Enrollment, request: Request,
                         rt: Runtime = Depends(get_runtime), _: Principal = Depends(operator)) -> dict:
    if not re.fullmatch(r"[A-Za-z0-9._:-]{1,100}", manufacturer_id):
        raise ApiError(422, "validation_error", "manufacturer id: 1..100 of A-Z a-z 0-9 . _ : -")
    row = await save_enrollment(rt, routing_of(rt), manufacturer_id, {
        "name": body.name, "categories": body.categories,
        "hours": {"phone": [body.phone_hours.start, body.phone_hours.end],
                  "im": [body.im_hours.start, body.im_hours.end]},
        "serve_non_working_days": body.serve_non_working_days, "im_queue_id": body.im_queue_id,
        "phone_extension": body.phone_extension, "hover_text": body.hover_text,
        "min_agents": body.capacity.min_agents, "max_queue_length": body.capacity.max_queue_length,
        "max_expected_wait_s": body.capacity.max_expected_wait_s, "package": body.package,
    })
    return enrollment_view(row)


@router.get("/manufacturers/{manufacturer_id}/enrollment", summary="A manufacturer's enrollment",
            response_model=EnrollmentOut)
async def read_enrollment(manufacturer_id: str, rt: Runtime = Depends(get_runtime),
                          _: Principal = Depends(operator)) -> dict:
    return enrollment_view(await get_enrollment(rt, manufacturer_id))


class Disqualification(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


@router.post("/manufacturers/{manufacturer_id}/disqualification", summary="Disqualify: route to the platform",
             response_model=EnrollmentOut)
async def disqualify(manufacturer_id: str, body: Disqualification, request: Request,
                     rt: Runtime = Depends(get_runtime), _: Principal = Depends(operator)) -> dict:
    return enrollment_view(await set_disqualified(rt, routing_of(rt), manufacturer_id, True, body.reason))


@router.delete("/manufacturers/{manufacturer_id}/disqualification", summary="Reinstate a disqualified manufacturer",
               response_model=EnrollmentOut)
async def reinstate(manufacturer_id: str, request: Request, rt: Runtime = Depends(get_runtime),
                    _: Principal = Depends(operator)) -> dict:
    return enrollment_view(await set_disqualified(rt, routing_of(rt), manufacturer_id, False, None))


@router.post(
    "/catalogue/skus",
    summary="Bulk load SKUs (CSV with header sku,manufacturer_id,category, or JSON lines)",
    description="Content-Type text/csv or application/x-ndjson. Good rows are kept; bad rows are reported by line.",
    response_model=CatalogueLoadOut,
)
async def bulk_skus(request: Request, rt: Runtime = Depends(get_runtime), _: Principal = Depends(operator)) -> dict:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmts = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl",
            "application/x-jsonlines": "jsonl"}
    if ctype not in fmts:
        raise ApiError(415, "unsupported_media_type", "send text/csv or application/x-ndjson")
    raw = await request.body()
    if len(raw) > MAX_UPLOAD:
        raise ApiError(413, "too_large", f"uploads are limited to {MAX_UPLOAD} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(422, "bad_encoding", "the upload must be UTF-8") from None
    accepted, errors = await load_catalogue(rt, routing_of(rt), text, fmts[ctype])
    return {"accepted": accepted, "rejected": len(errors),
            "errors": [{"line": e.line, "error": e.error} for e in errors[:1000]]}


class QueueReport(BaseModel):
    agents_online: int = Field(ge=0, le=100000)
    queue_length: int = Field(ge=0, le=10000000)
    expected_wait_s: int | None = Field(default=None, ge=0, le=86400)


@router.put("/queues/{manufacturer_id}/state", summary="Live queue state pushed by the CS system",
            response_model=QueueStateOut)
async def put_queue(manufacturer_id: str, body: QueueReport, request: Request, rt: Runtime = Depends(get_runtime),
                    _: Principal = Depends(operator)) -> dict:
    routing = routing_of(rt)
    if manufacturer_id not in routing.state.manufacturers:
        await get_enrollment(rt, manufacturer_id)  # 404 when unknown
    q = await report_queue(rt, routing, manufacturer_id, body.agents_online, body.queue_length, body.expected_wait_s)
    return {"manufacturer_id": manufacturer_id, "agents_online": q.agents_online, "queue_length": q.queue_length,
            "expected_wait_s": q.expected_wait_s, "reported_at": q.reported_at.isoformat()}


class Transfer(BaseModel):
    decision_id: str = Field(min_length=1, max_length=36, description="the decision that sent the consultation to "
                             "this manufacturer's queue (GET /v1/route's decision_id)")
    manufacturer_id: str = Id
    agent_id: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500)
    channel: Literal["phone", "im"] | None = Field(default=None, description="optional: must be the decision's")
    sku: str | None = Field(default=None, max_length=100, description="optional: must be the decision's")


@router.post("/transfers", status_code=201, summary="队列转接: a manufacturer agent hands the consultation to the platform",
             description="The decision must exist (404 `decision_not_found`; decisions are kept "
                         "DECISION_RETENTION_H hours), concern this manufacturer (409 "
                         "`decision_of_another_manufacturer`; a manufacturer's own account gets 404) and have sent "
                         "the consultation to its queue (409 `decision_not_to_manufacturer`); once per decision (409 "
                         "`already_transferred`). A channel or SKU other than the decision's: 422 "
                         "`decision_mismatch`. Billed as the decision's channel and category.",
             response_model=TransferOut)
async def transfer(body: Transfer, request: Request, rt: Runtime = Depends(get_runtime),
                   p: Principal = Depends(require_principal("platform_operator", "merchant_main", "merchant_staff"))
                   ) -> dict:
    if p.is_merchant and p.merchant_id != body.manufacturer_id:
        raise ApiError(403, "forbidden", "a manufacturer may only transfer its own consultations")
    row, channel = await transfer_to_platform(rt, routing_of(rt), decision_id=body.decision_id,
                                              manufacturer_id=body.manufacturer_id, agent_id=body.agent_id,
                                              reason=body.reason, channel=body.channel, sku=body.sku,
                                              by_merchant=p.is_merchant)
    s = rt.settings
    return {"id": row.id, "decision_id": row.decision_id, "manufacturer_id": row.manufacturer_id,
            "agent_id": row.agent_id, "reason": row.reason, "transferred_at": row.transferred_at.isoformat(),
            "target": "platform",
            "queue_id": s.platform_im_queue_id if channel == "im" else None,
            "hotline": s.platform_hotline if channel == "phone" else None}
