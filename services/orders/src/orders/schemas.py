"""Request and response bodies of the orders API."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import unicodedata

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from orders.domain.states import STATES

ServiceType = Literal["return", "exchange", "repair", "compensation"]
ProblemType = Literal["quality", "logistics", "not_as_described", "no_reason", "other"]


def _nul_free(v) -> bool:
    if isinstance(v, str):
        return "\x00" not in v
    if isinstance(v, dict):
        return all(_nul_free(k) and _nul_free(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_nul_free(x) for x in v)
    return True


class _Body(BaseModel):
    """A request body: no NUL character in any text (no stored value holds one, and
    PostgreSQL refuses it with an error instead of a 422)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data):
        if not _nul_free(data):
            raise ValueError("text must not contain NUL characters")
        return data


class ApplicationIn(_Body):
    merchant_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    customer_phone: str = Field(pattern=r"^1\d{10}$", description="Mainland mobile number, 11 digits")
    customer_level: str = Field(default="regular", max_length=20)
    sales_order_id: str = Field(min_length=1, max_length=64)
    order_line_id: str = Field(min_length=1, max_length=64)
    sku: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=64)
    purchased_quantity: int = Field(ge=1, le=10000)
    quantity: int = Field(ge=1, le=10000)
    amount_paid: Decimal = Field(ge=0, max_digits=12, decimal_places=2, description="CNY paid for the line")
    service_type: ServiceType
    problem_type: ProblemType
    delivered_at: datetime
    description: str = Field(default="", max_length=2000)
    evidence: list[str] = Field(default_factory=list, max_length=20, description="photo/video references")

    @field_validator("delivered_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("delivered_at needs a timezone offset")
        return v


class ServiceOrderOut(BaseModel):
    """What an application answers (read from the new order's attributes)."""
    model_config = ConfigDict(extra="forbid")

    id: str
    number: str
    state: Literal[STATES] = Field(  # type: ignore[valid-type]
        description="pending_claim for a new order; for a repeated Idempotency-Key, the order's current state")
    version: int
    merchant_id: str
    customer_id: str
    sku: str
    category: str = Field(description="the SKU's category in the merchant's catalogue (the caller's only when "
                                      "the merchant has no catalogue); it decides the eligibility window")
    quantity: int
    # a Decimal (the order's value), sent as a string with two places
    amount_paid: Annotated[Decimal, WithJsonSchema({"type": "string", "pattern": r"^\d+\.\d{2}$",
                                                    "description": "CNY amount, 2 decimals"})]
    service_type: ServiceType
    problem_type: ProblemType
    created_at: datetime


# ------------------------------------------------------------------ lifecycle inputs
Money = Decimal


class _In(_Body):
    model_config = {"extra": "forbid"}


class ShipmentIn(_In):
    carrier: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=64)
    freight_paid: Decimal = Field(default=Decimal("0"), ge=0, max_digits=10, decimal_places=2)


class FeedbackIn(_In):
    text: str = Field(min_length=1, max_length=2000)
    evidence: list[str] = Field(default_factory=list, max_length=20)


class AbandonIn(_In):
    reason: str | None = Field(default=None, max_length=1000)
    note: str | None = Field(default=None, max_length=2000, description="merchant: note of the conversation")


class TextIn(_In):
    text: str = Field(min_length=1, max_length=2000)


class NoteIn(_In):
    note: str | None = Field(default=None, max_length=2000)


class RatingIn(_In):
    stars: int = Field(ge=1, le=5)
    text: str = Field(default="", max_length=2000)
    recommend: int | None = Field(default=None, ge=0, le=10, description="likelihood to recommend, 0-10")


class ArbitrationRequestIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


# type/subtype with optional parameters, printable ASCII only (it becomes the download's Content-Type)
MEDIA_TYPE = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9!#$&^_.+-]+(;[\x20-\x7e]*)?$"


class AttachmentIn(_In):
    filename: str = Field(min_length=1, max_length=200, description="kept as given for display; no control characters")
    content_type: str = Field(default="application/octet-stream", max_length=100, pattern=MEDIA_TYPE)
    content_base64: str

    @field_validator("filename")
    @classmethod
    def _printable_name(cls, v: str) -> str:
        # CR/LF, NUL and the other C0/C1 controls (and DEL) could break the download header or
        # a log line; everything else (quotes, non-ASCII) is kept and sent encoded (RFC 6266).
        if any(unicodedata.category(ch) == "Cc" for ch in v):
            raise ValueError("the file name must not contain control characters (CR, LF, NUL, …)")
        return v


class AuditIn(_In):
    decision: Literal["resend_without_return", "approve_return", "request_feedback", "reject", "abandon"]
    opinion: str = Field(default="", max_length=2000)
    sku: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)
    attachments: list[AttachmentIn] = Field(default_factory=list)


class BatchAuditIn(_In):
    order_ids: list[str] = Field(min_length=1, max_length=200)
    decision: Literal["reject", "abandon"]
    opinion: str = Field(default="", max_length=2000)
    note: str | None = Field(default=None, max_length=2000)


class AssignIn(_In):
    staff_id: str = Field(min_length=1, max_length=64)


class BatchAssignIn(AssignIn):
    order_ids: list[str] = Field(min_length=1, max_length=200)


class ReceiptIn(_In):
    condition: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class FreightIn(_In):
    freight_to_return: Decimal = Field(ge=0, max_digits=10, decimal_places=2)


class ProcessIn(_In):
    decision: Literal["refund", "exchange", "return_original", "offline_exchange", "repair"]
    amount: Decimal | None = Field(default=None, max_digits=12, decimal_places=2)
    reason: str | None = Field(default=None, max_length=500)
    remark: str | None = Field(default=None, max_length=2000)
    sku: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)
    tracking_number: str | None = Field(default=None, max_length=64)
    customer_agreed_by_phone: bool | None = None


class ExchangeShipmentIn(_In):
    carrier: str = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=64)


class RepairShippedIn(_In):
    carrier: str | None = Field(default=None, max_length=64)
    tracking_number: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=2000)


class ArbitrationDecisionIn(_In):
    outcome: Literal["refund", "exchange", "return_original", "reject"]
    amount: Decimal | None = Field(default=None, max_digits=12, decimal_places=2)
    sku: str | None = Field(default=None, max_length=64)
    note: str = Field(min_length=1, max_length=2000)


# ------------------------------------------------------------------ accounts
Mode = Literal["platform", "customer_contact", "full_manufacturer", "pop_self_service"]


class SkuIn(_In):
    sku: str = Field(min_length=1, max_length=64)
    category: str = Field(min_length=1, max_length=64)
    price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)


class MerchantIn(_In):
    # ≤ 59: its main account is "<id>.main" (client ids have at most 64 characters)
    id: str = Field(min_length=1, max_length=59, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["pop_seller", "manufacturer"]
    mode: Mode
    category_modes: dict[str, Mode] = Field(default_factory=dict)
    contact_phone: str = Field(pattern=r"^[0-9-]{7,20}$")
    return_address: str = Field(min_length=1, max_length=500)
    served_by_platform: bool = False
    skus: list[SkuIn] = Field(default_factory=list, max_length=1000)


class MerchantPatch(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    mode: Mode | None = None
    category_modes: dict[str, Mode] | None = None
    contact_phone: str | None = Field(default=None, pattern=r"^[0-9-]{7,20}$")
    return_address: str | None = Field(default=None, min_length=1, max_length=500)
    served_by_platform: bool | None = None


class StaffIn(_In):
    login: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    permissions: list[Literal["audit", "process"]] = Field(min_length=1)
    categories: list[str] = Field(min_length=1, max_length=100)


class StaffPatch(_In):
    permissions: list[Literal["audit", "process"]] | None = None
    categories: list[str] | None = None
    active: bool | None = None


class ClientIn(_In):
    client_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    role: Literal["storefront", "platform_operator", "arbitrator"]
    name: str = Field(min_length=1, max_length=200)


class RefundPaidIn(_In):
    payout_reference: str = Field(min_length=1, max_length=100)
