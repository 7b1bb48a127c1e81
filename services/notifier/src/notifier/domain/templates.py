"""Message templates (Simplified Chinese, ``string.Template`` ``${var}`` syntax).

A template declares its variables; saving checks that the body uses only declared
variables and every declared one, so a send can never miss a variable."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from string import Template

from shared.errors import ApiError


@dataclass(frozen=True)
class TemplateSpec:
    key: str
    title: str
    body: str
    variables: tuple[str, ...]


DEFAULTS: tuple[TemplateSpec, ...] = (
    TemplateSpec("audit_rejected", "售后申请未通过",
                 "您的售后单${number}审核未通过，原因：${opinion}。如有疑问请联系商家客服。", ("number", "opinion")),
    TemplateSpec("return_approved", "售后申请已通过",
                 "您的售后单${number}已审核通过，请将商品寄回：${return_address}。审核意见：${opinion}。",
                 ("number", "return_address", "opinion")),
    TemplateSpec("ship_back_reminder", "请尽快寄回商品",
                 "您的售后单${number}已通过审核${day}天，请尽快寄回商品至：${return_address}。", ("number", "day", "return_address")),
    TemplateSpec("merchant_reminder", "售后单待处理提醒",
                 "商家您好，售后单${number}已等待${day}天，请尽快处理。", ("number", "day")),
    TemplateSpec("remind_to_ship", "商家提醒您寄回商品",
                 "商家提醒您：售后单${number}的商品请尽快寄回至：${return_address}。", ("number", "return_address")),
    TemplateSpec("auto_refund_customer", "退款已完成",
                 "您的售后单${number}已自动退款${amount}元，请注意查收。", ("number", "amount")),
    TemplateSpec("auto_refund_merchant", "系统已自动退款",
                 "商家您好，售后单${number}因超时未处理，系统已自动退款${amount}元。", ("number", "amount")),
    TemplateSpec("exchange_shipped", "换货已发出",
                 "您的售后单${number}换货商品已发出，${carrier}运单号${tracking_number}。", ("number", "carrier", "tracking_number")),
    TemplateSpec("completed", "售后已完成", "您的售后单${number}已完成，感谢您的耐心。", ("number",)),
    # to whom (主管 / 运营经理 / 财务) and what is overdue (首次响应, 审核, 退款打款...)
    TemplateSpec("escalation", "售后单升级提醒",
                 "【${recipient_name}】售后单${number}的${overdue}已超时，请立即跟进。",
                 ("recipient_name", "number", "overdue")),
)

_VAR = re.compile(r"^[a-z_][a-z0-9_]*$")


def check(body: str, variables: list[str] | tuple[str, ...]) -> None:
    """422 ``template_invalid`` unless body and declared variables agree."""
    bad = [v for v in variables if not _VAR.match(v)]
    if bad:
        raise ApiError(422, "template_invalid", f"bad variable names: {bad}")
    t = Template(body)
    if not t.is_valid():
        raise ApiError(422, "template_invalid", "the body has a malformed ${...} placeholder")
    used = set(t.get_identifiers())
    undeclared, unused = used - set(variables), set(variables) - used
    if undeclared:
        raise ApiError(422, "template_invalid", f"the body uses undeclared variables: {sorted(undeclared)}",
                       {"undeclared": sorted(undeclared)})
    if unused:
        raise ApiError(422, "template_invalid", f"declared variables not used: {sorted(unused)}",
                       {"unused": sorted(unused)})


def render(body: str, values: dict) -> str:
    """``string.Template(body).substitute(values)``. Raises KeyError naming a missing variable."""
    out = []
    for literal, name in _pieces(body):
        out.append(literal)
        if name is not None:
            out.append(str(values[name]))
    return "".join(out)


@lru_cache(maxsize=256)  # a few template versions render every message: each body is parsed once
def _pieces(body: str) -> tuple[tuple[str, str | None], ...]:
    """The body as (text, variable name or None) pieces, by string.Template's own pattern
    (``$$`` is a dollar sign; a malformed placeholder raises ValueError as substitute does)."""
    pieces, start = [], 0
    for m in Template.pattern.finditer(body):
        text = body[start:m.start()]
        start = m.end()
        if m.group("escaped") is not None:
            pieces.append((text + Template.delimiter, None))
        elif m.group("invalid") is not None:
            Template(body).substitute({})  # raises ValueError naming the place
        else:
            pieces.append((text, m.group("named") or m.group("braced")))
    pieces.append((body[start:], None))
    return tuple(pieces)
