"""SMS go to mobile numbers only, also for SMS queued before that rule; a template the notifier
can no longer fill (an upgrade renamed its variables) is replaced by the default at start, and
an operator cannot save one."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from notifier.models import Message, TemplateVersion
from shared.testing import eventually

pytestmark = pytest.mark.broker

# The escalation template as first shipped: a level number and the internal rule name.
OLD_ESCALATION = ("【${level_name}】售后单${number}处理超时（${rule}），请立即跟进。", "level_name,number,rule")


async def test_an_old_escalation_template_is_replaced_at_start(notifier_factory):
    first = await notifier_factory()
    url = str(first.rt.settings.database_url)
    async with first.rt.uow() as s:
        s.add(TemplateVersion(key="escalation", version=2, title="售后单升级提醒", body=OLD_ESCALATION[0],
                              variables=OLD_ESCALATION[1], created_at=first.rt.clock.now()))
    second = await notifier_factory(database_url=url)  # a restart on the upgraded code
    r = await second.client.get("/v1/templates/escalation/versions", headers=second.operator)
    versions = r.json()["items"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[-1]["body"] == "【${recipient_name}】售后单${number}的${overdue}已超时，请立即跟进。"
    third = await notifier_factory(database_url=url)  # nothing more to replace
    r = await third.client.get("/v1/templates/escalation/versions", headers=third.operator)
    assert len(r.json()["items"]) == 3


async def test_an_operator_cannot_save_a_template_with_variables_the_notifier_does_not_supply(notifier):
    r = await notifier.client.put("/v1/templates/escalation", headers=notifier.operator, json={
        "title": "升级", "body": OLD_ESCALATION[0], "variables": OLD_ESCALATION[1].split(",")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "template_invalid"
    assert r.json()["error"]["details"]["unsupplied"] == ["level_name", "rule"]
    r = await notifier.client.put("/v1/templates/escalation", headers=notifier.operator, json={
        "title": "升级", "body": "请${recipient_name}跟进售后单${number}", "variables": ["recipient_name", "number"]})
    assert r.status_code == 201  # a subset of what is supplied renders


async def test_an_sms_queued_to_a_landline_before_the_rule_is_not_sent(notifier):
    now = notifier.rt.clock.now()
    async with notifier.rt.uow() as s:
        for i, phone in enumerate(("010-66660101", "13700137000")):
            s.add(Message(event_id=f"old-{i}", recipient=f"sms:{phone}", template_key="merchant_reminder",
                          template_version=1, channel="sms", kind="merchant_reminder", order_id="o-old",
                          audience="merchant", audience_id="m-old", phone=phone, title="t", body="b",
                          status="queued", attempts=0, next_attempt_at=now, created_at=now))

    async def settled():
        async with notifier.rt.sessions() as s:
            rows = (await s.execute(select(Message.phone, Message.status, Message.last_error)
                                    .where(Message.order_id == "o-old"))).all()
        return all(r.status != "queued" for r in rows) and {r.phone: (r.status, r.last_error) for r in rows}

    by_phone = await eventually(settled)
    assert by_phone["13700137000"] == ("sent", None)
    assert by_phone["010-66660101"] == ("failed", "cannot receive SMS (not a mobile number): 010*****0101")
