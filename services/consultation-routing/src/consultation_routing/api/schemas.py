"""Response models of the routing API: what each route answers, for the OpenAPI
document (and the clients and schemathesis that check answers against it).

The routes build plain dicts (``enrollment_view``, the engine's answer); these models
only describe them and must not change a byte of the answer:

- every key always written is a required field, ``X | None`` where it can be ``null``;
- times stay the ISO strings the routes write (``format: date-time``): a pydantic
  ``datetime`` would re-render ``+00:00`` as ``Z``;
- ``extra="forbid"``: a key a route adds without its model fails the response (and a
  test), instead of being silently dropped from the answer.

GET /v1/route is answered by the fast path (``RouteFastPath``), which never goes
through FastAPI's response validation: ``RouteAnswer`` documents it, and the tests check
the fast path's answers against it."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.routing import REASONS


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


DateTimeStr = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="ISO time, UTC offset")]
HourMinute = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$", description="HH:MM Beijing time")]


# ---------------------------------------------------------------- GET /v1/route

class Fallback(Out):
    """The platform queue, for when the manufacturer's queue cannot take the customer."""
    target: Literal["platform"]
    queue_id: str | None = Field(description="IM: the platform's queue; phone: null")
    hotline: str | None = Field(description="phone: the platform hotline; IM: null")


class RouteAnswer(Out):
    decision_id: str
    target: Literal["manufacturer", "platform"]
    reason: Literal[REASONS]  # type: ignore[valid-type]
    channel: Literal["phone", "im"]
    queue_id: str | None = Field(description="IM: the queue to join; phone: null")
    hotline: str | None = Field(description="phone: the number to dial; IM: null")
    extension: str | None = Field(description="phone, manufacturer target: the extension to dial")
    hover_text: str | None = Field(description="phone on the product page: the text to show")
    manufacturer_id: str | None = Field(description="the SKU's manufacturer, when known")
    category: str | None = Field(description="the SKU's category, when known")
    fallback: Fallback
    what_if: bool = Field(description="an operator's what-if: answered, not recorded")


# ---------------------------------------------------------------- operators

class HoursOut(Out):
    start: HourMinute = Field(description="HH:MM Beijing time, inclusive")
    end: HourMinute = Field(description="HH:MM Beijing time, exclusive")


class CapacityOut(Out):
    min_agents: int
    max_queue_length: int | None
    max_expected_wait_s: int | None


class EnrollmentOut(Out):
    """A manufacturer's enrollment (``operators.enrollment_view``)."""
    id: str
    name: str
    categories: list[str]
    phone_hours: HoursOut
    im_hours: HoursOut
    serve_non_working_days: bool
    im_queue_id: str
    phone_extension: str
    hover_text: str | None
    capacity: CapacityOut
    package: Literal[1, 2]
    disqualified: bool
    disqualified_reason: str | None
    disqualified_at: DateTimeStr | None
    updated_at: DateTimeStr


class RowErrorOut(Out):
    line: int = Field(description="1-based line of the upload (the CSV header is line 1)")
    error: str


class CatalogueLoadOut(Out):
    accepted: int = Field(description="SKUs kept (a SKU repeated in the upload counts once)")
    rejected: int = Field(description="rows refused (all of them, even past the 1,000 listed)")
    errors: list[RowErrorOut] = Field(description="the first 1,000 refused rows")


class QueueStateOut(Out):
    manufacturer_id: str
    agents_online: int
    queue_length: int
    expected_wait_s: int | None
    reported_at: DateTimeStr


class TransferOut(Out):
    id: str
    decision_id: str
    manufacturer_id: str
    agent_id: str
    reason: str
    transferred_at: DateTimeStr
    target: Literal["platform"]
    queue_id: str | None = Field(description="IM: the platform's queue; phone: null")
    hotline: str | None = Field(description="phone: the platform hotline; IM: null")
