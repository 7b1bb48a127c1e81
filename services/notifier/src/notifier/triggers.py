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


# order action → (kind, template, audiences, required details → variable names)
ORDER_ACTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "audit.reject": ("audit_rejected", "audit_rejected", ("customer",)),
    "audit.approve_return": ("return_approved", "return_approved", ("customer",)),
    "remind_to_ship": ("remind_to_ship", "remind_to_ship", ("customer",)),
    "exchange.shipped": ("exchange_shipped", "exchange_shipped", ("customer",)),
    "confirm": ("completed", "completed", ("customer",)),
    "system.auto_confirm": ("completed", "completed", ("customer",)),
    "mark_resolved": ("completed", "completed", ("customer",)),
    "system.auto_refund": ("auto_refund", "auto_refund_customer", ("customer",)),
    "system.advance_compensation": ("auto_refund", "auto_refund_customer", ("customer",)),
}
# auto-refund also tells the merchant, with its own template
MERCHANT_COPIES = {"system.auto_refund": "auto_refund_merchant", "system.advance_compensation": "auto_refund_merchant"}

LEVEL_NAMES = {"supervisor": "主管", "operations_manager": "运营经理", "merchant": "商家"}

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


def from_order_action(action: str, number: str, details: dict, ctx: Context) -> list[Intent]:
    spec = ORDER_ACTIONS.get(action)
    if spec is None:
        return []
    kind, template, audiences = spec
    out = []
    for aud in audiences:
        values, err = _vars(template, number, details, ctx)
        out.append(Intent(kind, template, aud, values, err))
    if action in MERCHANT_COPIES:
        values, err = _vars(MERCHANT_COPIES[action], number, details, ctx)
        out.append(Intent(kind, MERCHANT_COPIES[action], "merchant", values, err))
    return out


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
        values = {"level_name": LEVEL_NAMES.get(level, level), "number": number, "rule": rule}
        err = _missing(values) or (None if details.get("to") else "missing fields: to")
        return [Intent("escalation", "escalation", "staff", values | {"level": level, "to": details.get("to")}, err)]
    return []


def _missing(values: dict) -> str | None:
    missing = sorted(k for k, v in values.items() if v in (None, ""))
    return f"missing fields: {', '.join(missing)}" if missing else None
