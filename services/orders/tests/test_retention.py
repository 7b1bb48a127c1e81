"""Records are kept at least 2 years; the purge archives, then removes, older finished orders."""
import json
from datetime import timedelta

from orders.handlers.retention import archive_and_purge
from shared.auth import Principal, issue_token


async def test_purge_archives_and_removes_only_old_finished_orders(api, world, tmp_path):
    w = world
    old = await api.apply(w["sf"])
    await api.post(f"/v1/storefront/service-orders/{old['id']}/abandon", api.cust(w["sf"]), {"reason": "changed mind"})
    open_one = await api.apply(w["sf"])
    api.clock.advance(timedelta(days=729))
    assert (await archive_and_purge(api.rt, tmp_path / "a"))["purged"] == 0
    api.clock.advance(timedelta(days=2))
    res = await archive_and_purge(api.rt, tmp_path / "a")
    assert res["purged"] == 1
    rows = [json.loads(x) for x in open(res["archive"], encoding="utf-8")]
    assert rows[0]["id"] == old["id"] and [t["action"] for t in rows[0]["timeline"]] == ["apply", "abandon"]
    main = {"Authorization": "Bearer " + issue_token(Principal("merchant_main", "m-1.main", merchant_id="m-1"),
                                                     api.rt.settings.token_secret, now=api.clock.now())}
    assert (await api.client.get(f"/v1/merchant/service-orders/{old['id']}", headers=main)).status_code == 404
    assert (await api.client.get(f"/v1/merchant/service-orders/{open_one['id']}", headers=main)).status_code == 200
