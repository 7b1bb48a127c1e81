"""Attachment file names: kept as given for display, control characters refused at upload,
downloads named with RFC 6266 ``filename*`` so quotes and non-ASCII names never break the
header."""
import base64
import re
from urllib.parse import unquote

import pytest

M = "/v1/merchant/service-orders"


async def claimed(api, w) -> str:
    o = await api.apply(w["sf"])
    await api.post(f"{M}/{o['id']}/claim", w["staff"])
    return o["id"]


def attachment(name: str, content_type: str = "application/pdf") -> dict:
    return {"filename": name, "content_type": content_type, "content_base64": base64.b64encode(b"%PDF-1.4").decode()}


@pytest.mark.parametrize("name", ["report.pdf\r\nSet-Cookie: a=1", "a\nb.pdf", "nul\x00.pdf", "tab\t.pdf",
                                  "c1\x85.pdf", "del\x7f.pdf"])
async def test_control_characters_are_refused_at_upload(api, world, name):
    oid = await claimed(api, world)
    r = await api.client.post(f"{M}/{oid}/audit", headers=world["staff"],
                              json={"decision": "approve_return", "attachments": [attachment(name)]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", r.text
    view = (await api.client.get(f"{M}/{oid}", headers=world["staff"])).json()
    assert view["state"] == "pending_audit" and view["attachments"] == []  # nothing changed


async def test_a_content_type_that_could_break_the_header_is_refused(api, world):
    oid = await claimed(api, world)
    r = await api.client.post(f"{M}/{oid}/audit", headers=world["staff"], json={
        "decision": "approve_return", "attachments": [attachment("a.pdf", "application/pdf\r\nX-Evil: 1")]})
    assert r.status_code == 422


def disposition_parts(header: str) -> tuple[str, str]:
    m = re.fullmatch(r'attachment; filename="([ !#-\[\]-~]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%._~-]*)', header)
    assert m, header
    return m.group(1), unquote(m.group(2), encoding="utf-8", errors="strict")


@pytest.mark.parametrize("name, fallback", [
    ('say "cheese".jpg', "say _cheese_.jpg"),
    ("质检报告 2026.pdf", "____ 2026.pdf"),
    ("Café; filename=evil.exe", "Cafe; filename=evil.exe"),
    ("back\\slash.png", "back_slash.png"),
    ("plain.pdf", "plain.pdf"),
])
async def test_downloads_carry_the_exact_name_in_filename_star(api, world, name, fallback):
    oid = await claimed(api, world)
    await api.post(f"{M}/{oid}/audit", world["staff"], {"decision": "approve_return", "attachments": [attachment(name)]})
    att = (await api.client.get(f"{M}/{oid}", headers=world["staff"])).json()["attachments"][0]
    assert att["filename"] == name  # stored and shown as given
    r = await api.client.get(f"{M}/{oid}/attachments/{att['id']}", headers=world["main"])
    assert r.status_code == 200 and r.content == b"%PDF-1.4"
    assert r.headers["content-type"] == "application/pdf"
    ascii_name, exact = disposition_parts(r.headers["content-disposition"])
    assert exact == name and ascii_name == fallback


def test_a_name_stored_before_the_upload_check_still_makes_a_valid_header():
    from orders.api.common import content_disposition

    header = content_disposition('old\r\nSet-Cookie: x="1"\x00.pdf')
    assert all(" " <= ch <= "~" for ch in header)
    ascii_name, exact = disposition_parts(header)
    assert exact == 'old\r\nSet-Cookie: x="1"\x00.pdf' and ascii_name == "old__Set-Cookie: x=_1__.pdf"
