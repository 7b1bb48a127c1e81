"""Response models of the notifier API: what each route answers, for the OpenAPI document
(and the clients and schemathesis that check answers against it).

The routes build plain dicts (``api._message``, ``api._template``, ...); these models only
describe them and must not change a byte of the answer:

- every key always written is a required field, ``X | None`` where it can be ``null``;
- times are the ISO strings the routes write (``format: date-time``): a pydantic
  ``datetime`` would re-render ``+00:00`` as ``Z``;
- ``extra="forbid"``: a key a route adds without its model fails the response (and a
  test) instead of being silently dropped from the answer."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


DateTimeStr = Annotated[str, Field(json_schema_extra={"format": "date-time"}, description="ISO time, UTC offset")]
MaskedPhone = Annotated[str, Field(description="masked: first 3 and last 4 digits (e.g. 138****8000)")]
Channel = Literal["sms", "inbox"]
Status = Literal["queued", "sent", "delivered", "failed", "cancelled"]


# ---------------------------------------------------------------- templates

class TemplateOut(Out):
    key: str
    version: int
    title: str
    body: str = Field(description="the text with ${variable} placeholders")
    variables: list[str]
    created_at: DateTimeStr


class TemplatesOut(Out):
    items: list[TemplateOut]


class PreviewOut(Out):
    key: str
    version: int
    title: str
    text: str = Field(description="the latest version rendered with the sample values")


# ---------------------------------------------------------------- messages

class MessageOut(Out):
    id: int
    event_id: str = Field(description="the event that triggered it (one message per event, recipient, template)")
    kind: str
    channel: Channel
    template_key: str
    template_version: int | None = Field(description="null when the template was unknown")
    order_id: str | None
    audience: Literal["customer", "merchant", "staff"]
    audience_id: str | None
    recipient: str = Field(description="sms:<masked phone> or inbox:<audience>:<id>")
    phone: MaskedPhone | None
    title: str
    body: str
    status: Status = Field(description="cancelled: a reminder or escalation whose deadline no longer held")
    attempts: int
    next_attempt_at: DateTimeStr | None
    last_error: str | None
    provider_message_id: str | None
    receipt: str | None = Field(description="the gateway's delivery receipt as received (JSON text)")
    read: bool
    created_at: DateTimeStr
    sent_at: DateTimeStr | None
    delivered_at: DateTimeStr | None


class MessagesOut(Out):
    items: list[MessageOut]


class ContactOut(Out):
    order_id: str
    number: str
    merchant_id: str
    customer_id: str
    customer_phone: MaskedPhone
    return_address: str | None


# ---------------------------------------------------------------- phone reveals

class MessagePhoneOut(Out):
    message_id: int
    order_id: str | None
    phone: str = Field(description="the whole number")
    reveal_id: int = Field(description="the audit entry of this request")
    revealed_at: DateTimeStr


class ContactPhoneOut(Out):
    order_id: str
    customer_phone: str = Field(description="the whole number")
    reveal_id: int = Field(description="the audit entry of this request")
    revealed_at: DateTimeStr


class RevealOut(Out):
    id: int
    at: DateTimeStr
    actor: str = Field(description="the token's subject")
    actor_role: str
    target: Literal["message", "order_contact"]
    message_id: int | None
    order_id: str | None
    reason: str


class RevealsOut(Out):
    items: list[RevealOut]
    total: int


# ---------------------------------------------------------------- inboxes

class InboxItemOut(Out):
    id: int
    kind: str
    order_id: str | None
    title: str
    body: str
    read: bool
    created_at: DateTimeStr


class InboxOut(Out):
    unread: int
    items: list[InboxItemOut]


class MarkedReadOut(Out):
    id: int
    read: bool


class MarkedAllOut(Out):
    marked: int


# ---------------------------------------------------------------- receipts

class ReceiptOut(Out):
    id: int = Field(description="our message id")
    status: Literal["delivered", "failed"]


# ---------------------------------------------------------------- delivery summary (operators)

class DeliveryGroupOut(Out):
    channel: Channel
    template_key: str
    status: Status
    retrying: bool = Field(description="queued after at least one failed attempt (waiting for its next try)")
    count: int


class FailureOut(Out):
    id: int
    channel: Channel
    template_key: str
    order_id: str | None
    recipient: str = Field(description="sms:<masked phone> or the in-site recipient")
    attempts: int
    last_error: str | None
    created_at: DateTimeStr


class DeliverySummaryOut(Out):
    groups: list[DeliveryGroupOut]
    failed_total: int
    failures: list[FailureOut] = Field(description="the latest failed messages, newest first")
