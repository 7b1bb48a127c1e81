"""The delivery log summed up for operators (the console's notifications page): messages
per channel, template and status (queued ones already tried once count as retrying), and
the latest failures with their reason. Phones masked, as everywhere."""
from __future__ import annotations

from sqlalchemy import and_, func, select

from notifier.domain.masking import mask_phone
from notifier.models import FAILED_STATUS, Message
from shared.runtime import Runtime


def _iso(t):
    return None if t is None else t.isoformat()


async def delivery_summary(rt: Runtime, failures: int) -> dict:
    retrying = and_(Message.status == "queued", Message.attempts > 0)
    async with rt.sessions() as s:
        groups = (await s.execute(
            select(Message.channel, Message.template_key, Message.status, retrying.label("retrying"), func.count())
            .group_by(Message.channel, Message.template_key, Message.status, retrying)
            .order_by(Message.channel, Message.template_key, Message.status))).all()
        rows = (await s.scalars(select(Message).where(Message.status == FAILED_STATUS)
                                .order_by(Message.id.desc()).limit(failures))).all() if failures else []
    # counted from the groups, not by a query of its own: the dispatcher moves messages between
    # statuses meanwhile, and the total must agree with the groups it is shown with
    failed_total = sum(n for _c, _t, st, _r, n in groups if st == "failed")
    return {
        "groups": [{"channel": c, "template_key": t, "status": st, "retrying": bool(r), "count": int(n)}
                   for c, t, st, r, n in groups],
        "failed_total": int(failed_total or 0),
        "failures": [{"id": m.id, "channel": m.channel, "template_key": m.template_key, "order_id": m.order_id,
                      "recipient": f"sms:{mask_phone(m.phone)}" if m.channel == "sms" and m.phone else m.recipient,
                      "attempts": m.attempts, "last_error": m.last_error, "created_at": _iso(m.created_at)}
                     for m in rows],
    }
