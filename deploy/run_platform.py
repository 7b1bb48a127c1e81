"""`make run`: the whole platform on one machine with the embedded defaults.

Starts the embedded broker on a loopback port, creates the topics, applies every
service's migrations, starts the five services and the operators' console, waits until
each answers /ready, prints their URLs, and on Ctrl-C (or SIGTERM) stops the services
and the broker.

Environment (all optional):
  PLATFORM_KAFKA_PORT   broker port (default 19092)
  PLATFORM_BASE_PORT    first service port (default 8101; the five use +0..+4, the console +5)
  PLATFORM_DATA_DIR     SQLite files (default var/data)
  PLATFORM_CLOCK        virtual (default, so the demo can move time) or system
  PLATFORM_READY_TIMEOUT seconds to wait for /ready (default 60)
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.broker import EMBEDDED_PARTITIONS, EmbeddedBroker
from shared.kafka import ensure_topics
from shared.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# (command, env prefix, port offset) — ports documented in the README.
SERVICES = [
    ("orders", "ORDERS_", 0),
    ("consultation-routing", "CONSULTATION_ROUTING_", 1),
    ("sla-timer", "SLA_TIMER_", 2),
    ("kpi", "KPI_", 3),
    ("notifier", "NOTIFIER_", 4),
    # The operators' console (docs/console.md): a client of the five (their APIs and events).
    ("console", "CONSOLE_", 5),
]
OFFSETS = {prefix: offset for _name, prefix, offset in SERVICES}


def say(msg: str) -> None:
    print(f"[platform] {msg}", flush=True)


def signing_secret(data_dir: str) -> str:
    """This data directory's token signing secret: random, made on first start and kept
    (mode 0600) so tokens survive restarts; never the public development default, so
    nobody can mint tokens for a demo instance from the source code."""
    path = Path(data_dir) / "token-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def service_env(prefix: str, port: int, bootstrap: str, data_dir: str, clock: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault(f"{prefix}TOKEN_SECRET", signing_secret(data_dir))
    env.setdefault(f"{prefix}TOKEN_URL", f"http://127.0.0.1:{port - OFFSETS[prefix]}/v1/oauth/token")
    # the virtual clock's offset survives restarts of the service (and of the broker)
    env.setdefault(f"{prefix}CLOCK_STATE_FILE", str(Path(data_dir) / f"clock-{prefix.rstrip('_').lower()}.json"))
    env.setdefault(f"{prefix}PORT", str(port))
    env.setdefault(f"{prefix}KAFKA_BOOTSTRAP", bootstrap)
    env.setdefault(f"{prefix}DATA_DIR", data_dir)
    env.setdefault(f"{prefix}CLOCK", clock)
    # LOG_JSON unset: short human lines when this runs in a terminal, JSON lines otherwise
    # (shared.logging); set ORDERS_LOG_JSON=true (etc.) to force JSON
    return env


def console_credentials(data_dir: str, orders_env: dict[str, str]) -> dict[str, str]:
    """The console's own platform-operator client, made once per data directory with
    `orders create-operator` (its secret is shown once: kept here, mode 0600)."""
    path = Path(data_dir) / "console-credentials.json"
    if not path.exists():
        client_id = f"console-{secrets.token_hex(4)}"
        out = subprocess.run([str(BIN / "orders"), "create-operator", "--client-id", client_id,
                              "--name", "Operators' console"], env=orders_env, check=True, capture_output=True,
                             text=True)
        creds = json.loads(out.stdout.strip().splitlines()[-1])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"client_id": creds["client_id"], "client_secret": creds["client_secret"]}, f)
    return json.loads(path.read_text())


def console_env(base_port: int, creds: dict[str, str]) -> dict[str, str]:
    """Where the console finds the services, and the credential it reads them with."""
    url = {name: f"http://127.0.0.1:{base_port + offset}" for name, _prefix, offset in SERVICES}
    return {"CONSOLE_ORDERS_URL": url["orders"], "CONSOLE_ROUTING_URL": url["consultation-routing"],
            "CONSOLE_SLA_TIMER_URL": url["sla-timer"], "CONSOLE_KPI_URL": url["kpi"],
            "CONSOLE_NOTIFIER_URL": url["notifier"], "CONSOLE_SERVICE_CLIENT_ID": creds["client_id"],
            "CONSOLE_SERVICE_CLIENT_SECRET": creds["client_secret"]}


def wait_ready(urls: dict[str, str], procs: dict[str, subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    with httpx.Client(timeout=2) as client:
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                if procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with code {procs[name].returncode}; see its log above")
                try:
                    if client.get(f"{url}/ready").status_code == 200:
                        say(f"{name} ready")
                        del pending[name]
                except httpx.HTTPError:
                    pass
            time.sleep(0.3)
    if pending:
        raise RuntimeError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")


class Supervisor:
    """When to restart crashed services: backoff 1 s doubling to 30 s per service, reset
    after a run that lasted STABLE_S."""

    FIRST_S, MAX_S, STABLE_S = 1.0, 30.0, 60.0

    def __init__(self, now) -> None:
        self.now = now
        self.started_at: dict[str, float] = {}
        self.backoff: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}
        self.restarts: dict[str, int] = {}

    def started(self, name: str) -> None:
        self.started_at[name] = self.now()
        self.restart_at.pop(name, None)

    def crashed(self, name: str, code) -> bool:
        """Record a crash; False when it is already waiting for its restart."""
        if name in self.restart_at:
            return False
        ran = self.now() - self.started_at.get(name, self.now())
        delay = self.FIRST_S if ran >= self.STABLE_S else min(self.MAX_S, self.backoff.get(name, self.FIRST_S / 2) * 2)
        self.backoff[name] = delay
        self.restart_at[name] = self.now() + delay
        self.restarts[name] = self.restarts.get(name, 0) + 1
        return True

    def delay(self, name: str) -> float:
        return self.backoff[name]

    def due(self) -> list[str]:
        t = self.now()
        return [n for n, at in list(self.restart_at.items()) if at <= t]


def main() -> int:
    kafka_port = int(os.environ.get("PLATFORM_KAFKA_PORT", "19092"))
    base_port = int(os.environ.get("PLATFORM_BASE_PORT", "8101"))
    data_dir = os.environ.get("PLATFORM_DATA_DIR", str(ROOT / "var" / "data"))
    clock = os.environ.get("PLATFORM_CLOCK", "virtual")
    ready_timeout = float(os.environ.get("PLATFORM_READY_TIMEOUT", "60"))
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)

    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    broker = EmbeddedBroker(kafka_port, log_path=str(ROOT / "var" / "log" / "broker.log"))
    procs: dict[str, subprocess.Popen] = {}
    try:
        say(f"starting the embedded broker on 127.0.0.1:{kafka_port}")
        broker.start()
        asyncio.run(ensure_topics(broker.bootstrap, ALL_TOPICS, default_partitions=EMBEDDED_PARTITIONS))
        say("topics: " + ", ".join(t.name for t in ALL_TOPICS))
        urls = {}
        for name, prefix, offset in SERVICES:
            env = service_env(prefix, base_port + offset, broker.bootstrap, data_dir, clock)
            subprocess.run([str(BIN / name), "migrate"], env=env, check=True)
            urls[name] = f"http://127.0.0.1:{base_port + offset}"
        # Demo merchants, staff, SKUs, API clients and orders, so the README's examples work
        # (idempotent: a second `make run` keeps what is there).
        orders_env = service_env("ORDERS_", base_port, broker.bootstrap, data_dir, clock)
        subprocess.run([str(BIN / "orders"), "seed-demo", "--out", str(Path(data_dir) / "demo-credentials.json")],
                       env=orders_env, check=True, stdout=subprocess.DEVNULL)
        say(f"demo data seeded; client credentials in {Path(data_dir) / 'demo-credentials.json'}")
        console = console_env(base_port, console_credentials(data_dir, orders_env))

        def start_service(name: str) -> subprocess.Popen:
            prefix, offset = next((p, o) for n, p, o in SERVICES if n == name)
            env = service_env(prefix, base_port + offset, broker.bootstrap, data_dir, clock)
            if name == "console":
                env.update({k: v for k, v in console.items() if k not in os.environ})
            return subprocess.Popen([str(BIN / name), "serve"], env=env, start_new_session=True)

        # Swagger's Authorize on every service's /docs asks the orders token endpoint (CORS)
        origins = [f"http://{h}:{base_port + o}" for _n, _p, o in SERVICES for h in ("127.0.0.1", "localhost")]
        os.environ.setdefault("ORDERS_CORS_ORIGINS", json.dumps(origins))
        for name, _prefix, _offset in SERVICES:
            procs[name] = start_service(name)
        wait_ready(urls, procs, ready_timeout)
        say("all five services and the console are ready:")
        for name, url in urls.items():
            if name == "console":
                print(f"  {name:<22} {url}   (operators' console: sign in as demo-operator or demo-arbitrator, "
                      f"secrets in {Path(data_dir) / 'demo-credentials.json'})", flush=True)
            else:
                print(f"  {name:<22} {url}   (docs: {url}/docs)", flush=True)
        say("a bearer token for the demo storefront: .venv/bin/python deploy/demo_token.py demo-storefront")
        say(f"clock: {clock}; press Ctrl-C to stop everything")
        # Supervise: a crashed service is restarted with backoff (1 s doubling to 30 s; the
        # backoff resets once a run lasted a minute); the others keep serving meanwhile.
        supervisor = Supervisor(now=time.monotonic)
        for name in procs:
            supervisor.started(name)
        while not stopping:
            for name, p in list(procs.items()):
                if p.poll() is not None and supervisor.crashed(name, p.returncode):
                    say(f"{name} exited with code {p.returncode}; restarting it in "
                        f"{supervisor.delay(name):.0f} s")
            for name in supervisor.due():
                procs[name] = start_service(name)
                supervisor.started(name)
                say(f"{name} restarted (restart #{supervisor.restarts[name]})")
            time.sleep(0.5)
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        say(f"failed: {exc}")
        return 1
    finally:
        say("stopping services")
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        say("stopped (broker included)")


if __name__ == "__main__":
    sys.exit(main())
