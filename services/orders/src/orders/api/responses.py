"""Response models of the orders API: what each route answers, for the OpenAPI document
(and the clients and schemathesis that check answers against it).

The handlers build plain dicts (``handlers/queries.py``: ``summary``, ``brief``,
``view``, ``search``; ``handlers/accounts.py``); these models only describe them and
must not change a byte of the answer:

- every key always written is a required field, ``X | None`` where it can be ``null``;
  the fields are in the order the handlers write the keys (FastAPI serializes through
  the model, in field order);
- times stay the ISO strings the handlers write (``format: date-time``): a pydantic
  ``datetime`` would re-render ``+00:00`` as ``Z``;
- money is a decimal string with exactly two places (the domain quantizes every amount,
  the columns are NUMERIC(12, 2));
- ``extra="forbid"``: a key a handler adds without its model fails the response (and a
  test), instead of being silently dropped from the answer.

The order actions (``POST …/service-orders/{id}/{action}``) and the application answer a
``JSONResponse``: FastAPI does not validate a returned ``Response``, so there
``response_model`` only documents. The tests check those answers
against these models (tests/test_response_models.py)."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from orders.domain.states import STATES, TRANSITIONS
from orders.schemas import Mode, ProblemType, ServiceType


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


DateTimeStr = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="ISO time, UTC offset")]
BeijingTimeStr = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
                                      description="the same time in Beijing, YYYY-MM-DD HH:MM:SS")]
MONEY_PATTERN = r"^\d+\.\d{2}$"
Money = Annotated[str, Field(pattern=MONEY_PATTERN, description="CNY amount, 2 decimals")]
State = Literal[STATES]  # type: ignore[valid-type]
# Every action of the transition table (system.* ones included: allowed_actions lists them).
Action = Literal[tuple(sorted({a for _s, a in TRANSITIONS}))]  # type: ignore[valid-type]
Role = Literal["storefront", "platform_operator", "arbitrator", "merchant_main", "merchant_staff"]
Permission = Literal["audit", "process"]
FreightPayer = Literal["customer", "merchant", "platform"]
CURRENT_HANDLER = ("who acts next: customer, merchant_pool, the holding staff id, platform, "
                   "platform_arbitration, or none (closed)")


# ---------------------------------------------------------------- orders

class OrderSummary(Out):
    """One order in a list (``queries.summary``)."""
    id: str
    number: str
    state: State
    version: int
    merchant_id: str
    customer_id: str
    sku: str
    category: str
    quantity: int
    amount_paid: Money
    service_type: ServiceType
    problem_type: ProblemType
    mode: Mode
    handler_id: str | None = Field(description="staff id holding the order; null while in the pool")
    customer_responded: bool
    created_at: DateTimeStr
    updated_at: DateTimeStr


class CustomerOrderItem(OrderSummary):
    current_handler: str = Field(description=CURRENT_HANDLER)


class CustomerOrders(Out):
    items: list[CustomerOrderItem]


class OrderSearch(Out):
    """Search (and the arbitration queue): one page and the counts per state of every
    order matching the filters except ``state``."""
    total: int = Field(description="orders matching the filters, state included")
    limit: int
    offset: int
    counts_by_state: dict[State, int]
    items: list[OrderSummary]


class CustomerActionResult(OrderSummary):
    """What a storefront action answers (``queries.brief`` for the customer)."""
    current_handler: str = Field(description=CURRENT_HANDLER)
    allowed_actions: list[Action]
    expected_completion: DateTimeStr | None = Field(description="when the current step is due; null without one")
    refunded_amount: Money
    outcome: str | None = Field(description="the processing / arbitration outcome, once decided")
    audit_opinion: str | None


class ActionResult(CustomerActionResult):
    """What a merchant / platform action answers (``queries.brief``, back office)."""
    freight_to_return: Money
    locked_from: State | None = Field(description="the state arbitration locked the order in")
    return_freight_payer: FreightPayer


class ShipmentOut(Out):
    carrier: str | None
    tracking_number: str | None
    freight_paid: Money | None = Field(description="freight the customer declared for the return")


class ExchangeOrderOut(Out):
    id: str
    sku: str
    status: Literal["created", "shipped"]
    carrier: str | None
    tracking_number: str | None


class RatingOut(Out):
    stars: int = Field(ge=1, le=5)
    text: str
    recommend: int | None = Field(ge=0, le=10)


class CustomerTimelineEntry(Out):
    at: DateTimeStr
    at_beijing: BeijingTimeStr
    action: str
    actor_role: str
    from_state: str = Field(description="empty for the application")
    to_state: str
    note: str | None
    details: dict[str, Any] = Field(description="the details a customer may see (decision, opinion, return address, "
                                                "carrier, tracking number, amount, sku, freight paid, outcome, stars)")


class TimelineEntry(Out):
    at: DateTimeStr
    at_beijing: BeijingTimeStr
    action: str
    actor_role: str
    from_state: str = Field(description="empty for the application")
    to_state: str
    note: str | None
    actor_id: str
    internal_note: str | None
    customer_visible: bool
    details: dict[str, Any]
    version: int = Field(description="the order version this entry made")


class AttachmentOut(Out):
    id: str
    filename: str = Field(description="as uploaded (for display)")
    size: int = Field(description="bytes")
    content_type: str


class _View(OrderSummary):
    """The keys of ``queries.view`` both sides get, up to the timeline."""
    current_handler: str = Field(description=CURRENT_HANDLER)
    expected_completion: DateTimeStr | None = Field(description="when the current step is due; null without one")
    allowed_actions: list[Action]
    audit_opinion: str | None
    return_address: str | None = Field(description="null until the order is claimed")
    shipment: ShipmentOut
    refunded_amount: Money
    outcome: str | None
    exchange_orders: list[ExchangeOrderOut]
    rating: RatingOut | None


class CustomerOrderView(_View):
    """The customer's progress view: customer-visible timeline entries only."""
    timeline: list[CustomerTimelineEntry]


class OrderView(_View):
    """The merchant / platform detail: the whole timeline with internal notes, attachments."""
    timeline: list[TimelineEntry]
    freight_to_return: Money
    return_freight_payer: FreightPayer
    locked_from: State | None
    arbitration_requested: bool
    receipt_condition: str | None
    customer_phone: str
    sales_order_id: str
    outcome_details: dict[str, Any]
    on_behalf: bool = Field(description="served by the platform on the merchant's behalf")
    attachments: list[AttachmentOut]


class BatchError(Out):
    code: str
    message: str


class BatchDone(Out):
    id: str
    ok: Literal[True]
    state: State
    version: int


class BatchFailed(Out):
    id: str
    ok: Literal[False]
    error: BatchError


class BatchResults(Out):
    """One result per order id, in the order given; each order in its own transaction."""
    results: list[Union[BatchDone, BatchFailed]]


# ---------------------------------------------------------------- accounts

class Credentials(Out):
    """Client credentials; the secret is shown this once (only its hash is stored)."""
    client_id: str
    client_secret: str
    role: Role


class SkuOut(Out):
    sku: str
    category: str
    price: Money


class ProfileWarning(Out):
    code: Literal["contact_cannot_receive_sms"]
    field: str
    message: str


class MerchantProfile(Out):
    id: str
    name: str
    kind: Literal["pop_seller", "manufacturer"]
    mode: Mode
    category_modes: dict[str, Mode]
    contact_phone: str
    contact_sms_capable: bool = Field(description="false for a landline or hotline: SMS go to mobile numbers only, "
                                                  "the merchant gets in-site messages instead")
    return_address: str
    served_by_platform: bool
    disqualified_since: DateTimeStr | None
    skus: list[SkuOut]
    warnings: list[ProfileWarning] = Field(description="what the operator should fix or know (empty when none)")


class OnboardedMerchant(Out):
    merchant: MerchantProfile
    main_account: Credentials


class StaffOut(Out):
    id: str = Field(description="<merchant id>.<login>, also its client id")
    name: str
    permissions: list[Permission]
    categories: list[str]
    active: bool


class StaffList(Out):
    items: list[StaffOut]


class CreatedStaff(Out):
    staff: StaffOut
    credentials: Credentials


class TokenOut(Out):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds")


# The attachment download: bytes, not JSON.
BINARY_RESPONSE = {
    200: {
        "description": "the file as uploaded, with the content type given at upload (application/octet-stream "
                       "when none was usable) and `Content-Disposition: attachment` (RFC 6266 `filename*`)",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {"Content-Disposition": {"description": "attachment; filename=\"<ASCII fallback>\"; "
                                                           "filename*=UTF-8''<the name, percent-encoded>",
                                            "schema": {"type": "string"}}},
    }
}
