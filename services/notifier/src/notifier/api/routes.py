"""HTTP API: templates, messages and contacts (phones masked for everyone; an operator
reveals one number by a recorded request), inboxes, receipts."""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select, update

from notifier.api import schemas
from notifier.domain.masking import mask_phone
from notifier.models import Message, OrderContact, TemplateVersion
from notifier.handlers.receipts import apply_receipt
from notifier.handlers.reveals import list_reveals, reveal_contact_phone, reveal_message_phone
from notifier.handlers.summary import delivery_summary
from notifier.adapters.template_store import latest, save
from notifier.domain.templates import render
from notifier.domain.webhook import MAX_BODY, verify
from shared.auth import Policy, Principal, require_principal
from shared.errors import ApiError
from shared.runtime import MAX_OFFSET, Runtime, get_runtime

router = APIRouter(prefix="/v1", tags=["notifier"])
# Bounded parameters (422, never a database error): ids as stored, offsets as in the shared runtime.
KEY = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="template key")
ORDER_ID = Path(min_length=1, max_length=64)
BIGINT_MAX = 2**63 - 1
operator = require_principal("platform_operator")
# Exactly the roles the handlers serve (an arbitrator has no delivery log or inbox here).
message_readers = Policy("storefront", "merchant_main", "merchant_staff", "platform_operator", customer=True,
                         scope="the caller's own messages (customer or merchant); operators all; phones masked")
inbox_owners = Policy("storefront", "merchant_main", "merchant_staff", customer=True,
                      scope="the caller's own inbox (customer or merchant)")
revealer = Policy("platform_operator", scope="one phone number per request, recorded in the phone reveal log")
# Why an operator needs the number: required, one line (no control characters), at least one
# visible character; stored trimmed.
REASON = Field(min_length=2, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
               description="why the whole number is needed (recorded with the reveal)")


def _phone(p: str | None) -> str | None:
    """Masked for every caller: the whole number only through a recorded reveal."""
    return None if p is None else mask_phone(p)


def _iso(t: datetime | None) -> str | None:
    """A time as the API writes it (what FastAPI's encoder wrote before the models)."""
    return None if t is None else t.isoformat()


def _message(m: Message) -> dict:
    recipient = m.recipient
    if m.channel == "sms" and m.phone:
        recipient = f"sms:{_phone(m.phone)}"
    return {"id": m.id, "event_id": m.event_id, "kind": m.kind, "channel": m.channel, "template_key": m.template_key,
            "template_version": m.template_version, "order_id": m.order_id, "audience": m.audience,
            "audience_id": m.audience_id, "recipient": recipient, "phone": _phone(m.phone),
            "title": m.title, "body": m.body, "status": m.status, "attempts": m.attempts,
            "next_attempt_at": _iso(m.next_attempt_at), "last_error": m.last_error,
            "provider_message_id": m.provider_message_id, "receipt": m.receipt, "read": m.read_at is not None,
            "created_at": _iso(m.created_at), "sent_at": _iso(m.sent_at), "delivered_at": _iso(m.delivered_at)}


def _template(t: TemplateVersion) -> dict:
    return {"key": t.key, "version": t.version, "title": t.title, "body": t.body,
            "variables": [v for v in t.variables.split(",") if v], "created_at": _iso(t.created_at)}


# --- templates -------------------------------------------------------------------------------
class TemplateIn(BaseModel):
    title: str = Field(min_length=1, max_length=128)
    body: str = Field(min_length=1, max_length=2000)
    variables: list[str] = Field(max_length=50)


class PreviewIn(BaseModel):
    variables: dict[str, str] = Field(default_factory=dict, max_length=50)


class RevealIn(BaseModel):
    reason: str = REASON


@router.get("/templates", summary="Latest version of every template", response_model=schemas.TemplatesOut)
async def list_templates(rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator)) -> dict:
    async with rt.sessions() as s:
        rows = (await s.execute(select(TemplateVersion).order_by(TemplateVersion.key, TemplateVersion.version))).scalars()
        by_key: dict[str, TemplateVersion] = {}
        for r in rows:
            by_key[r.key] = r
    return {"items": [_template(t) for t in by_key.values()]}


@router.get("/templates/{key}/versions", summary="Every version of one template",
            response_model=schemas.TemplatesOut)
async def template_versions(key: str = KEY, rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator)) -> dict:
    async with rt.sessions() as s:
        rows = (await s.execute(select(TemplateVersion).where(TemplateVersion.key == key)
                                .order_by(TemplateVersion.version))).scalars().all()
    if not rows:
        raise ApiError(404, "template_not_found", f"no template {key}")
    return {"items": [_template(t) for t in rows]}


@router.put("/templates/{key}", status_code=201, summary="Save a new version (checked against its variables)",
            response_model=schemas.TemplateOut)
async def save_template(body: TemplateIn, key: str = KEY, rt: Runtime = Depends(get_runtime),
                        p: Principal = Depends(operator)) -> dict:
    async with rt.uow() as s:
        row = await save(s, key, body.title, body.body, body.variables, rt.clock.now())
        return _template(row)


@router.post("/templates/{key}/preview", summary="Render the latest version with sample values",
             response_model=schemas.PreviewOut)
async def preview(body: PreviewIn, key: str = KEY, rt: Runtime = Depends(get_runtime),
                  p: Principal = Depends(operator)) -> dict:
    async with rt.sessions() as s:
        t = await latest(s, key)
    if t is None:
        raise ApiError(404, "template_not_found", f"no template {key}")
    try:
        text = render(t.body, body.variables)
    except KeyError as e:
        raise ApiError(422, "missing_variable", f"no value for variable {e.args[0]}", {"variable": e.args[0]}) from None
    return {"key": key, "version": t.version, "title": t.title, "text": text}


# --- messages (platform view) --------------------------------------------------------------------
@router.get("/messages", summary="Delivery log (phones masked for everyone)", response_model=schemas.MessagesOut)
async def list_messages(rt: Runtime = Depends(get_runtime), p: Principal = Depends(message_readers),
                        order_id: str | None = Query(None, min_length=1, max_length=64),
                        status: str | None = Query(None, pattern="^(queued|sent|delivered|failed|cancelled)$"),
                        limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict:
    q = select(Message)
    if order_id:
        q = q.where(Message.order_id == order_id)
    if status:
        q = q.where(Message.status == status)
    if p.role == "storefront":
        q = q.where(Message.audience == "customer", Message.audience_id == (p.customer_id or ""))
    elif p.is_merchant:
        q = q.where(Message.audience == "merchant", Message.audience_id == (p.merchant_id or ""))
    elif p.role != "platform_operator":
        raise ApiError(403, "forbidden", f"role {p.role} may not read the delivery log")
    async with rt.sessions() as s:
        rows = (await s.execute(q.order_by(Message.id).limit(limit).offset(offset))).scalars().all()
    return {"items": [_message(m) for m in rows]}


@router.get("/messages/summary", response_model=schemas.DeliverySummaryOut,
            summary="Delivery status per channel and template, and the latest failures with their reason (operators)")
async def messages_summary(rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator),
                           failures: int = Query(50, ge=0, le=500, description="latest failed messages listed")) -> dict:
    return await delivery_summary(rt, failures)


@router.post("/messages/{message_id}/reveal-phone", response_model=schemas.MessagePhoneOut,
             summary="An operator reveals the whole phone number of one message (recorded, with the reason)")
async def reveal_message(body: RevealIn, message_id: int = Path(ge=1, le=BIGINT_MAX),
                         rt: Runtime = Depends(get_runtime), p: Principal = Depends(revealer)) -> dict:
    return await reveal_message_phone(rt, p, message_id, body.reason.strip())


@router.get("/order-contacts/{order_id}", summary="Who the notifier would write to for one service order "
                                                  "(phone masked)", response_model=schemas.ContactOut)
async def order_contact(order_id: str = ORDER_ID, rt: Runtime = Depends(get_runtime),
                        p: Principal = Depends(operator)) -> dict:
    async with rt.sessions() as s:
        c = await s.get(OrderContact, order_id)
    if c is None:
        raise ApiError(404, "contact_not_found", f"no contact known for service order {order_id}")
    return {"order_id": c.order_id, "number": c.number, "merchant_id": c.merchant_id,
            "customer_id": c.customer_id, "customer_phone": _phone(c.customer_phone),
            "return_address": c.return_address}


@router.post("/order-contacts/{order_id}/reveal", response_model=schemas.ContactPhoneOut,
             summary="An operator reveals the customer's whole phone number of one order (recorded, with the reason)")
async def reveal_contact(body: RevealIn, order_id: str = ORDER_ID, rt: Runtime = Depends(get_runtime),
                         p: Principal = Depends(revealer)) -> dict:
    return await reveal_contact_phone(rt, p, order_id, body.reason.strip())


@router.get("/phone-reveals", response_model=schemas.RevealsOut,
            summary="The phone reveal log: who saw which number when and why, newest first")
async def phone_reveals(rt: Runtime = Depends(get_runtime), p: Principal = Depends(operator),
                        order_id: str | None = Query(None, min_length=1, max_length=64),
                        limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict:
    return await list_reveals(rt, order_id, limit, offset)


# --- inboxes (站内信) ---------------------------------------------------------------------------
def _owner(p: Principal) -> tuple[str, str]:
    if p.role == "storefront":
        if not p.customer_id:
            raise ApiError(400, "customer_required", "send X-Customer-Id with the storefront token")
        return "customer", p.customer_id
    if p.is_merchant and p.merchant_id:
        return "merchant", p.merchant_id
    raise ApiError(403, "forbidden", "the inbox belongs to a customer (storefront) or a merchant")


@router.get("/inbox", summary="The caller's in-site messages with the unread count", response_model=schemas.InboxOut)
async def inbox(rt: Runtime = Depends(get_runtime), p: Principal = Depends(inbox_owners),
                unread_only: bool = False, limit: int = Query(50, ge=1, le=200),
                offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> dict:
    audience, owner = _owner(p)
    base = (Message.channel == "inbox", Message.audience == audience, Message.audience_id == owner,
            Message.status == "delivered")
    q = select(Message).where(*base)
    if unread_only:
        q = q.where(Message.read_at.is_(None))
    async with rt.sessions() as s:
        rows = (await s.execute(q.order_by(Message.id.desc()).limit(limit).offset(offset))).scalars().all()
        unread = (await s.execute(select(func.count()).select_from(Message)
                                  .where(*base, Message.read_at.is_(None)))).scalar()
    return {"unread": unread, "items": [
        {"id": m.id, "kind": m.kind, "order_id": m.order_id, "title": m.title, "body": m.body,
         "read": m.read_at is not None, "created_at": _iso(m.created_at)} for m in rows]}


@router.post("/inbox/{message_id}/read", summary="Mark one in-site message read", response_model=schemas.MarkedReadOut)
async def mark_read(message_id: int = Path(ge=1, le=BIGINT_MAX), rt: Runtime = Depends(get_runtime),
                    p: Principal = Depends(inbox_owners)) -> dict:
    audience, owner = _owner(p)
    async with rt.uow() as s:
        m = await s.get(Message, message_id)
        if m is None or m.channel != "inbox" or m.audience != audience or m.audience_id != owner:
            raise ApiError(404, "message_not_found", f"no message {message_id} in your inbox")
        if m.read_at is None:
            m.read_at = rt.clock.now()
    return {"id": message_id, "read": True}


@router.post("/inbox/read-all", summary="Mark every in-site message read", response_model=schemas.MarkedAllOut)
async def mark_all_read(rt: Runtime = Depends(get_runtime), p: Principal = Depends(inbox_owners)) -> dict:
    audience, owner = _owner(p)
    async with rt.uow() as s:
        r = await s.execute(update(Message).where(
            Message.channel == "inbox", Message.audience == audience, Message.audience_id == owner,
            Message.read_at.is_(None)).values(read_at=rt.clock.now()))
    return {"marked": r.rowcount}


# --- provider receipts (webhook) ----------------------------------------------------------------
class ReceiptIn(BaseModel):
    message_id: str = Field(min_length=1, max_length=128)  # the provider's id
    status: str = Field(pattern="^(delivered|failed)$")
    detail: str | None = Field(default=None, max_length=500)


async def _bounded_body(request: Request) -> bytes:
    """The body, refused (413) past MAX_BODY before it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"a receipt is at most {MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, "payload_too_large", f"a receipt is at most {MAX_BODY} bytes")
    return raw


@router.post("/sms/receipts", summary="Delivery receipt from the SMS gateway (signed: HMAC-SHA256 over timestamp, "
                                      "nonce and body; ±5 minutes; each nonce accepted once)",
             dependencies=[Depends(Policy.signed_webhook("SMS gateway delivery receipts"))],
             response_model=schemas.ReceiptOut,
             responses={401: {"description": "missing_signature, bad_signature, stale_timestamp or replayed"}})
async def receipt(request: Request, rt: Runtime = Depends(get_runtime)) -> dict:
    raw = await _bounded_body(request)
    signed = verify(rt.settings.sms_gateway_secret, request.headers, raw, rt.clock.now())
    try:
        body = ReceiptIn.model_validate_json(raw)
    except ValueError as e:
        raise ApiError(422, "validation_error", "malformed receipt", {"errors": str(e)[:500]}) from None
    return await apply_receipt(rt, signed, body.message_id, body.status, body.detail, body.model_dump_json())
