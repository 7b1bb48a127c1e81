"""`make run-prod-like`: the production topology on one machine, without containers.

- PostgreSQL (127.0.0.1:5432, trust auth, user postgres): one database per service,
  `<prefix>_<service>` (created when missing; the prefix keeps runs apart);
- the embedded broker, topics created with their partitions before anything starts;
- `<service> migrate` for each service first (as a release step), then `serve` with
  migrations on start switched off, as in production;
- two replicas of orders and of sla-timer, each pair behind ONE address: a small TCP
  balancer in this process (round robin over the replicas that accept a connection; a
  replica that refuses one is skipped for a second), the others on their own port;
- the virtual clock (so the demo and the chaos run can move time), a random token secret
  for this run, one platform operator created with `orders create-operator`;
- supervision as in `make run` (deploy/run_platform.py's Supervisor): a crashed replica or
  broker is restarted with backoff, and the run says so.

It is also a library: `ProdLikePlatform` starts the same topology for the chaos run
(chaos/), which kills and restarts any replica or the broker through it.

Environment (all optional): PLATFORM_BASE_PORT (8201: the five public ports +0..+4, the
replicas +10..), PLATFORM_KAFKA_PORT (19192), PLATFORM_DATA_DIR (var/prod-like),
PLATFORM_DB_PREFIX (aftersales_prodlike), PLATFORM_PG (postgres@127.0.0.1:5432; user@/directory for
PostgreSQL's Unix socket in that directory, e.g. postgres@/var/run/postgresql),
PLATFORM_READY_TIMEOUT (90), PLATFORM_SEED_DEMO (1: seed the demo merchants and clients).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run_platform beside this file
from run_platform import SERVICES, Supervisor  # noqa: E402  (reused: service table, restart backoff)

from shared.broker import EMBEDDED_PARTITIONS, EmbeddedBroker  # noqa: E402
from shared.db import postgres_url  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.topics import ALL_TOPICS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PREFIXES = {name: prefix for name, prefix, _ in SERVICES}
OFFSETS = {name: offset for name, _, offset in SERVICES}
DEFAULT_REPLICAS = {"orders": 2, "sla-timer": 2}
BROKER = "broker"


def say(msg: str) -> None:
    print(f"[prod-like] {msg}", flush=True)


# ------------------------------------------------------------------------------ balancer
class TcpBalancer:
    """One address in front of a service's replicas (what a Kubernetes Service or a load
    balancer does in production). Each client connection is piped, unparsed, to the next
    replica in round-robin order that accepts the connection; a replica that refuses is
    skipped for ``DOWN_S`` (it is dead or restarting: uvicorn binds its port only once the
    app has started). When a replica dies, the connections piped to it are closed, as a
    real balancer would; clients retry on a new connection."""

    DOWN_S = 1.0
    CONNECT_TIMEOUT_S = 1.0

    def __init__(self, port: int, backends: list[int], host: str = "127.0.0.1") -> None:
        self.host, self.port, self.backends = host, port, list(backends)
        self._rr = itertools.cycle(range(len(self.backends)))
        self._down_until: dict[int, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.connections = 0

    def start(self) -> "TcpBalancer":
        self._thread = threading.Thread(target=self._run, name=f"balancer-{self.port}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise RuntimeError(f"balancer on {self.port}: {self._error!r}")
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._client, self.host, self.port, reuse_address=True, backlog=512))
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            loop.call_soon(loop.stop)

        asyncio.run_coroutine_threadsafe(close(), loop)
        if self._thread is not None:
            self._thread.join(10)

    async def _open_backend(self):
        now = time.monotonic()
        for _ in range(len(self.backends)):
            port = self.backends[next(self._rr)]
            if self._down_until.get(port, 0) > now:
                continue
            try:
                return await asyncio.wait_for(asyncio.open_connection(self.host, port), self.CONNECT_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError):
                self._down_until[port] = now + self.DOWN_S
        # every replica refused lately: try them all once more before giving up
        for port in self.backends:
            try:
                return await asyncio.wait_for(asyncio.open_connection(self.host, port), self.CONNECT_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError):
                self._down_until[port] = time.monotonic() + self.DOWN_S
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        backend = await self._open_backend()
        if backend is None:
            writer.close()
            return
        b_reader, b_writer = backend

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, b_writer), pipe(b_reader, writer))
        except asyncio.CancelledError:
            writer.close()
            b_writer.close()
            raise


# ------------------------------------------------------------------------------ processes
@dataclass
class Instance:
    """One process the platform runs: a service replica (``orders-1``) or the broker."""

    name: str
    service: str  # the command, or "broker"
    port: int
    proc: subprocess.Popen | None = None
    held: bool = False  # stopped on purpose: supervision leaves it down until started again
    restarts: int = 0
    log: Path | None = None


@dataclass
class PlatformConfig:
    base_port: int = 8201
    kafka_port: int = 19192
    data_dir: Path = field(default_factory=lambda: ROOT / "var" / "prod-like")
    db_prefix: str = "aftersales_prodlike"
    pg: str = "postgres@127.0.0.1:5432"  # user@host:port, or user@/socket-directory; trust auth
    replicas: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REPLICAS))
    clock: str = "virtual"
    ready_timeout: float = 90.0
    seed_demo: bool = False
    session_timeout_ms: int = 6000  # Apache Kafka's default minimum: a dead replica's partitions move within 6 s
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. {"ORDERS_TOKEN_TTL_S": "900"}

    @classmethod
    def from_env(cls) -> "PlatformConfig":
        e = os.environ
        return cls(base_port=int(e.get("PLATFORM_BASE_PORT", "8201")),
                   kafka_port=int(e.get("PLATFORM_KAFKA_PORT", "19192")),
                   data_dir=Path(e.get("PLATFORM_DATA_DIR", str(ROOT / "var" / "prod-like"))),
                   db_prefix=e.get("PLATFORM_DB_PREFIX", "aftersales_prodlike"),
                   pg=e.get("PLATFORM_PG", "postgres@127.0.0.1:5432"),
                   ready_timeout=float(e.get("PLATFORM_READY_TIMEOUT", "90")),
                   seed_demo=e.get("PLATFORM_SEED_DEMO", "1") not in ("0", "false", "no"))


class ProdLikePlatform:
    """Start, supervise, kill and restart the production-like topology (see the module doc).

    ``start()`` returns once every replica answers /ready; ``urls`` are the five public
    addresses; ``kill(name)`` SIGKILLs a replica (``orders-2``, ``kpi``…) or the broker and
    holds it down until ``restart(name)``; anything else that dies is restarted by the
    supervisor with backoff. ``stop()`` stops everything; ``drop_databases()`` removes them."""

    def __init__(self, config: PlatformConfig | None = None, *, log=say) -> None:
        self.config = c = config or PlatformConfig()
        self.say = log
        self.data_dir = Path(c.data_dir)
        self.log_dir = self.data_dir / "log"
        self.token_secret = secrets.token_urlsafe(48)  # per run: nobody mints tokens from the source code
        self.operator: dict[str, str] = {}
        self.instances: dict[str, Instance] = {}
        self.balancers: list[TcpBalancer] = []
        self.broker = EmbeddedBroker(c.kafka_port)
        self.supervisor = Supervisor(now=time.monotonic)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.events: list[tuple[float, str]] = []  # (monotonic time, what the supervisor did)
        port = c.base_port + 10
        for name, _prefix, _offset in SERVICES:
            n = c.replicas.get(name, 1)
            for k in range(1, n + 1):
                iname = f"{name}-{k}" if n > 1 else name
                self.instances[iname] = Instance(iname, name, port if n > 1 else c.base_port + OFFSETS[name],
                                                 log=self.log_dir / f"{iname}.log")
                if n > 1:
                    port += 1
        self.instances[BROKER] = Instance(BROKER, BROKER, c.kafka_port, log=self.log_dir / "broker.log")

    # ---------------------------------------------------------------- addresses
    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{self.config.base_port + OFFSETS[name]}" for name, _p, _o in SERVICES}

    def replicas_of(self, service: str) -> list[Instance]:
        return [i for i in self.instances.values() if i.service == service]

    def database(self, service: str) -> str:
        return f"{self.config.db_prefix}_{service.replace('-', '_')}"

    def database_url(self, service: str) -> str:
        return postgres_url(self.config.pg, self.database(service))

    def env(self, inst: Instance) -> dict[str, str]:
        c, prefix = self.config, PREFIXES[inst.service]
        env = dict(os.environ)
        env.update({
            f"{prefix}ENVIRONMENT": "development",  # production refuses the virtual clock
            f"{prefix}PORT": str(inst.port),
            f"{prefix}DATABASE_URL": self.database_url(inst.service),
            f"{prefix}KAFKA_BOOTSTRAP": self.bootstrap,
            f"{prefix}KAFKA_SESSION_TIMEOUT_MS": str(c.session_timeout_ms),
            f"{prefix}CLOCK": c.clock,
            # each replica keeps its own offset across its restarts (and the broker's)
            f"{prefix}CLOCK_STATE_FILE": str(self.data_dir / f"clock-{inst.name}.json"),
            f"{prefix}DATA_DIR": str(self.data_dir),
            f"{prefix}TOKEN_SECRET": self.token_secret,
            f"{prefix}TOKEN_URL": f"{self.urls['orders']}/v1/oauth/token",
            f"{prefix}RUN_MIGRATIONS_ON_START": "false",  # `<service> migrate` ran first
            f"{prefix}LOG_JSON": "true",
        })
        env.update(c.extra_env)
        return env

    # ---------------------------------------------------------------- start
    def start(self) -> "ProdLikePlatform":
        c = self.config
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.say(f"PostgreSQL databases {c.db_prefix}_* on {c.pg.split('@')[-1]}")
        asyncio.run(self._create_databases())
        self._start_broker()
        self.say(f"broker on {self.bootstrap}; topics: " + ", ".join(t.name for t in ALL_TOPICS))
        self._migrate()
        self._create_operator()
        if c.seed_demo:
            env = self.env(self.replicas_of("orders")[0])
            subprocess.run([str(BIN / "orders"), "seed-demo", "--out", str(self.data_dir / "demo-credentials.json")],
                           env=env, check=True, stdout=subprocess.DEVNULL)
            self.say(f"demo data seeded; client credentials in {self.data_dir / 'demo-credentials.json'}")
        for service, n in c.replicas.items():
            if n > 1:
                ports = [i.port for i in self.replicas_of(service)]
                self.balancers.append(TcpBalancer(c.base_port + OFFSETS[service], ports).start())
        for inst in self.instances.values():
            if inst.service != BROKER:
                self._spawn(inst)
        self.wait_ready(c.ready_timeout)
        self._monitor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._monitor.start()
        return self

    async def _create_databases(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(postgres_url(self.config.pg, "postgres", "postgresql"))
        try:
            existing = {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
            for name, _p, _o in SERVICES:
                if self.database(name) not in existing:
                    await conn.execute(f'CREATE DATABASE "{self.database(name)}"')
        finally:
            await conn.close()

    def drop_databases(self) -> None:
        import asyncpg

        async def drop() -> None:
            conn = await asyncpg.connect(postgres_url(self.config.pg, "postgres", "postgresql"))
            try:
                for name, _p, _o in SERVICES:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{self.database(name)}" WITH (FORCE)')
            finally:
                await conn.close()

        asyncio.run(drop())

    def _migrate(self) -> None:
        """Every service's `migrate` at once (a release step, before any replica serves)."""
        procs = {}
        for name, _p, _o in SERVICES:
            inst = self.replicas_of(name)[0]
            procs[name] = subprocess.Popen([str(BIN / name), "migrate"], env=self.env(inst),
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, p in procs.items():
            out, _ = p.communicate(timeout=300)
            if p.returncode != 0:
                raise RuntimeError(f"{name} migrate failed:\n{out[-2000:]}")
        self.say("migrations applied: " + ", ".join(procs))

    def _create_operator(self) -> None:
        client_id = f"operator-{secrets.token_hex(4)}"
        out = subprocess.run([str(BIN / "orders"), "create-operator", "--client-id", client_id,
                              "--name", "prod-like operator"], env=self.env(self.replicas_of("orders")[0]),
                             check=True, capture_output=True, text=True).stdout
        self.operator = json.loads(out.strip().splitlines()[-1])
        path = self.data_dir / "operator-credentials.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.operator, f)
        self.say(f"platform operator {client_id}; credentials in {path}")

    def _start_broker(self, create_topics: bool = True) -> None:
        inst = self.instances[BROKER]
        self.broker = EmbeddedBroker(self.config.kafka_port, log_path=str(inst.log))
        self.broker.start()
        inst.proc = self.broker.process
        if not create_topics:
            return
        # Topics with their partitions before any service (a service creates only what it
        # produces; a topic auto-created by a consumer gets the broker's default count).
        for attempt in range(20):
            try:
                asyncio.run(ensure_topics(self.bootstrap, ALL_TOPICS, default_partitions=EMBEDDED_PARTITIONS))
                return
            except Exception:  # noqa: BLE001 - the broker may need a moment after a restart
                if attempt == 19:
                    raise
                time.sleep(0.25)

    def _spawn(self, inst: Instance) -> None:
        out = open(inst.log, "ab")
        try:
            inst.proc = subprocess.Popen([str(BIN / inst.service), "serve"], env=self.env(inst),
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        self.supervisor.started(inst.name)

    def wait_ready(self, timeout: float, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = {n: i for n, i in self.instances.items() if i.service != BROKER and (names is None or n in names)}
        with httpx.Client(timeout=2) as client:
            while pending:
                for name, inst in list(pending.items()):
                    if inst.proc is not None and inst.proc.poll() is not None and not self._monitor:
                        raise RuntimeError(f"{name} exited with code {inst.proc.returncode}; see {inst.log}")
                    try:
                        if client.get(f"http://127.0.0.1:{inst.port}/ready").status_code == 200:
                            self.say(f"{name} ready")
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise RuntimeError(f"not ready after {timeout:.0f}s: {', '.join(pending)}")
                time.sleep(0.3)

    # ---------------------------------------------------------------- chaos controls
    def kill(self, name: str) -> None:
        """SIGKILL one replica or the broker; it stays down until ``restart(name)``."""
        with self._lock:
            inst = self.instances[name]
            inst.held = True
            if inst.proc is not None and inst.proc.poll() is None:
                os.killpg(inst.proc.pid, signal.SIGKILL) if inst.service != BROKER else inst.proc.kill()
                inst.proc.wait()

    def restart(self, name: str) -> None:
        """Start a killed replica again. The broker comes back EMPTY (it keeps nothing) and
        nobody re-creates its topics: the services do, as they must with `make run`."""
        with self._lock:
            inst = self.instances[name]
            if inst.proc is None or inst.proc.poll() is not None:
                if inst.service == BROKER:
                    self._start_broker(create_topics=False)
                    self.supervisor.started(name)
                else:
                    self._spawn(inst)
                inst.restarts += 1
            inst.held = False

    def running(self, name: str) -> bool:
        inst = self.instances[name]
        return inst.proc is not None and inst.proc.poll() is None

    def _supervise(self) -> None:
        """Restart what died without being killed on purpose (backoff as in `make run`)."""
        while not self._stop.wait(0.5):
            with self._lock:
                for name, inst in self.instances.items():
                    if inst.held or inst.proc is None or inst.proc.poll() is None:
                        continue
                    if self.supervisor.crashed(name, inst.proc.returncode):
                        msg = (f"{name} exited with code {inst.proc.returncode}; restarting it in "
                               f"{self.supervisor.delay(name):.0f} s")
                        self.events.append((time.monotonic(), msg))
                        self.say(msg)
                for name in self.supervisor.due():
                    inst = self.instances[name]
                    if inst.held:
                        continue
                    try:
                        self._start_broker(create_topics=False) if inst.service == BROKER else self._spawn(inst)
                        self.supervisor.started(name)
                        inst.restarts += 1
                        self.say(f"{name} restarted (restart #{self.supervisor.restarts[name]})")
                    except Exception as exc:  # noqa: BLE001 - tried again at the next backoff
                        self.supervisor.crashed(name, repr(exc))
                        self.say(f"{name} restart failed: {exc!r}")

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(5)
        procs = [i.proc for i in self.instances.values() if i.service != BROKER and i.proc is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=25)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for b in self.balancers:
            b.stop()
        self.broker.stop()


def main() -> int:
    config = PlatformConfig.from_env()
    platform = ProdLikePlatform(config)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        platform.start()
        say("all five services are ready:")
        for name, url in platform.urls.items():
            reps = platform.replicas_of(name)
            extra = f"   ({len(reps)} replicas: " + ", ".join(f":{r.port}" for r in reps) + ")" if len(reps) > 1 else ""
            print(f"  {name:<22} {url}   (docs: {url}/docs){extra}", flush=True)
        say(f"PostgreSQL: {', '.join(platform.database(n) for n, _p, _o in SERVICES)}; broker {platform.bootstrap}")
        say(f"operator token: curl -s -X POST {platform.urls['orders']}/v1/oauth/token -d grant_type=client_credentials "
            f"-d client_id=... -d client_secret=... (see {config.data_dir / 'operator-credentials.json'})")
        say("clock: virtual; press Ctrl-C to stop everything")
        while not stopping.wait(0.5):
            pass
        return 0
    except (RuntimeError, subprocess.CalledProcessError, OSError) as exc:
        say(f"failed: {exc}")
        return 1
    finally:
        say("stopping services")
        platform.stop()
        say("stopped (broker included)")


if __name__ == "__main__":
    sys.exit(main())
