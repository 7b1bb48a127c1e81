"""Records are kept at least 2 years; the purge archives, then removes, older finished orders."""
import json
from datetime import timedelta

from sqlalchemy import select

from orders.handlers.retention import archive_and_purge
from orders.models import SalesLine
from shared.auth import Principal, issue_token


async def test_purge_archives_and_removes_only_old_finished_orders(api, world, tmp_path):
    w = world
    old = await api.apply(w["sf"])
    await api.post(f"/v1/storefront/service-orders/{old['id']}/abandon", api.cust(w["sf"]), {"reason": "changed mind"})
    open_one = await api.apply(w["sf"])
    open_line = (f"so-{api._n}", "1")  # (apply_body numbers the sales orders)
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
    async with api.rt.sessions() as s:  # the purged order's sales-order line went with it, the open one's stays
        lines = set((await s.execute(select(SalesLine.sales_order_id, SalesLine.order_line_id))).all())
    assert lines == {open_line}



def test_the_purge_condition_is_its_partial_index_condition():
    """The purge reads finished orders by age through a partial index, which it can only while
    its condition is the index's as the migration created it: every terminal state, literally."""
    import importlib.util

    from orders.app import MIGRATIONS
    from orders.domain.states import TERMINAL
    from orders.models import FINISHED, ServiceOrder

    spec = importlib.util.spec_from_file_location("m0008", MIGRATIONS / "versions" / "0008_partial_order_indexes.py")
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.PARTIAL["ix_service_orders_updated"] == ("updated_at", FINISHED)
    assert FINISHED == "state IN (" + ", ".join(f"'{s}'" for s in sorted(TERMINAL)) + ")"
    index = next(i for i in ServiceOrder.__table__.indexes if i.name == "ix_service_orders_updated")
    assert str(index.dialect_options["postgresql"]["where"]) == FINISHED
