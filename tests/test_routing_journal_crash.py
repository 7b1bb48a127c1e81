"""A billable consultation the storefront got an answer for is never lost: killed with
SIGKILL right after answering (the decision writer killed too, before it drained
anything), the routing service finds the decision in its journal at the next start and
KPI bills it (issue 15, finding 4)."""
import asyncio
import os
import signal
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from shared.testing import eventually
from tests.helpers import bearer, operator_headers, start_services
from tests.procs import ServiceProcess

SHOP = bearer("storefront", "test-storefront")
OP = operator_headers()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def test_a_billable_answer_survives_sigkill_of_the_service_and_its_writer(start_service, database_url, broker,
                                                                                 tmp_path):
    kpi = (await start_services(start_service, database_url, broker, ["kpi"]))["kpi"]
    url = await database_url("routing")
    settings = dict(database_url=url, kafka_bootstrap=broker.bootstrap, data_dir=str(tmp_path),
                    journal_interval_s="5")  # non-billable decisions would wait 5 s: only billable ones are synced
    first = ServiceProcess("consultation-routing", "CONSULTATION_ROUTING_", **settings)
    await asyncio.to_thread(first.start, "/ready")
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=10) as c:
            r = await c.put("/v1/manufacturers/m-crash/enrollment", headers=OP, json={
                "name": "Maker", "categories": ["phones"], "im_queue_id": "q", "phone_extension": "8001"})
            assert r.status_code == 200, r.text
            r = await c.post("/v1/catalogue/skus", headers={**OP, "content-type": "text/csv"},
                             content=b"sku,manufacturer_id,category\nsku-c,m-crash,phones\n")
            assert r.status_code == 200, r.text

            async def routed_to_maker_catalogue():
                r = await c.get("/v1/route", headers=OP, params={"channel": "im", "entry_point": "product_page",
                                                                 "sku": "sku-c"})
                return r.json()["reason"] != "unknown_sku"

            await eventually(routed_to_maker_catalogue, timeout=30)  # the in-memory state refreshed
            writers = _children(first.proc.pid)
            assert writers, "the decision writer process runs"
            for w in writers:  # the writer first: nothing may drain the journal before the crash
                os.kill(w, signal.SIGSTOP)
            r = await c.get("/v1/route", headers=SHOP, params={
                "channel": "im", "entry_point": "product_page", "sku": "sku-c", "consultation_id": "crash-1"})
            assert r.status_code == 200 and r.json()["target"] == "platform", r.text
        first.kill()
        for w in writers:
            os.kill(w, signal.SIGKILL)
    finally:
        first.kill()

    second = ServiceProcess("consultation-routing", "CONSULTATION_ROUTING_", port=first.port, **settings)
    await asyncio.to_thread(second.start, "/ready")
    try:
        month = (datetime.now(timezone.utc) + timedelta(hours=8)).strftime("%Y-%m")

        async def billed():
            b = await kpi.client.get("/v1/billing", params={"manufacturer_id": "m-crash", "month": month},
                                     headers=OP)
            return [(x["item"], x["quantity"]) for x in b.json()["lines"] if x["item"].startswith("consultation")]

        assert await eventually(billed, timeout=60) == [("consultation_package_1", 1)]
    finally:
        await asyncio.to_thread(second.stop)
