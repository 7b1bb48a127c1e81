"""Orders benchmark (`make bench-orders`): whole service-order lifecycles through the
HTTP API against PostgreSQL, one uvicorn worker, plus a trivial FastAPI endpoint as
the ceiling, measured in the same run with the same load process.

Lifecycle (8 operations): apply → claim → audit (approve return) → fill shipment →
register receipt → refund → confirm → rate. Tokens are obtained once per principal
through the real OAuth2 endpoint; every request carries and verifies its bearer token.

Last line: JSON with ops_per_s, p99_ms, ceiling_rps, ratio (and more).
Environment: BENCH_PG (the PostgreSQL server: user@host:port, or user@/socket-directory; by default
the local server's Unix socket where it has one, see benchdb.py),
BENCH_SECONDS (default 30), BENCH_CONCURRENCY (default 16), BENCH_PROFILE (a file: profile the
server with cProfile).
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
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
TARGET_OPS, TARGET_P99 = 1000.0, 50.0
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchdb import ADMIN_DSN, PG_SERVER  # noqa: E402
from shared.db import postgres_url  # noqa: E402

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
# A minimal HTTP/1.1 keep-alive client on uvloop: one connection per concurrent lifecycle,
# request bytes built by hand, responses parsed by Content-Length. It costs a few tens of
# microseconds per request, so the load process stays a small share of the 2 cores and
# the figures measure the server, not the client (httpx costs ~10x more per request).
class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, headers: dict | None = None, body: bytes = b"",
                      content_type: str = "application/json") -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        head = [f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"]
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}\r\n")
        if body or method == "POST":
            head.append(f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n")
        head.append("\r\n")
        self.writer.write("".join(head).encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        close = False
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            self.reader = self.writer = None
        return status, data


class Failed(Exception):
    pass


async def _setup(conn: Conn, creds: dict) -> dict:
    from urllib.parse import urlencode

    async def call(path, body, headers=None, form=False):
        status, data = await conn.request(
            "POST", path, headers, urlencode(body).encode() if form else json.dumps(body).encode(),
            "application/x-www-form-urlencoded" if form else "application/json")
        if status >= 300:
            raise RuntimeError(f"setup {path}: {status} {data[:300]!r}")
        return json.loads(data)

    async def tok(cid, secret):
        r = await call("/v1/oauth/token", {"grant_type": "client_credentials", "client_id": cid,
                                           "client_secret": secret}, form=True)
        return {"Authorization": f"Bearer {r['access_token']}"}

    op = await tok(creds["client_id"], creds["client_secret"])
    r = await call("/v1/platform/merchants", {
        "id": "bench-m", "name": "Bench merchant", "kind": "pop_seller", "mode": "pop_self_service",
        "contact_phone": "400-000-1234", "return_address": "Bench Rd 1",
        "skus": [{"sku": "sku-1", "category": "phones", "price": "199.00"}]}, op)
    main = await tok(r["main_account"]["client_id"], r["main_account"]["client_secret"])
    r = await call("/v1/merchant/staff", {"login": "s1", "name": "s1", "permissions": ["audit", "process"],
                                          "categories": ["phones"]}, main)
    staff = await tok(r["credentials"]["client_id"], r["credentials"]["client_secret"])
    r = await call("/v1/platform/clients", {"client_id": "bench-sf", "role": "storefront",
                                            "name": "bench storefront"}, op)
    sf = await tok(r["client_id"], r["client_secret"])
    return {"staff": staff, "sf": sf}


async def _lifecycle(conn: Conn, h, lat: list, errors: list) -> None:
    cust = f"c-{uuid.uuid4().hex[:12]}"
    sf = {**h["sf"], "X-Customer-Id": cust}
    staff = h["staff"]
    delivered = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()

    async def call(path, headers, body):
        payload = json.dumps(body).encode()
        t0 = time.perf_counter()
        status, data = await conn.request("POST", path, headers, payload)
        lat.append(time.perf_counter() - t0)
        if status >= 300:
            errors.append(f"{path.rsplit('/', 1)[-1]}:{status}:{data[:120]!r}")
            raise Failed
        return data

    o = json.loads(await call("/v1/storefront/service-orders", {**sf, "Idempotency-Key": cust}, {
        "merchant_id": "bench-m", "customer_id": cust, "customer_phone": "13800138000", "sales_order_id": cust,
        "order_line_id": "1", "sku": "sku-1", "category": "phones", "purchased_quantity": 1, "quantity": 1,
        "amount_paid": "199.00", "service_type": "return", "problem_type": "quality", "delivered_at": delivered}))
    base = f"/v1/merchant/service-orders/{o['id']}"
    sbase = f"/v1/storefront/service-orders/{o['id']}"
    await call(f"{base}/claim", staff, {})
    await call(f"{base}/audit", staff, {"decision": "approve_return", "opinion": "ok"})
    await call(f"{sbase}/shipment", sf, {"carrier": "SF", "tracking_number": cust, "freight_paid": "10.00"})
    await call(f"{base}/receipt", staff, {"condition": "ok"})
    await call(f"{base}/process", staff, {"decision": "refund", "amount": "209.00", "reason": "quality"})
    await call(f"{sbase}/confirm", sf, {})
    await call(f"{sbase}/rating", sf, {"stars": 5, "recommend": 9})


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine: shows what else competed during the run."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


async def _load(url: str, mode: str, seconds: float, conc: int, creds: dict | None, server_pid: int) -> dict:
    import resource

    host, port = url.split("://", 1)[1].split(":")
    conns = [Conn(host, int(port)) for _ in range(conc)]
    h = await _setup(conns[0], creds) if mode == "orders" else None
    lat: list[float] = []
    errors: list[str] = []
    lifecycles = 0
    stop_at = 0.0

    async def worker(conn: Conn):
        nonlocal lifecycles
        while time.perf_counter() < stop_at:
            if mode == "orders":
                try:
                    await _lifecycle(conn, h, lat, errors)
                    lifecycles += 1
                except Failed:
                    pass
            else:
                t0 = time.perf_counter()
                status, _ = await conn.request("GET", "/ping")
                lat.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(str(status))

    # warm-up, then measure
    stop_at = time.perf_counter() + min(3.0, seconds / 5)
    await asyncio.gather(*(worker(c) for c in conns))
    lat.clear()
    errors.clear()
    lifecycles = 0
    ru0, srv0, (busy0, tot0) = resource.getrusage(resource.RUSAGE_SELF), _proc_cpu(server_pid), _machine_cpu()
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    ru1, srv1, (busy1, tot1) = resource.getrusage(resource.RUSAGE_SELF), _proc_cpu(server_pid), _machine_cpu()
    for c in conns:
        if c.writer is not None:
            c.writer.close()
    lat.sort()
    client_cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / elapsed
    return {"ops": len(lat), "elapsed": elapsed, "lifecycles": lifecycles, "errors": len(errors),
            "first_errors": errors[:3], "rps": len(lat) / elapsed,
            "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None,
            "mean_ms": statistics.fmean(lat) * 1000 if lat else None,
            # CPU in cores (1.0 = one core busy the whole time)
            "client_cpu": round(client_cpu, 3), "server_cpu": round((srv1 - srv0) / elapsed, 3),
            "machine_cpu": round((busy1 - busy0) / max(1, tot1 - tot0) * (os.cpu_count() or 1), 3)}


def run_load(url: str, mode: str, seconds: float, server_pid: int, creds: dict | None = None) -> dict:
    """The load runs in its own process so it does not share the server's interpreter."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(creds or {}, fh)
    out = subprocess.run([sys.executable, __file__, "--load", url, mode, str(seconds), str(CONCURRENCY), fh.name,
                          str(server_pid)], capture_output=True, text=True)
    os.unlink(fh.name)
    if out.returncode != 0:
        raise RuntimeError(f"load process failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ orchestration
async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def measure(seconds: float = SECONDS, with_ceiling: bool = True) -> tuple[dict, dict | None, int]:
    """(orders load figures, ceiling figures or None, outbox rows pending right after): one
    orders server on a fresh PostgreSQL database with its own broker. The whole-platform
    benchmark (bench_platform.py) calls it for its front-door ceiling."""
    from shared.broker import EmbeddedBroker

    db = f"bench_orders_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg(f'CREATE DATABASE "{db}"'))
    data_dir = tempfile.mkdtemp(prefix="bench-orders-")
    broker = EmbeddedBroker().start()
    port, ceiling_port = free_port(), free_port()
    env = {**os.environ, "ORDERS_DATABASE_URL": postgres_url(PG_SERVER, db), "ORDERS_PORT": str(port),
           "ORDERS_KAFKA_BOOTSTRAP": broker.bootstrap, "ORDERS_LOG_LEVEL": "WARNING", "ORDERS_DATA_DIR": data_dir,
           "ORDERS_ENVIRONMENT": "development"}
    procs = []
    try:
        subprocess.run([sys.executable, "-m", "orders", "migrate"], env=env, check=True, capture_output=True)
        made = subprocess.run([sys.executable, "-m", "orders", "create-operator", "--client-id", "bench-op"],
                              env=env, check=True, capture_output=True, text=True)
        creds = json.loads(made.stdout.strip().splitlines()[-1])
        # BENCH_PROFILE=<file>: run the server under cProfile (slower; for finding the hot path only).
        profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
        procs.append(subprocess.Popen([sys.executable, *profile, "-m", "orders", "serve"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([sys.executable, "-c", CEILING_APP, str(ceiling_port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{port}/health")
        wait_http(f"http://127.0.0.1:{ceiling_port}/ping")
        ceiling = run_load(f"http://127.0.0.1:{ceiling_port}", "ceiling", min(10.0, seconds), procs[1].pid) \
            if with_ceiling else None
        orders = run_load(f"http://127.0.0.1:{port}", "orders", seconds, procs[0].pid, creds)
        # Did the outbox relay keep up? Events still waiting right after the load stops.
        import httpx

        # /admin is for platform operators: ask the token endpoint as the bench's operator
        tok = httpx.post(f"http://127.0.0.1:{port}/v1/oauth/token", timeout=10, data={
            "grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"]}).json()["access_token"]
        pending = httpx.get(f"http://127.0.0.1:{port}/admin/outbox", timeout=10,
                            headers={"Authorization": f"Bearer {tok}"}).json()["pending"]
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
    return orders, ceiling, pending


def main() -> None:
    orders, ceiling, pending = measure()
    ratio = orders["rps"] / ceiling["rps"] if ceiling["rps"] else 0.0
    print(f"orders lifecycle ops: {orders['rps']:.0f} ops/s over {orders['elapsed']:.1f}s "
          f"({orders['lifecycles']} lifecycles, {orders['errors']} errors), p50 {orders['p50_ms']:.1f} ms, "
          f"p99 {orders['p99_ms']:.1f} ms")
    print(f"ceiling (trivial FastAPI endpoint, same load client): {ceiling['rps']:.0f} req/s, "
          f"p99 {ceiling['p99_ms']:.1f} ms")
    print(f"CPU in cores: orders server {orders['server_cpu']}, load client {orders['client_cpu']}, whole machine "
          f"{orders['machine_cpu']} (PostgreSQL, broker and other work included); ceiling run: server "
          f"{ceiling['server_cpu']}, client {ceiling['client_cpu']}, machine {ceiling['machine_cpu']}; "
          f"outbox pending after the run: {pending}")
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
                      "seconds": SECONDS, "server_cpu": orders["server_cpu"], "client_cpu": orders["client_cpu"],
                      "machine_cpu": orders["machine_cpu"], "ceiling_client_cpu": ceiling["client_cpu"],
                      "outbox_pending_after": pending, "cpu_cores": os.cpu_count(),
                      "meets_targets": orders["rps"] >= TARGET_OPS and orders["p99_ms"] < TARGET_P99}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        import uvloop

        _url, _mode, _secs, _conc, _creds, _pid = sys.argv[2:8]
        CONCURRENCY = int(_conc)
        creds = json.loads(Path(_creds).read_text()) or None
        uvloop.install()
        print(json.dumps(asyncio.run(_load(_url, _mode, float(_secs), int(_conc), creds, int(_pid)))))
    else:
        main()
