"""Orders benchmark (`make bench-orders`): whole service-order lifecycles through the
HTTP API against PostgreSQL, one uvicorn worker, plus a trivial FastAPI endpoint as
the ceiling, measured in the same run with the same load process.

Lifecycle (8 operations): apply → claim → audit (approve return) → fill shipment →
register receipt → refund → confirm → rate. Tokens are obtained once per principal
through the real OAuth2 endpoint; every request carries and verifies its bearer token.

Last line: JSON with ops_per_s, p99_ms, ceiling_rps, ratio (and more).
Environment: BENCH_PG_DSN (admin DSN, default postgresql://postgres@127.0.0.1:5432/postgres),
BENCH_SECONDS (default 30), BENCH_CONCURRENCY (default 16).
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
TARGET_OPS, TARGET_P99 = 1000.0, 50.0

CEILING_APP = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/ping")
async def ping():
    return {"ok": True}
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


# ------------------------------------------------------------------ load process
async def _setup(c, creds: dict) -> dict:
    async def tok(cid, secret):
        r = await c.post("/v1/oauth/token", data={"grant_type": "client_credentials", "client_id": cid,
                                                  "client_secret": secret})
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    op = await tok(creds["client_id"], creds["client_secret"])
    r = await c.post("/v1/platform/merchants", headers=op, json={
        "id": "bench-m", "name": "Bench merchant", "kind": "pop_seller", "mode": "pop_self_service",
        "contact_phone": "400-000-1234", "return_address": "Bench Rd 1",
        "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"}]})
    r.raise_for_status()
    main = await tok(r.json()["main_account"]["client_id"], r.json()["main_account"]["client_secret"])
    r = await c.post("/v1/merchant/staff", headers=main, json={"login": "s1", "name": "s1",
                                                               "permissions": ["audit", "process"],
                                                               "categories": ["phones"]})
    r.raise_for_status()
    staff = await tok(r.json()["credentials"]["client_id"], r.json()["credentials"]["client_secret"])
    r = await c.post("/v1/platform/clients", headers=op, json={"client_id": "bench-sf", "role": "storefront",
                                                               "name": "bench storefront"})
    r.raise_for_status()
    sf = await tok(r.json()["client_id"], r.json()["client_secret"])
    return {"staff": staff, "sf": sf}


async def _lifecycle(c, h, lat: list, errors: list) -> None:
    cust = f"c-{uuid.uuid4().hex[:12]}"
    sf = {**h["sf"], "X-Customer-Id": cust}
    staff = h["staff"]
    delivered = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()

    async def call(path, headers, body, extra=None):
        t0 = time.perf_counter()
        r = await c.post(path, headers={**headers, **(extra or {})}, json=body)
        lat.append(time.perf_counter() - t0)
        if r.status_code >= 300:
            errors.append(f"{path.rsplit('/', 1)[-1]}:{r.status_code}:{r.text[:120]}")
            raise RuntimeError
        return r.json()

    o = await call("/v1/storefront/service-orders", sf, {
        "merchant_id": "bench-m", "customer_id": cust, "customer_phone": "13800138000", "sales_order_id": cust,
        "order_line_id": "1", "sku": "sku-1", "category": "phones", "purchased_quantity": 1, "quantity": 1,
        "amount_paid": "199.00", "service_type": "return", "problem_type": "quality", "delivered_at": delivered},
        {"Idempotency-Key": cust})
    base = f"/v1/merchant/service-orders/{o['id']}"
    sbase = f"/v1/storefront/service-orders/{o['id']}"
    await call(f"{base}/claim", staff, {})
    await call(f"{base}/audit", staff, {"decision": "approve_return", "opinion": "ok"})
    await call(f"{sbase}/shipment", sf, {"carrier": "SF", "tracking_number": cust, "freight_paid": "10.00"})
    await call(f"{base}/receipt", staff, {"condition": "ok"})
    await call(f"{base}/process", staff, {"decision": "refund", "amount": "209.00", "reason": "quality"})
    await call(f"{sbase}/confirm", sf, {})
    await call(f"{sbase}/rating", sf, {"stars": 5, "recommend": 9})


async def _load(url: str, mode: str, seconds: float, conc: int, creds: dict | None) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as c:
        h = await _setup(c, creds) if mode == "orders" else None
        lat: list[float] = []
        errors: list[str] = []
        lifecycles = 0
        stop_at = 0.0

        async def worker():
            nonlocal lifecycles
            while time.perf_counter() < stop_at:
                if mode == "orders":
                    try:
                        await _lifecycle(c, h, lat, errors)
                        lifecycles += 1
                    except RuntimeError:
                        pass
                else:
                    t0 = time.perf_counter()
                    r = await c.get("/ping")
                    lat.append(time.perf_counter() - t0)
                    if r.status_code != 200:
                        errors.append(str(r.status_code))

        # warm-up, then measure
        stop_at = time.perf_counter() + min(3.0, seconds / 5)
        await asyncio.gather(*(worker() for _ in range(conc)))
        lat.clear()
        errors.clear()
        lifecycles = 0
        start = time.perf_counter()
        stop_at = start + seconds
        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - start
    lat.sort()
    return {"ops": len(lat), "elapsed": elapsed, "lifecycles": lifecycles, "errors": len(errors),
            "first_errors": errors[:3], "rps": len(lat) / elapsed,
            "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None,
            "mean_ms": statistics.fmean(lat) * 1000 if lat else None}


def run_load(url: str, mode: str, seconds: float, creds: dict | None = None) -> dict:
    """The load runs in its own process so it does not share the server's interpreter."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(creds or {}, fh)
    out = subprocess.run([sys.executable, __file__, "--load", url, mode, str(seconds), str(CONCURRENCY), fh.name],
                         capture_output=True, text=True, check=True)
    os.unlink(fh.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ orchestration
async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    from shared.broker import EmbeddedBroker

    db = f"bench_orders_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg(f'CREATE DATABASE "{db}"'))
    host = ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
    data_dir = tempfile.mkdtemp(prefix="bench-orders-")
    broker = EmbeddedBroker().start()
    port, ceiling_port = free_port(), free_port()
    env = {**os.environ, "ORDERS_DATABASE_URL": f"postgresql+asyncpg://{host}/{db}", "ORDERS_PORT": str(port),
           "ORDERS_KAFKA_BOOTSTRAP": broker.bootstrap, "ORDERS_LOG_LEVEL": "WARNING", "ORDERS_DATA_DIR": data_dir,
           "ORDERS_ENVIRONMENT": "development"}
    procs = []
    try:
        subprocess.run([sys.executable, "-m", "orders", "migrate"], env=env, check=True, capture_output=True)
        made = subprocess.run([sys.executable, "-m", "orders", "create-operator", "--client-id", "bench-op"],
                              env=env, check=True, capture_output=True, text=True)
        creds = json.loads(made.stdout.strip().splitlines()[-1])
        procs.append(subprocess.Popen([sys.executable, "-m", "orders", "serve"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([sys.executable, "-c", CEILING_APP, str(ceiling_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{port}/health")
        wait_http(f"http://127.0.0.1:{ceiling_port}/ping")
        ceiling = run_load(f"http://127.0.0.1:{ceiling_port}", "ceiling", min(10.0, SECONDS))
        orders = run_load(f"http://127.0.0.1:{port}", "orders", SECONDS, creds)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    ratio = orders["rps"] / ceiling["rps"] if ceiling["rps"] else 0.0
    print(f"orders lifecycle ops: {orders['rps']:.0f} ops/s over {orders['elapsed']:.1f}s "
          f"({orders['lifecycles']} lifecycles, {orders['errors']} errors), p50 {orders['p50_ms']:.1f} ms, "
          f"p99 {orders['p99_ms']:.1f} ms")
    print(f"ceiling (trivial FastAPI endpoint, same load process): {ceiling['rps']:.0f} req/s, "
          f"p99 {ceiling['p99_ms']:.1f} ms")
    print(f"ratio orders/ceiling: {ratio:.2f}; targets: >= {TARGET_OPS:.0f} ops/s "
          f"({'met' if orders['rps'] >= TARGET_OPS else 'NOT met'}), p99 < {TARGET_P99:.0f} ms "
          f"({'met' if orders['p99_ms'] < TARGET_P99 else 'NOT met'}); concurrency {CONCURRENCY}, "
          f"cpu cores {os.cpu_count()}")
    if orders["first_errors"]:
        print("first errors:", orders["first_errors"])
    print(json.dumps({"ops_per_s": round(orders["rps"], 1), "p99_ms": round(orders["p99_ms"], 2),
                      "p50_ms": round(orders["p50_ms"], 2), "ceiling_rps": round(ceiling["rps"], 1),
                      "ceiling_p99_ms": round(ceiling["p99_ms"], 2), "ratio": round(ratio, 3),
                      "lifecycles": orders["lifecycles"], "errors": orders["errors"], "concurrency": CONCURRENCY,
                      "seconds": SECONDS}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        _url, _mode, _secs, _conc, _creds = sys.argv[2:7]
        CONCURRENCY = int(_conc)
        creds = json.loads(Path(_creds).read_text()) or None
        print(json.dumps(asyncio.run(_load(_url, _mode, float(_secs), int(_conc), creds))))
    else:
        main()
