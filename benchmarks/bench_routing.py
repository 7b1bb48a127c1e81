"""Routing benchmark (`make bench-routing`): GET /v1/route on one uvicorn worker,
against a trivial FastAPI endpoint (uvicorn's defaults) as the ceiling, in the
same run, with load from separate processes on loopback.

Data: 5,000 manufacturers (enrolled, with live queue state) written to a fresh
SQLite database, 100,000 SKUs loaded through the bulk catalogue API (CSV). Each
request asks for a random SKU (about 1 in 10 unknown) on a random channel and
entry point, so every branch of the decision runs; every decision is also
buffered and written to the outbox by the service's background writer, as in
production.

1. Throughput: ``wrk`` (closed loop, BENCH_CONNECTIONS connections, BENCH_SECONDS
   seconds) against the ceiling, then against the routing endpoint. Without wrk
   (``apt-get install -y wrk``) a Python closed-loop load process is used instead.
2. Latency: a Python open-loop load process at a fixed 2,000 requests/s for
   BENCH_RATE_SECONDS seconds; each latency is measured from the request's
   scheduled time (no coordinated omission), p50/p99 reported.

Every request carries a storefront bearer token (GET /v1/route requires one; the service
verifies it once and then finds it in its cache of verified tokens, as with a storefront
reusing its token); the ceiling's requests carry the same header, so both ends parse the
same request.

Last line: JSON with rps, ceiling_rps, ratio, p99_ms_at_2000 (and more).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
RATE_SECONDS = float(os.environ.get("BENCH_RATE_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
RATE = 2000
# BENCH_PROFILE=/path/to/py-spy: sample the routing server (non-blocking) during the fixed-rate phase;
# BENCH_PROFILE_OUT=file keeps the raw samples (py-spy's "raw" format: stack;stack;... count)
PROFILE = os.environ.get("BENCH_PROFILE")
# BENCH_DIAG=1: the routing server reports its event-loop stalls and GC pauses of the fixed-rate phase
DIAG = bool(os.environ.get("BENCH_DIAG"))
N_SKUS, N_MAKERS = 100_000, 5_000
TARGET_RATIO, TARGET_P99 = 0.70, 10.0

CATEGORIES = ["phones", "appliances", "computers", "apparel", "beauty", "toys_instruments", "kitchen", "books"]
ENTRY_POINTS = ["product_page", "shop_page", "search_list", "home_page", "order_list", "order_recycle_bin",
                "after_sales_page"]

CEILING_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/ping")
async def ping():
    return {"ok": True}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

ROUTING_APP = """
import os, sys, uvicorn
from consultation_routing.app import create_app
from consultation_routing.settings import ConsultationRoutingSettings
from shared.http_server import uvicorn_options
from shared.settings import load_settings
app = create_app(load_settings(ConsultationRoutingSettings))
if os.environ.get("BENCH_DIAG"):
    exec(os.environ["BENCH_DIAG_CODE"])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", **uvicorn_options())
"""

# With BENCH_DIAG, inside the routing server: event-loop stalls (a 1 ms ticker's lateness) and
# garbage-collector pauses, counted between SIGUSR1 (reset) and SIGUSR2 (print to stderr).
DIAG_CODE = """
import asyncio, gc, signal, time
_diag = {}
def _reset(*_):
    _diag.update(lags=[], gc={}, gc_start=0.0, stalls={})
def _gc(phase, info):
    if phase == "start":
        _diag["gc_start"] = time.perf_counter()
    else:
        d = _diag["gc"].setdefault(info["generation"], [0, 0.0, 0.0])
        ms = (time.perf_counter() - _diag["gc_start"]) * 1000
        d[0] += 1; d[1] += ms; d[2] = max(d[2], ms)
def _watch():
    # What the loop's thread runs while the ticker is late (> 4 ms since its last tick):
    # the innermost frames of our code and libraries, counted once per 1 ms look.
    import sys, threading, traceback
    main = threading.main_thread().ident
    while True:
        time.sleep(0.001)
        last = _diag.get("tick")
        if last is None or time.perf_counter() - last < 0.004:
            continue
        frame = sys._current_frames().get(main)
        if frame is None:
            continue
        where = [f"{fs.filename.rsplit('/site-packages/', 1)[-1].rsplit('/src/', 1)[-1]}:{fs.lineno} {fs.name}"
                 for fs in traceback.extract_stack(frame)[-6:]]
        key = " < ".join(reversed(where))
        _diag["stalls"][key] = _diag["stalls"].get(key, 0) + 1
def _report(*_):
    for key, n in sorted(_diag["stalls"].items(), key=lambda kv: -kv[1])[:12]:
        print(f"[bench-routing]   stalled {n} ms in: {key}", file=sys.stderr)
    lags = sorted(_diag["lags"])
    n = len(lags)
    print(f"[bench-routing]   server loop: {n} ticks, stall p99 {lags[int(n * .99)]:.1f} ms, max {lags[-1]:.1f} ms, "
          f"ticks late >5 ms: {sum(x > 5 for x in lags)}, >10 ms: {sum(x > 10 for x in lags)}", file=sys.stderr)
    for g, (c, tot, mx) in sorted(_diag["gc"].items()):
        print(f"[bench-routing]   server gc gen{g}: {c} runs, {tot:.0f} ms total, max {mx:.1f} ms", file=sys.stderr)
async def _ticker():
    while True:
        t = _diag["tick"] = time.perf_counter()
        await asyncio.sleep(0.001)
        _diag["lags"].append((time.perf_counter() - t) * 1000 - 1)
def _begin(*_):
    _reset()
    if "ticker" not in _diag:  # the handler runs on the loop's (main) thread, while it runs
        loop = asyncio.get_running_loop()
        _diag["ticker"] = loop.call_soon_threadsafe(lambda: loop.create_task(_ticker()))
        import threading
        threading.Thread(target=_watch, daemon=True, name="bench-stall-watch").start()
_reset()
gc.callbacks.append(_gc)
signal.signal(signal.SIGUSR1, _begin)
signal.signal(signal.SIGUSR2, _report)
"""

WRK_SCRIPT = """
math.randomseed(os.time())
local ch = {"im", "phone"}
local ep = {%s}
request = function()
  local path = "/v1/route?channel=" .. ch[math.random(1, 2)] .. "&entry_point=" .. ep[math.random(1, #ep)]
    .. "&phase=pre_sale&sku=sku-" .. math.random(0, %d)
  return wrk.format("GET", path)
end
""" % (", ".join(f'"{e}"' for e in ENTRY_POINTS), int(N_SKUS * 1.1))


def say(msg: str) -> None:
    print(f"[bench-routing] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, timeout: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not come up")


def bench_token(role: str, secret: str) -> str:
    """A token for the run (long enough for every phase)."""
    from datetime import timedelta

    from shared.auth import Principal, issue_token

    return issue_token(Principal(role, f"bench-{role}"), secret, ttl=timedelta(hours=4))


def route_path(rng: random.Random) -> str:
    return (f"/v1/route?channel={rng.choice(('im', 'phone'))}&entry_point={rng.choice(ENTRY_POINTS)}"
            f"&phase=pre_sale&sku=sku-{rng.randint(0, int(N_SKUS * 1.1))}")


# --- data -------------------------------------------------------------------------------------------------------

async def seed_database(url: str) -> None:
    """Migrations, then 5,000 enrolled manufacturers and their queue state straight into the tables."""
    from sqlalchemy import insert

    from consultation_routing.app import MIGRATIONS
    from consultation_routing.models import ManufacturerRow, QueueStateRow
    from shared import db
    from shared.migrations import upgrade

    await upgrade(MIGRATIONS, url)
    engine = db.create_engine(url)
    now = datetime.now(timezone.utc)
    rng = random.Random(7)
    makers, queues = [], []
    for i in range(N_MAKERS):
        # most serve round the clock so the full rule table runs whatever the hour; some keep default hours
        always = i % 5 != 0
        makers.append({
            "id": f"m-{i}", "name": f"Maker {i}", "categories": rng.sample(CATEGORIES, 5),
            "hours": ({"phone": ["00:00", "23:59"], "im": ["00:00", "23:59"]} if always
                      else {"phone": ["09:00", "18:00"], "im": ["09:00", "21:00"]}),
            "serve_non_working_days": always, "im_queue_id": f"q-{i}", "phone_extension": f"{1000 + i}",
            "hover_text": None, "min_agents": 1, "max_queue_length": 20, "max_expected_wait_s": 600,
            "package": 1 + i % 2, "disqualified": i % 50 == 0, "disqualified_reason": None,
            "disqualified_at": None, "updated_at": now,
        })
        queues.append({"manufacturer_id": f"m-{i}", "agents_online": 0 if i % 17 == 0 else 3,
                       "queue_length": 25 if i % 13 == 0 else 2, "expected_wait_s": 60,
                       "reported_at": now, "updated_at": now})
    async with engine.begin() as conn:
        await conn.execute(insert(ManufacturerRow.__table__), makers)
        await conn.execute(insert(QueueStateRow.__table__), queues)
    await engine.dispose()


def load_catalogue(port: int, token: str) -> dict:
    import httpx

    rng = random.Random(11)
    lines = ["sku,manufacturer_id,category"]
    lines += [f"sku-{i},m-{rng.randrange(N_MAKERS)},{rng.choice(CATEGORIES)}" for i in range(N_SKUS)]
    r = httpx.post(f"http://127.0.0.1:{port}/v1/catalogue/skus", content="\n".join(lines).encode(), timeout=300,
                   headers={"Authorization": f"Bearer {token}", "content-type": "text/csv"})
    r.raise_for_status()
    return r.json()


# --- load: a minimal HTTP/1.1 keep-alive client (cheap enough to drive 2,000 req/s from one Python process) ------

# the storefront's token, sent with every request (to the ceiling too: the same request to parse)
AUTH = f"Authorization: Bearer {os.environ.get('BENCH_ROUTE_TOKEN', '')}\r\n"


async def _request(reader, writer, path: str) -> int:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{AUTH}\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _open_loop(port: int, path_kind: str, rate: int, seconds: float, conns: int) -> dict:
    """Request i is due at start + i/rate; ``conns`` keep-alive connections take the next due
    request in turn. Latency counts from the due time, so a slow server is not hidden by a
    load generator that waited for it (no coordinated omission)."""
    rng = random.Random(3)
    n = int(rate * seconds)
    paths = [route_path(rng) if path_kind == "route" else "/ping" for _ in range(n)]
    lat: list[float] = []
    errors = 0
    nxt = 0
    # connections first, so connecting is not counted as latency
    conns_open = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(conns)))
    start = time.perf_counter() + 0.05

    async def worker(reader, writer) -> None:
        nonlocal nxt, errors
        while nxt < n:
            i = nxt
            nxt += 1
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if await _request(reader, writer, paths[i]) != 200:
                    errors += 1
            except Exception:  # noqa: BLE001
                errors += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            lat.append(time.perf_counter() - due)
        writer.close()

    await asyncio.gather(*(worker(r, w) for r, w in conns_open))
    elapsed = time.perf_counter() - start
    lat.sort()
    return {"sent": n, "achieved_rps": n / elapsed, "errors": errors,
            "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000,
            "max_ms": lat[-1] * 1000}


async def _closed_loop(port: int, path_kind: str, seconds: float, conns: int) -> dict:
    rng = random.Random(5)
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            status = await _request(reader, writer, route_path(rng) if path_kind == "route" else "/ping")
            done += 1
            errors += status != 200
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return {"rps": done / (time.perf_counter() - start), "errors": errors}


def load_process(argv: list[str]) -> None:
    """Entry point of the separate load process; prints one JSON line."""
    mode, port, kind = argv[0], int(argv[1]), argv[2]
    # The load process's own collector pauses would count as server latency (its due-time
    # clock keeps running); it lives for seconds, so it runs without the cyclic collector.
    import gc

    gc.disable()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if mode == "open":
        out = asyncio.run(_open_loop(port, kind, int(argv[3]), float(argv[4]), int(argv[5])))
    else:
        out = asyncio.run(_closed_loop(port, kind, float(argv[3]), int(argv[4])))
    print(json.dumps(out))


def run_load(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--load", *map(str, args)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(port: int, kind: str, script: Path) -> dict:
    if shutil.which("wrk"):
        cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(SECONDS)}s", "--latency",
               "-H", AUTH.strip()]  # wrk.format() in the script adds it too
        if kind == "route":
            cmd += ["-s", str(script)]
        out = subprocess.run(cmd + [f"http://127.0.0.1:{port}" + ("/" if kind == "route" else "/ping")],
                             capture_output=True, text=True, check=True).stdout
        rps = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec"))
        non2xx = next((int(line.split()[-1]) for line in out.splitlines() if "Non-2xx" in line), 0)
        return {"rps": rps, "errors": non2xx, "tool": "wrk"}
    return {**run_load("closed", port, kind, SECONDS, CONNECTIONS), "tool": "python"}


def profile_start(pid: int, out: Path) -> subprocess.Popen | None:
    if not PROFILE:
        return None
    return subprocess.Popen([PROFILE, "record", "--pid", str(pid), "--nonblocking", "--rate", "250", "--threads",
                             "--format", "raw", "--output", str(out), "--duration", str(int(RATE_SECONDS))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# what each sampled stack of the server was doing, by the first of these frames found from the root
PROFILE_GROUPS = [("decision writer thread", "routing-decision-writer"), ("aiosqlite threads", "_connection_worker"),
                  ("outbox relay", "OutboxRelay"), ("kafka client", "aiokafka"), ("state refresh", "refresh"),
                  ("GET /v1/route (route, decision)", "consultation_routing/api/route.py"), ("http (uvicorn, asgi layers)", "uvicorn/protocols")]


def profile_report(proc: subprocess.Popen | None, out: Path, top: int = 20) -> None:
    """Share of the server's busy samples by activity, then the top functions by self time."""
    if proc is None:
        return
    proc.wait(timeout=RATE_SECONDS + 30)
    groups: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        group = next((g for g, marker in PROFILE_GROUPS if any(marker in f for f in frames)), "other")
        groups[group] = groups.get(group, 0) + n
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + n
    say(f"profile: {total} busy samples ({total / RATE_SECONDS / 250:.0%} of one core at 250 Hz)")
    for g, n in sorted(groups.items(), key=lambda kv: -kv[1]):
        say(f"  {100 * n / total:5.1f}%  {g}")
    say("  self time:")
    for frame, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:top]:
        say(f"  {100 * n / total:5.1f}%  {frame[:140]}")


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of one process with its threads, or, without a pid, of the
    whole machine (all cores, busy time only)."""
    tick = os.sysconf("SC_CLK_TCK")
    if pid is None:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(f[:8]) - f[3] - f[4]) / tick  # less idle and iowait
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick


def ensure_wrk() -> None:
    """wrk drives the throughput phase; install it when missing and we may (root with apt-get)."""
    if shutil.which("wrk"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("wrk not found: installing it with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "install", "-y", "-q", "wrk"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "wrk"]):
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if shutil.which("wrk"):
                return
    say("wrk not available (not root, or the install failed): the throughput phase uses the Python "
        "closed-loop load process instead (a slower client: it may limit both figures)")


def settle(port: int, op_token: str, limit_s: float = 90.0) -> None:
    """Wait until the previous phase's decisions are written and published (bounded)."""
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        pending = httpx.get(f"http://127.0.0.1:{port}/admin/outbox", timeout=10,
                            headers={"Authorization": f"Bearer {op_token}"}).json()["pending"]
        if pending == 0:
            break
        time.sleep(0.5)
    time.sleep(1)
    say(f"  settled in {time.monotonic() - t0:.1f}s (outbox drained)")


def start(code: str, port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, str(port)], env=env, cwd=ROOT)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    import httpx

    from shared.broker import EmbeddedBroker
    from shared.kafka import ensure_topics
    from shared.settings import DEV_TOKEN_SECRET
    from shared.topics import ALL_TOPICS

    ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    url = f"sqlite+aiosqlite:///{tmp}/routing.db"
    script = tmp / "route.lua"
    script.write_text(WRK_SCRIPT)
    say(f"seeding {N_MAKERS} manufacturers into {url}")
    asyncio.run(seed_database(url))
    # the relay publishes every decision to a real (embedded) broker, as in production
    broker = EmbeddedBroker(log_path=str(tmp / "broker.log")).start()
    asyncio.run(ensure_topics(broker.bootstrap, ALL_TOPICS, default_partitions=6))

    env = {**os.environ, "CONSULTATION_ROUTING_DATABASE_URL": url, "CONSULTATION_ROUTING_ENVIRONMENT": "development",
           "CONSULTATION_ROUTING_LOG_LEVEL": "WARNING", "CONSULTATION_ROUTING_RUN_MIGRATIONS_ON_START": "false",
           # queue state was pushed once at seeding; keep it valid for the run (no CS system here)
           "CONSULTATION_ROUTING_QUEUE_STATE_TTL_S": "3600",
           "CONSULTATION_ROUTING_KAFKA_BOOTSTRAP": broker.bootstrap, "BENCH_DIAG_CODE": DIAG_CODE}
    secret = os.environ.get("CONSULTATION_ROUTING_TOKEN_SECRET", DEV_TOKEN_SECRET)
    op_token = bench_token("platform_operator", secret)
    # the load processes read it from their environment (module-level AUTH)
    os.environ["BENCH_ROUTE_TOKEN"] = bench_token("storefront", secret)
    global AUTH
    AUTH = f"Authorization: Bearer {os.environ['BENCH_ROUTE_TOKEN']}\r\n"
    results: dict = {}
    cport, rport = free_port(), free_port()
    ceiling = start(CEILING_APP, cport, env)
    routing = start(ROUTING_APP, rport, env)
    try:
        wait_http(cport, "/ping")
        wait_http(rport, "/health")
        t0 = time.monotonic()
        loaded = load_catalogue(rport, op_token)
        say(f"catalogue: {loaded['accepted']} SKUs loaded through the bulk API in {time.monotonic() - t0:.1f}s "
            f"({loaded['rejected']} rejected)")
        time.sleep(6)  # past the refresh overlap window, so background refreshes are idle as in steady state
        say("warm-up")
        run_load("closed", cport, "ping", 3, CONNECTIONS)
        run_load("closed", rport, "route", 3, CONNECTIONS)
        probe = httpx.get(f"http://127.0.0.1:{rport}/v1/route?channel=phone&entry_point=product_page&sku=sku-1",
                          headers={"Authorization": f"Bearer {os.environ['BENCH_ROUTE_TOKEN']}"}).json()
        say(f"sample answer: {json.dumps(probe, ensure_ascii=False)}")
        if "target" not in probe:
            raise SystemExit("GET /v1/route did not answer a decision (token?)")

        settle(rport, op_token)
        say(f"latency: GET /v1/route at a fixed {RATE} req/s for {RATE_SECONDS:.0f}s (open loop, 64 connections)")
        prof = profile_start(routing.pid, tmp / "profile.txt")
        if DIAG:
            routing.send_signal(signal.SIGUSR1)
        cpu0, machine0, wall0 = cpu_seconds(routing.pid), cpu_seconds(), time.monotonic()
        results["fixed"] = run_load("open", rport, "route", RATE, RATE_SECONDS, 64)
        wall = time.monotonic() - wall0
        server_cores = (cpu_seconds(routing.pid) - cpu0) / wall
        machine_cores = (cpu_seconds() - machine0) / wall
        results["fixed"].update(server_cores=server_cores, machine_cores=machine_cores)
        if DIAG:
            routing.send_signal(signal.SIGUSR2)
            time.sleep(0.5)
        profile_report(prof, tmp / "profile.txt")
        if prof is not None and os.environ.get("BENCH_PROFILE_OUT"):  # the raw samples, kept for a closer look
            shutil.copy(tmp / "profile.txt", os.environ["BENCH_PROFILE_OUT"])
        f = results["fixed"]
        say(f"  achieved {f['achieved_rps']:.0f} req/s, p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, "
            f"max {f['max_ms']:.1f} ms, errors {f['errors']}")
        say(f"  CPU: routing server {server_cores:.2f} cores ({server_cores / RATE * 1e6:.0f} us per request, "
            f"background publishing included); whole machine {machine_cores:.2f} of {os.cpu_count()} cores busy "
            f"(load client, broker and other work on the machine included)")
        settle(rport, op_token)
        say(f"throughput: ceiling GET /ping, {CONNECTIONS} connections, {SECONDS:.0f}s")
        results["ceiling"] = throughput(cport, "ping", script)
        say(f"  ceiling: {results['ceiling']['rps']:.0f} req/s")
        say(f"throughput: GET /v1/route, {CONNECTIONS} connections, {SECONDS:.0f}s")
        results["routing"] = throughput(rport, "route", script)
        say(f"  routing: {results['routing']['rps']:.0f} req/s")
    finally:
        stop(ceiling)
        stop(routing)
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    rps, ceiling_rps = results["routing"]["rps"], results["ceiling"]["rps"]
    ratio = rps / ceiling_rps
    p99 = results["fixed"]["p99_ms"]
    say(f"routing {rps:.0f} req/s vs ceiling {ceiling_rps:.0f} req/s: ratio {ratio:.2f} "
        f"(target >= {TARGET_RATIO}); p99 at {RATE} req/s {p99:.2f} ms (target < {TARGET_P99} ms)")
    print(json.dumps({
        "rps": round(rps, 1), "ceiling_rps": round(ceiling_rps, 1), "ratio": round(ratio, 3),
        "p99_ms_at_2000": round(p99, 2), "p50_ms_at_2000": round(results["fixed"]["p50_ms"], 2),
        "achieved_rps_at_2000": round(results["fixed"]["achieved_rps"], 1),
        "server_cores_at_2000": round(results["fixed"]["server_cores"], 2),
        "machine_busy_cores_at_2000": round(results["fixed"]["machine_cores"], 2),
        "errors": results["routing"]["errors"] + results["fixed"]["errors"],
        "load_tool": results["routing"]["tool"], "connections": CONNECTIONS, "skus": N_SKUS,
        "manufacturers": N_MAKERS, "meets_targets": ratio >= TARGET_RATIO and p99 < TARGET_P99,
    }))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load_process(sys.argv[2:])
    else:
        main()
