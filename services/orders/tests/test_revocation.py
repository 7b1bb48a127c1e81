"""Revocation: deactivating a staff account or changing its permissions/categories refuses
the tokens issued before, from the next request on (full app and fast path alike); a new
token works; other replicas learn it from the database (refresh) and every service from
``account.changed`` on ``accounts.events``."""
import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from orders.app import create_app
from orders.models import ApiClient
from orders.settings import OrdersSettings
from shared.accounts import AccountGuard, AccountListener
from shared.auth import Principal, issue_token, verify_token
from shared.errors import ApiError
from shared.settings import DEV_TOKEN_SECRET
from shared.testing import eventually

M = "/v1/merchant/service-orders"
STAFF = "/v1/merchant/staff"


async def patch_staff(api, main: dict, staff_id: str, body: dict) -> dict:
    r = await api.client.patch(f"{STAFF}/{staff_id}", headers=main, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def assert_revoked(r) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "token_revoked"


async def test_a_deactivated_staff_token_is_refused_on_the_very_next_request(api, world):
    w = world
    o = await api.apply(w["sf"])
    assert (await api.client.get(M, headers=w["staff"])).status_code == 200
    await patch_staff(api, w["main"], "m-1.alice", {"active": False})
    # listing (full app) and claiming (the fast path on PostgreSQL) both refuse the old token
    assert_revoked(await api.client.get(M, headers=w["staff"]))
    assert_revoked(await api.client.post(f"{M}/{o['id']}/claim", headers=w["staff"], json={}))
    assert_revoked(await api.client.get(f"{M}/{o['id']}", headers=w["staff"]))
    view = (await api.client.get(f"{M}/{o['id']}", headers=w["main"])).json()
    assert view["state"] == "pending_claim" and view["handler_id"] is None
    # and no new token for a disabled account
    r = await api.client.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": "m-1.alice",
                                                       "client_secret": "whatever"})
    assert r.status_code == 401


async def _staff_with_secret(api, main: dict, login: str, permissions=("audit", "process")) -> tuple[dict, dict]:
    r = await api.client.post(STAFF, headers=main, json={"login": login, "name": login, "permissions": list(permissions),
                                                         "categories": ["phones"]})
    assert r.status_code == 201, r.text
    c = r.json()["credentials"]
    return c, await api.token(c["client_id"], c["client_secret"])


@pytest.mark.parametrize("change", [{"permissions": ["process"]}, {"categories": ["tv"]}])
async def test_a_permission_or_category_change_refuses_the_old_token_and_a_new_one_works(api, world, change):
    w = world
    creds, old = await _staff_with_secret(api, w["main"], "bob")
    o = await api.apply(w["sf"])
    await patch_staff(api, w["main"], "m-1.bob", change)
    assert_revoked(await api.client.post(f"{M}/{o['id']}/claim", headers=old, json={}))
    new = await api.token(creds["client_id"], creds["client_secret"])
    r = await api.client.get(M, headers=new)
    assert r.status_code == 200
    r = await api.client.post(f"{M}/{o['id']}/claim", headers=new, json={})
    if "permissions" in change:  # the new token carries the new rights: no audit permission any more
        assert r.status_code == 403, r.text
    else:  # not its category any more: the order is not visible to it
        assert r.status_code == 404, r.text


async def test_a_patch_that_changes_nothing_revokes_nothing(api, world):
    w = world
    await patch_staff(api, w["main"], "m-1.alice", {"permissions": ["process", "audit"], "active": True})
    assert (await api.client.get(M, headers=w["staff"])).status_code == 200
    assert not [e for e in await api.events() if e["type"] == "account.changed"]


async def test_reactivation_needs_a_new_token(api, world):
    w = world
    creds, old = await _staff_with_secret(api, w["main"], "carol")
    await patch_staff(api, w["main"], "m-1.carol", {"active": False})
    await patch_staff(api, w["main"], "m-1.carol", {"active": True})
    assert_revoked(await api.client.get(M, headers=old))
    new = await api.token(creds["client_id"], creds["client_secret"])
    assert (await api.client.get(M, headers=new)).status_code == 200


async def test_the_change_is_published_for_the_other_services(api, world):
    await patch_staff(api, world["main"], "m-1.alice", {"active": False})
    changed = [e for e in await api.events() if e["type"] == "account.changed"]
    assert len(changed) == 1 and changed[0]["key"] == "m-1.alice"
    assert changed[0]["data"] | {"changed_at": None} == {
        "client_id": "m-1.alice", "role": "merchant_staff", "merchant_id": "m-1", "version": 2, "active": False,
        "changes": ["active"], "changed_at": None}


async def test_tokens_carry_the_account_version(api, world):
    token = world["staff"]["Authorization"].split()[1]
    assert verify_token(token, api.rt.settings.token_secret, now=api.clock.now()).version == 1
    await patch_staff(api, world["main"], "m-1.alice", {"categories": ["phones", "tv"]})
    creds, _ = await _staff_with_secret(api, world["main"], "dave")
    async with api.rt.sessions() as s:
        assert (await s.get(ApiClient, "m-1.alice")).version == 2
        assert (await s.get(ApiClient, "m-1.dave")).version == 1


async def test_a_change_made_by_another_replica_holds_here_after_a_refresh(api, world):
    """Another replica's change is in the database only: this process learns it when it
    reloads the changed accounts (every ``account_refresh_s``)."""
    async with api.rt.uow() as s:
        await s.execute(update(ApiClient).where(ApiClient.client_id == "m-1.alice").values(
            version=ApiClient.version + 1, version_changed_at=api.clock.now()))
    assert (await api.client.get(M, headers=world["staff"])).status_code == 200  # not known here yet
    assert await api.rt.account_guard.load() == 1
    assert_revoked(await api.client.get(M, headers=world["staff"]))


async def test_a_starting_replica_refuses_old_tokens_from_its_first_request(api, start_service):
    api.clock.set(datetime.now(timezone.utc))  # the second process runs on the system clock
    op = await api.bootstrap()
    main = await api.merchant(op)
    staff = await api.staff(main, "alice")
    await patch_staff(api, main, "m-1.alice", {"active": False})
    # a second orders process on the same database, started after the change
    other = await start_service(create_app, OrdersSettings, database_url=api.rt.settings.database_url,
                                token_secret=api.rt.settings.token_secret, data_dir=api.rt.settings.data_dir)
    assert_revoked(await other.client.get(M, headers=staff))
    assert (await other.client.get(M, headers=main)).status_code == 200


async def test_other_services_refuse_the_token_once_the_event_arrives(database_url, start_service, broker, tmp_path):
    """The path every other service takes: the orders outbox publishes ``account.changed``;
    a listener (as ``shared.runtime`` runs in every service) feeds its guard."""
    orders = await start_service(create_app, OrdersSettings, database_url=await database_url("orders"),
                                 data_dir=str(tmp_path))
    op = {"Authorization": "Bearer " + issue_token(Principal("platform_operator", "op"), DEV_TOKEN_SECRET)}
    r = await orders.client.post("/v1/platform/merchants", headers=op, json={
        "id": "m-1", "name": "M", "kind": "pop_seller", "mode": "pop_self_service", "contact_phone": "400-000-1234",
        "return_address": "Beijing", "skus": [{"sku": "sku-1", "category": "phones", "price": "9.00"}]})
    assert r.status_code == 201, r.text
    c = r.json()["main_account"]
    r = await orders.client.post("/v1/oauth/token", data={"grant_type": "client_credentials", **c})
    main = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await orders.client.post(STAFF, headers=main, json={"login": "eve", "name": "eve", "permissions": ["audit"],
                                                            "categories": ["phones"]})
    s = r.json()["credentials"]
    r = await orders.client.post("/v1/oauth/token", data={"grant_type": "client_credentials", **s})
    staff_token = r.json()["access_token"]
    principal = verify_token(staff_token, DEV_TOKEN_SECRET, now=datetime.now(timezone.utc) + timedelta(seconds=1))

    elsewhere = AccountGuard()  # another service's guard
    listener = asyncio.create_task(AccountListener(elsewhere, broker.bootstrap).run())
    try:
        elsewhere.check(principal)  # valid
        r = await orders.client.patch(f"{STAFF}/m-1.eve", headers=main, json={"active": False})
        assert r.status_code == 200

        async def refused() -> bool:
            try:
                elsewhere.check(principal)
            except ApiError as exc:
                return exc.code == "token_revoked"
            return False

        await eventually(refused, timeout=30)
        # every orders process runs the same listener too (shared.runtime)
        assert orders.runtime.account_guard.latest("m-1.eve") == 2
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
