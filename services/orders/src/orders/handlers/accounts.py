"""Merchants, their catalogue and staff, and OAuth2 client credentials."""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from orders.domain import phones
from orders.handlers.catalogue_events import publish_skus
from orders.models import ApiClient, Merchant, Sku, Staff
from shared.auth import Principal, issue_token
from shared.contracts.accounts import AccountChanged
from shared.errors import ApiError
from shared.events import make_envelope

# What a client id can be (operators', merchants' "<id>.main", staff "<merchant>.<login>").
CLIENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_SECRET = 256  # issued secrets have 32 characters


async def _new_secret(rt) -> tuple[str, str]:
    """(secret, its hash), hashed before the transaction opens (it takes tens of ms)."""
    secret = secrets.token_urlsafe(24)
    return secret, await rt.secret_hasher.hash(secret)


async def _new_client(s, secret: tuple[str, str], *, client_id: str, role: str, name: str, now, merchant_id=None,
                      staff_id=None) -> dict:
    if await s.get(ApiClient, client_id) is not None:
        raise ApiError(409, "client_exists", f"client {client_id} already exists")
    s.add(ApiClient(client_id=client_id, secret_hash=secret[1], role=role, merchant_id=merchant_id,
                    staff_id=staff_id, name=name, active=True, created_at=now, version=1))
    return {"client_id": client_id, "client_secret": secret[0], "role": role}


async def create_client(rt, *, client_id: str, role: str, name: str, merchant_id=None, staff_id=None) -> dict:
    secret = await _new_secret(rt)
    async with rt.uow() as s:
        return await _new_client(s, secret, client_id=client_id, role=role, name=name, now=rt.clock.now(),
                                 merchant_id=merchant_id, staff_id=staff_id)


async def issue_for_client(rt, client_id: str, client_secret: str, address: str) -> dict:
    """A token for valid client credentials.

    Failed attempts are limited per client id and per source address (TooManyAttempts,
    before the secret is looked at). Every attempt costs one hash verification, also for
    an unknown or inactive client (against a dummy hash), so the answer time does not tell
    which ids exist. A match on an outdated hash stores the current format."""
    limits = rt.token_attempts
    await limits.ensure_allowed(client_id, address)
    if not CLIENT_ID.fullmatch(client_id) or len(client_secret) > MAX_SECRET:
        # No stored client looks like this: refused without a lookup (counted all the same).
        await limits.failed(client_id, address)
        raise ApiError(401, "invalid_client", "unknown client or wrong secret")
    async with rt.sessions() as s:
        c = await s.get(ApiClient, client_id)
        staff = await s.get(Staff, c.staff_id) if c is not None and c.staff_id else None
    ok, rehashed = await rt.secret_hasher.verify(client_secret, c.secret_hash if c is not None else None,
                                                 before=lambda: limits.ensure_allowed(client_id, address))
    if not ok or not c.active:
        await limits.failed(client_id, address)
        raise ApiError(401, "invalid_client", "unknown client or wrong secret")
    perms, cats = frozenset(), frozenset()
    if c.role == "merchant_staff":
        if staff is None or not staff.active:
            await limits.failed(client_id, address)
            raise ApiError(401, "invalid_client", "this staff account is disabled")
        perms, cats = frozenset(staff.permissions), frozenset(staff.categories)
    if rehashed is not None:
        await _store_rehashed(rt, client_id, c.secret_hash, rehashed)
    p = Principal(role=c.role, subject=c.staff_id or c.client_id, merchant_id=c.merchant_id,
                  permissions=perms, categories=cats, version=c.version)
    ttl = timedelta(seconds=rt.settings.token_ttl_s)
    token = issue_token(p, rt.settings.token_secret, now=rt.clock.now(), ttl=ttl)
    return {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl.total_seconds())}


async def _store_rehashed(rt, client_id: str, old: str, new: str) -> None:
    # Only over the hash that was verified: a secret changed meanwhile is not overwritten.
    async with rt.uow() as s:
        await s.execute(update(ApiClient).where(ApiClient.client_id == client_id, ApiClient.secret_hash == old)
                        .values(secret_hash=new))


def _check_contact_phone(phone: str | None) -> None:
    # a landline is a fine contact (it gets a warning, not a refusal); a non-number is not
    if phone is not None and not phones.is_valid(phone):
        raise ApiError(422, "invalid_contact_phone", f"contact_phone {phone} is not a valid phone number",
                       {"field": "contact_phone"})


async def onboard_merchant(rt, body) -> dict:
    _check_contact_phone(body.contact_phone)
    now = rt.clock.now()
    secret = await _new_secret(rt)
    async with rt.uow() as s:
        if await s.get(Merchant, body.id) is not None:
            raise ApiError(409, "merchant_exists", f"merchant {body.id} already exists")
        s.add(Merchant(id=body.id, name=body.name, kind=body.kind, mode=body.mode,
                       category_modes=dict(body.category_modes), contact_phone=body.contact_phone,
                       return_address=body.return_address, served_by_platform=body.served_by_platform,
                       created_at=now))
        await s.flush()
        for sku in body.skus:
            s.add(Sku(merchant_id=body.id, sku=sku.sku, category=sku.category, price=sku.price))
        await publish_skus(rt, s, body.id, body.kind, body.skus)
        creds = await _new_client(s, secret, client_id=f"{body.id}.main", role="merchant_main", name=f"{body.name} main",
                                  now=now, merchant_id=body.id)
    return {"merchant": await get_merchant(rt, body.id), "main_account": creds}


async def get_merchant(rt, merchant_id: str) -> dict:
    async with rt.sessions() as s:
        m = await s.get(Merchant, merchant_id)
        if m is None:
            raise ApiError(404, "merchant_not_found", f"no merchant {merchant_id}")
        skus = (await s.scalars(select(Sku).where(Sku.merchant_id == merchant_id).order_by(Sku.sku))).all()
    return {"id": m.id, "name": m.name, "kind": m.kind, "mode": m.mode, "category_modes": m.category_modes,
            "contact_phone": m.contact_phone, "contact_sms_capable": phones.sms_capable(m.contact_phone),
            "return_address": m.return_address, "served_by_platform": m.served_by_platform,
            "disqualified_since": m.disqualified_since.isoformat() if m.disqualified_since else None,
            "skus": [{"sku": k.sku, "category": k.category, "price": str(k.price)} for k in skus],
            "warnings": phones.sms_warnings(m.contact_phone)}


async def configure_merchant(rt, merchant_id: str, changes: dict) -> dict:
    _check_contact_phone(changes.get("contact_phone"))
    async with rt.uow() as s:
        m = await s.get(Merchant, merchant_id)
        if m is None:
            raise ApiError(404, "merchant_not_found", f"no merchant {merchant_id}")
        for k, v in changes.items():
            setattr(m, k, dict(v) if k == "category_modes" else v)
    return await get_merchant(rt, merchant_id)


async def upsert_skus(rt, merchant_id: str, skus) -> dict:
    async with rt.uow() as s:
        merchant = await s.get(Merchant, merchant_id)
        if merchant is None:
            raise ApiError(404, "merchant_not_found", f"no merchant {merchant_id}")
        for item in skus:
            row = await s.scalar(select(Sku).where(Sku.merchant_id == merchant_id, Sku.sku == item.sku))
            if row is None:
                s.add(Sku(merchant_id=merchant_id, sku=item.sku, category=item.category, price=item.price))
            else:
                row.category, row.price = item.category, item.price
        await publish_skus(rt, s, merchant_id, merchant.kind, skus)
    return await get_merchant(rt, merchant_id)


def _staff_out(st: Staff) -> dict:
    return {"id": st.id, "name": st.name, "permissions": sorted(st.permissions), "categories": sorted(st.categories),
            "active": st.active}


async def create_staff(rt, merchant_id: str, body) -> dict:
    now = rt.clock.now()
    staff_id = f"{merchant_id}.{body.login}"
    if len(staff_id) > 64:
        raise ApiError(422, "login_too_long", "the staff id <merchant id>.<login> has at most 64 characters",
                       {"staff_id_length": len(staff_id)})
    secret = await _new_secret(rt)
    try:
        async with rt.uow() as s:
            count = await s.scalar(select(func.count()).select_from(Staff).where(
                Staff.merchant_id == merchant_id, Staff.active.is_(True)))
            if count >= rt.settings.max_staff_per_merchant:
                raise ApiError(422, "staff_limit", f"a merchant has at most {rt.settings.max_staff_per_merchant} staff accounts")
            if await s.get(Staff, staff_id) is not None:
                raise ApiError(409, "staff_exists", f"staff {staff_id} already exists")
            st = Staff(id=staff_id, merchant_id=merchant_id, name=body.name, permissions=sorted(set(body.permissions)),
                       categories=sorted(set(body.categories)), active=True, created_at=now)
            s.add(st)
            await s.flush()
            creds = await _new_client(s, secret, client_id=staff_id, role="merchant_staff", name=body.name, now=now,
                                      merchant_id=merchant_id, staff_id=staff_id)
    except IntegrityError:
        raise ApiError(409, "staff_exists", f"staff {staff_id} already exists") from None
    return {"staff": _staff_out(st), "credentials": creds}


async def list_staff(rt, merchant_id: str) -> list[dict]:
    async with rt.sessions() as s:
        rows = (await s.scalars(select(Staff).where(Staff.merchant_id == merchant_id).order_by(Staff.id))).all()
    return [_staff_out(r) for r in rows]


# Staff fields whose change revokes the account's tokens (they are written in the token).
REVOKING = ("active", "permissions", "categories")


async def update_staff(rt, merchant_id: str, staff_id: str, changes: dict) -> dict:
    """Apply the changes; deactivation, reactivation or new permissions/categories raise the
    account's version (tokens issued before are refused from the next request on) and
    publish ``account.changed`` for the other services."""
    now = rt.clock.now()
    async with rt.uow() as s:
        st = await s.get(Staff, staff_id)
        if st is None or st.merchant_id != merchant_id:
            raise ApiError(404, "staff_not_found", f"no staff {staff_id}")
        changed = []
        for k, v in changes.items():
            new = sorted(set(v)) if isinstance(v, list) else v
            if k in REVOKING and getattr(st, k) != new:
                changed.append(k)
            setattr(st, k, new)
        noted = None
        if changed:
            # One statement: two changes at once each get their own version.
            row = (await s.execute(
                update(ApiClient).where(ApiClient.client_id == staff_id)
                .values(version=ApiClient.version + 1, version_changed_at=now)
                .returning(ApiClient.version, ApiClient.role, ApiClient.merchant_id))).one_or_none()
            if row is not None:
                version, role, client_merchant = row
                await rt.outbox.add(s, make_envelope(
                    type_="account.changed", key=staff_id, producer=rt.name, occurred_at=now,
                    data=AccountChanged(client_id=staff_id, role=role, merchant_id=client_merchant, version=version,
                                        active=st.active, changes=changed, changed_at=now)))
                noted = (staff_id, version)
        out = _staff_out(st)
    if noted is not None:
        rt.account_guard.note(*noted)  # after the commit: this replica refuses old tokens at once
    return out
