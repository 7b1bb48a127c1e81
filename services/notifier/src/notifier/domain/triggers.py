"""Which events notify whom with which template (pure: events + projection → intents)."""
from __future__ import annotations

from dataclasses import dataclass, field


class MissingField(Exception):
    """The event lacks what the notification needs (recorded as a failed message)."""


@dataclass(frozen=True)
class Intent:
    kind: str
    template_key: str
    audience: str  # customer | merchant | staff
    variables: dict = field(default_factory=dict)
    error: str | None = None  # set when the intent cannot be sent; recorded as failed


@dataclass(frozen=True)
class Context:
    """What the projection knows about the order (all optional)."""

    number: str | None = None
    return_address: str | None = None


# order action → (kind, template, audiences); completion is by state, see ``from_order_action``
ORDER_ACTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "audit.reject": ("audit_rejected", "audit_rejected", ("customer",)),
    "audit.approve_return": ("return_approved", "return_approved", ("customer",)),
    "remind_to_ship": ("remind_to_ship", "remind_to_ship", ("customer",)),
    "exchange.shipped": ("exchange_shipped", "exchange_shipped", ("customer",)),
    "system.auto_refund": ("auto_refund", "auto_refund_customer", ("customer",)),
    "system.advance_compensation": ("auto_refund", "auto_refund_customer", ("customer",)),
}
# auto-refund also tells the merchant, with its own template
MERCHANT_COPIES = {"system.auto_refund": "auto_refund_merchant", "system.advance_compensation": "auto_refund_merchant"}
COMPLETED = "completed"

# Escalation recipients (``details.to`` of the deadline) by their Chinese title.
RECIPIENT_NAMES = {"supervisor": "主管", "operations_manager": "运营经理", "finance": "财务", "merchant": "商家"}
# The escalation chain by level, for a deadline whose ``to`` is a phone number.
LEVEL_RECIPIENTS = {1: "supervisor", 2: "operations_manager"}
# What is overdue, per escalating deadline rule (the sla-timer's rule names): the text says
# this, never the internal name. An unknown rule reads as plain 处理 (handling).
OVERDUE = {
    "first_response": "首次响应",
    "first_response_manager": "首次响应",
    "audit_escalation": "审核",
    "quality_plan": "质量问题处理方案",
    "logistics_resolution": "物流问题处理",
    "repair": "维修",
    "refund_payout": "退款打款",
}
OVERDUE_FALLBACK = "处理"

# which event fields feed which template variable, besides number
DETAIL_VARIABLES = {
    "audit_rejected": ("opinion",),
    "return_approved": ("return_address", "opinion"),
    "remind_to_ship": ("return_address",),
    "exchange_shipped": ("carrier", "tracking_number"),
    "auto_refund_customer": ("amount",),
    "auto_refund_merchant": ("amount",),
    "completed": (),
}


def _vars(template_key: str, number: str | None, details: dict, ctx: Context) -> tuple[dict, str | None]:
    values = {"number": number}
    for name in DETAIL_VARIABLES[template_key]:
        value = details.get(name)
        if value in (None, "") and name == "return_address":
            value = ctx.return_address
        if value in (None, "") and name == "opinion":
            value = "无"
        values[name] = value
    missing = sorted(k for k, v in values.items() if v in (None, ""))
    return values, (f"missing fields: {', '.join(missing)}" if missing else None)


def from_order_action(action: str, number: str, details: dict, ctx: Context, *, from_state: str,
                      to_state: str) -> list[Intent]:
    out = []
    spec = ORDER_ACTIONS.get(action)
    if spec is not None:
        kind, template, audiences = spec
        for aud in audiences:
            values, err = _vars(template, number, details, ctx)
            out.append(Intent(kind, template, aud, values, err))
    if action in MERCHANT_COPIES:
        values, err = _vars(MERCHANT_COPIES[action], number, details, ctx)
        out.append(Intent(spec[0], MERCHANT_COPIES[action], "merchant", values, err))
    # Every arrival in ``completed`` tells the customer, whatever the path (confirmation,
    # auto-confirmation, resolved after contact, offline exchange, arbitration); actions
    # inside ``completed`` (rating, refund paid...) are no arrival.
    if to_state == COMPLETED and from_state != COMPLETED:
        values, err = _vars("completed", number, details, ctx)
        out.append(Intent("completed", "completed", "customer", values, err))
    return out


def recipient_role(details: dict) -> str | None:
    """The escalation's recipient role: ``to`` when it names one, else the level's role (``to``
    may be a phone number; some events name the role as the level)."""
    to, level = details.get("to"), details.get("level")
    if isinstance(to, str) and to in RECIPIENT_NAMES:
        return to
    if isinstance(level, str) and level in RECIPIENT_NAMES:
        return level
    return LEVEL_RECIPIENTS.get(level) if isinstance(level, int) else None


def recipient_name(details: dict) -> str | None:
    """主管 / 运营经理 / 财务...: whom the escalation goes to, in Chinese."""
    return RECIPIENT_NAMES.get(recipient_role(details) or "")


def from_deadline(action: str, rule: str, details: dict, ctx: Context) -> list[Intent]:
    number = ctx.number
    if action == "remind_customer":
        values = {"number": number, "day": details.get("day"), "return_address": ctx.return_address
                  or details.get("return_address")}
        return [Intent("ship_back_reminder", "ship_back_reminder", "customer", values, _missing(values))]
    if action == "remind_merchant":
        values = {"number": number, "day": details.get("day")}
        return [Intent("merchant_reminder", "merchant_reminder", "merchant", values, _missing(values))]
    if action == "escalate":
        level = details.get("level")
        values = {"recipient_name": recipient_name(details), "number": number,
                  "overdue": OVERDUE.get(rule, OVERDUE_FALLBACK)}
        err = None if details.get("to") else "missing fields: to"
        err = err or _missing(values)
        extra = {"level": level, "to": details.get("to"), "role": recipient_role(details)}
        return [Intent("escalation", "escalation", "staff", values | extra, err)]
    return []


def _missing(values: dict) -> str | None:
    missing = sorted(k for k, v in values.items() if v in (None, ""))
    return f"missing fields: {', '.join(missing)}" if missing else None
