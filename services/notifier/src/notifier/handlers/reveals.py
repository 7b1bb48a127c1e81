"""Revealing one phone number to an operator: every reveal is an audit entry (who, when,
which message or order contact, why), written in the transaction that reads the number,
so no number leaves the service unmasked without its entry."""
from __future__ import annotations

from sqlalchemy import func, select

from notifier.models import Message, OrderContact, PhoneReveal
from shared.auth import Principal
from shared.errors import ApiError
from shared.runtime import Runtime


def _entry(principal: Principal, now, reason: str, **target) -> PhoneReveal:
    return PhoneReveal(at=now, actor=principal.subject, actor_role=principal.role, reason=reason, **target)


async def reveal_message_phone(rt: Runtime, principal: Principal, message_id: int, reason: str) -> dict:
    now = rt.clock.now()
    async with rt.uow() as s:
        m = await s.get(Message, message_id)
        if m is None:
            raise ApiError(404, "message_not_found", f"no message {message_id}")
        if not m.phone:
            raise ApiError(404, "phone_not_found", f"message {message_id} has no phone number")
        entry = _entry(principal, now, reason, target="message", message_id=m.id, order_id=m.order_id)
        s.add(entry)
        await s.flush()
        out = {"message_id": m.id, "order_id": m.order_id, "phone": m.phone, "reveal_id": entry.id,
               "revealed_at": now.isoformat()}
    return out


async def reveal_contact_phone(rt: Runtime, principal: Principal, order_id: str, reason: str) -> dict:
    now = rt.clock.now()
    async with rt.uow() as s:
        c = await s.get(OrderContact, order_id)
        if c is None:
            raise ApiError(404, "contact_not_found", f"no contact known for service order {order_id}")
        entry = _entry(principal, now, reason, target="order_contact", order_id=c.order_id)
        s.add(entry)
        await s.flush()
        out = {"order_id": c.order_id, "customer_phone": c.customer_phone, "reveal_id": entry.id,
               "revealed_at": now.isoformat()}
    return out


def reveal_view(r: PhoneReveal) -> dict:
    return {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "actor_role": r.actor_role, "target": r.target,
            "message_id": r.message_id, "order_id": r.order_id, "reason": r.reason}


async def list_reveals(rt: Runtime, order_id: str | None, limit: int, offset: int) -> dict:
    """Newest first, with the total (of the filter)."""
    where = [PhoneReveal.order_id == order_id] if order_id else []
    async with rt.sessions() as s:
        rows = (await s.execute(select(PhoneReveal).where(*where).order_by(PhoneReveal.id.desc())
                                .limit(limit).offset(offset))).scalars().all()
        total = (await s.execute(select(func.count()).select_from(PhoneReveal).where(*where))).scalar()
    return {"items": [reveal_view(r) for r in rows], "total": total}
