"""`make simulate`, short: two simulated days of a small Double-11 marketplace on the embedded
platform (SQLite, the embedded broker), then the report's figures — drawn from the event
stream — checked against what the services' APIs say: orders by state and their
transitions (orders), the deadlines that fired (sla-timer's timers), the 48 h penalties
(kpi's ledger against sla-timer's fired timers), the routing decisions (the answers the
storefront got); and the report itself (HTML with inline SVG charts, the same JSON)."""
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.simulator.platforms import EmbeddedPlatform  # noqa: E402
from tools.simulator.report import write_report  # noqa: E402
from tools.simulator.scenario import ScenarioConfig  # noqa: E402
from tools.simulator.simulate import Simulation, SimConfig  # noqa: E402
from tools.workload.model import TERMINAL  # noqa: E402


async def _all_orders(api, op, merchant_ids) -> dict[str, dict]:
    out = {}
    for mid in merchant_ids:
        offset = 0
        while True:
            page = await api.ok("orders", "GET", "/v1/platform/service-orders", as_=op,
                                params={"merchant_id": mid, "limit": 200, "offset": offset})
            out.update({o["id"]: o for o in page["items"]})
            offset += 200
            if offset >= page["total"]:
                break
    return out


async def _simulate_and_read(platform, out_dir: Path):
    sim = Simulation(SimConfig(ScenarioConfig(seed=5, merchants=5, orders=36, days=2, tick_s=3 * 3600),
                               concurrency=8), platform, log=lambda m: None)
    figures = await sim.run()
    paths = write_report(figures, out_dir)
    # read the platform back through its APIs (a fresh client: the simulation closed its own)
    from tools.workload import Api

    api = Api(platform.urls)
    op = platform.operator["client_id"]
    api.add_client(op, platform.operator["client_secret"])
    try:
        orders = await _all_orders(api, op, sim.merchant_ids)
        timers = {}
        for oid in orders:
            timers[oid] = (await api.ok("sla-timer", "GET", f"/v1/service-orders/{oid}/timers", as_=op))["items"]
        penalties = []
        for mid in sim.merchant_ids:
            penalties += (await api.ok("kpi", "GET", "/v1/penalties", as_=op, params={"merchant_id": mid}))["lines"]
    finally:
        await api.close()
    return sim, figures, paths, orders, timers, penalties


@pytest.mark.broker
@pytest.mark.timeout(180)
def test_short_simulation_report_matches_the_platform_apis(tmp_path):
    platform = EmbeddedPlatform(tmp_path / "platform", log=lambda m: None).start()
    try:
        sim, f, paths, orders, timers, penalties = asyncio.run(_simulate_and_read(platform, tmp_path / "report"))
    finally:
        platform.stop()
    w = sim.workload
    assert f["run"]["workload_errors"] == 0, f["run"]["first_errors"]
    assert f["run"]["quiet"].get("outbox") is not None and not f["run"]["quiet"]["clock_behind"], f["run"]["quiet"]
    # orders: every planned application became an order, and the stream's view equals the API's
    assert f["orders"]["opened"] == f["orders"]["applied"] == len(orders) == len(w.tracks) \
        == f["scenario"]["orders_planned"] == 36
    by_state = dict(Counter(o["state"] for o in orders.values()))
    assert f["orders"]["by_state"] == by_state == f["orders"]["by_state_events"]
    assert sum(f["series"]["opened"]) == 36
    assert sum(f["series"]["closed"]) == f["orders"]["closed"] == sum(n for s, n in by_state.items() if s in TERMINAL)
    # every transition an order went through is in the series (versions start at 1)
    assert sum(f["series"]["transitions"]) == sum(o["version"] - 1 for o in orders.values())
    assert f["run"]["actions"] == len(w.acked) and f["run"]["actions"] >= 36
    # deadlines: what fired on the stream is what sla-timer's timers say fired
    fired = Counter(t["rule"] for items in timers.values() for t in items if t["state"] == "fired")
    assert f["deadlines"]["fired_by_rule"] == dict(fired) and f["deadlines"]["fired_total"] > 0
    assert "first_response" in fired  # two days: at least the 30-minute escalations fired on their own
    # the 48 h penalty: charged by kpi exactly for the orders whose penalty timer fired
    charged = {o for line in penalties if line["kind"] == "unprocessed_48h" for o in line["order_ids"]}
    penalised = {oid for oid, items in timers.items() for t in items
                 if t["rule"] == "processing_penalty" and t["state"] == "fired"}
    assert charged == penalised
    assert f["penalties"]["total_cny"] == round(sum(float(x["amount"]) for x in penalties), 2)
    # routing: every answer the storefront got is a decision on the stream
    assert f["routing"]["decisions"] == len(w.consultations) > 0
    assert sum(f["routing"]["by_target"].values()) == len(w.consultations)
    # the report: the same figures as JSON, and a self-contained page with the charts inline
    assert json.loads(paths["json"].read_text())["orders"] == f["orders"]
    page = paths["html"].read_text()
    assert page.count("<svg") == 6
    assert "src=" not in page and 'href="http' not in page and "<link" not in page  # nothing fetched
    assert f["scenario"]["plan_digest"] == sim.plan.digest()
