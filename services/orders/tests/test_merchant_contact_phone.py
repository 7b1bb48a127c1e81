"""A merchant's after-sales contact may be a landline or a 400 hotline (merchants have them),
but only a mobile number receives SMS: onboarding and every profile answer say so
(``contact_sms_capable: false`` and a ``contact_cannot_receive_sms`` warning); a string that
is no phone number at all is refused."""
from __future__ import annotations

import pytest

BODY = {"name": "Merchant", "kind": "pop_seller", "mode": "pop_self_service", "return_address": "北京市大兴区 售后部"}


async def onboard(api, op, mid: str, phone: str):
    return await api.client.post("/v1/platform/merchants", headers=op, json={"id": mid, "contact_phone": phone,
                                                                            **BODY})


@pytest.mark.parametrize("phone", ["010-6666-0101", "400-606-5500", "021-12345678"])
async def test_a_landline_contact_is_accepted_with_a_clear_warning(api, phone):
    op = await api.bootstrap()
    r = await onboard(api, op, "pop-landline", phone)
    assert r.status_code == 201, r.text
    merchant = r.json()["merchant"]
    assert merchant["contact_phone"] == phone and merchant["contact_sms_capable"] is False
    [w] = merchant["warnings"]
    assert (w["code"], w["field"]) == ("contact_cannot_receive_sms", "contact_phone")
    assert "cannot receive SMS" in w["message"] and "in-site" in w["message"]
    r = await api.client.get("/v1/platform/merchants/pop-landline", headers=op)
    assert r.json()["contact_sms_capable"] is False and r.json()["warnings"] == merchant["warnings"]


async def test_a_mobile_contact_has_no_warning_and_a_patch_says_so_too(api):
    op = await api.bootstrap()
    r = await onboard(api, op, "pop-mobile", "13900139000")
    assert r.status_code == 201, r.text
    assert r.json()["merchant"]["contact_sms_capable"] is True and r.json()["merchant"]["warnings"] == []
    # switching to a landline: the answer warns at once
    r = await api.client.patch("/v1/platform/merchants/pop-mobile", headers=op, json={"contact_phone": "010-66660101"})
    assert r.status_code == 200, r.text
    assert r.json()["contact_sms_capable"] is False
    assert [w["code"] for w in r.json()["warnings"]] == ["contact_cannot_receive_sms"]
    r = await api.client.patch("/v1/platform/merchants/pop-mobile", headers=op, json={"contact_phone": "13700137000"})
    assert r.json()["contact_sms_capable"] is True and r.json()["warnings"] == []


@pytest.mark.parametrize("phone", ["1234567", "0000-0000", "23800138000"])
async def test_a_string_that_is_no_phone_number_is_refused(api, phone):
    op = await api.bootstrap()
    r = await onboard(api, op, "pop-bad", phone)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_contact_phone", r.text
    assert (await api.client.get("/v1/platform/merchants/pop-bad", headers=op)).status_code == 404
    r = await onboard(api, op, "pop-ok", "13900139000")
    r = await api.client.patch("/v1/platform/merchants/pop-ok", headers=op, json={"contact_phone": phone})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_contact_phone"
    assert (await api.client.get("/v1/platform/merchants/pop-ok", headers=op)).json()["contact_phone"] == "13900139000"
