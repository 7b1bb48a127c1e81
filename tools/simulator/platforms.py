"""The platform a simulation drives: started for it (embedded: SQLite files and the embedded
broker, as `make run`; or PostgreSQL: the `make run-prod-like` topology), or one already
running (its URLs, broker and an operator's credentials).

Every variant offers ``urls`` (service -> base URL), ``bootstrap`` (the broker),
``operator`` ({"client_id", "client_secret"}), ``pids()`` (service process ids, for CPU
figures) and ``stop()``."""
from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
from run_platform import SERVICES as ALL_SERVICES, service_env  # noqa: E402  (`make run`'s table and environment)

from shared.broker import EMBEDDED_PARTITIONS, EmbeddedBroker  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.topics import ALL_TOPICS  # noqa: E402

BIN = Path(sys.executable).parent
# Bearer tokens live a simulated day (default 15 minutes): the clock jumps hours at a time,
# and with the default every client would fetch a new token at nearly every step.
TOKEN_ENV = {"ORDERS_TOKEN_TTL_S": "86400"}
FIVE = ("orders", "consultation-routing", "sla-timer", "kpi", "notifier")
SERVICES = [s for s in ALL_SERVICES if s[0] in FIVE]  # the platform's services (not its clients)


def free_base_port(span: int = 20) -> int:
    """A base port with ``span`` free ports after it (below the ephemeral range)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - span)
        try:
            for p in range(base, base + span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


class EmbeddedPlatform:
    """The five services on SQLite files in ``data_dir`` and the embedded broker, on free
    ports, virtual clock: what `make run` starts (deploy/run_platform.py's environment),
    with a platform operator created by `orders create-operator` once orders is ready, and
    no demo data."""

    def __init__(self, data_dir: Path, *, log=print, ready_timeout: float = 90.0) -> None:
        self.data_dir = Path(data_dir)
        self.log_dir = self.data_dir / "log"
        self.say = log
        self.ready_timeout = ready_timeout
        self.base_port = free_base_port(10)
        self.broker = EmbeddedBroker(self.base_port + 9, log_path=None)
        self.procs: dict[str, subprocess.Popen] = {}
        self.operator: dict[str, str] = {}

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{self.base_port + offset}" for name, _p, offset in SERVICES}

    def _env(self, prefix: str, offset: int) -> dict[str, str]:
        env = service_env(prefix, self.base_port + offset, self.bootstrap, str(self.data_dir), "virtual")
        # this platform's own files and ports, whatever the caller's environment says
        env.update({f"{prefix}PORT": str(self.base_port + offset), f"{prefix}KAFKA_BOOTSTRAP": self.bootstrap,
                    f"{prefix}DATA_DIR": str(self.data_dir), f"{prefix}CLOCK": "virtual",
                    f"{prefix}DATABASE_URL": "",
                    f"{prefix}TOKEN_URL": f"{self.urls['orders']}/v1/oauth/token",
                    f"{prefix}CLOCK_STATE_FILE": str(self.data_dir / f"clock-{prefix.rstrip('_').lower()}.json")})
        env.update(TOKEN_ENV)
        return env

    def start(self) -> "EmbeddedPlatform":
        if self.data_dir.exists():  # this platform's own directory: a run starts from nothing
            shutil.rmtree(self.data_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.broker.log_path = str(self.log_dir / "broker.log")
        self.broker.start()
        asyncio.run(ensure_topics(self.bootstrap, ALL_TOPICS, default_partitions=EMBEDDED_PARTITIONS))
        # each service applies its migrations as it starts (the development default): five
        # processes fewer importing the whole stack, most of a small run's start-up
        for name, prefix, offset in SERVICES:
            with open(self.log_dir / f"{name}.log", "ab") as fh:
                self.procs[name] = subprocess.Popen([str(BIN / name), "serve"], env=self._env(prefix, offset),
                                                    stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        out = subprocess.run([str(BIN / "orders"), "create-operator", "--client-id", f"sim-op-{secrets.token_hex(3)}",
                              "--name", "simulator operator"], env=self._env("ORDERS_", 0), check=True,
                             capture_output=True, text=True).stdout
        self.operator = json.loads(out.strip().splitlines()[-1])
        self.say(f"embedded platform ready (SQLite in {self.data_dir}, broker {self.bootstrap})")
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = dict(self.urls)
        with httpx.Client(timeout=2) as client:
            while pending:
                for name, url in list(pending.items()):
                    if self.procs[name].poll() is not None:
                        raise RuntimeError(f"{name} exited with code {self.procs[name].returncode}; "
                                           f"see {self.log_dir / (name + '.log')}")
                    try:
                        if client.get(f"{url}/ready").status_code == 200:
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise RuntimeError(f"not ready after {self.ready_timeout:.0f}s: {', '.join(pending)}")
                time.sleep(0.3)

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.broker.stop()


class PostgresPlatform:
    """The `make run-prod-like` topology (deploy/run_prod_like.py) on free ports with
    databases of its own (``<db_prefix>_<service>``, dropped at ``stop``); ``replicas``
    as there (default: orders and sla-timer twice behind one address)."""

    def __init__(self, data_dir: Path, *, db_prefix: str, replicas: dict[str, int] | None = None, log=print,
                 pg: str | None = None, keep: bool = False) -> None:
        from run_prod_like import DEFAULT_REPLICAS, PlatformConfig, ProdLikePlatform

        base = free_base_port(20)
        config = PlatformConfig(base_port=base, kafka_port=base + 19, data_dir=Path(data_dir), db_prefix=db_prefix,
                                seed_demo=False, extra_env=dict(TOKEN_ENV),
                                replicas=dict(DEFAULT_REPLICAS if replicas is None else replicas))
        if pg:
            config.pg = pg
        self.keep = keep
        self.platform = ProdLikePlatform(config, log=lambda m: log(f"platform: {m}"))

    def start(self) -> "PostgresPlatform":
        self.platform.start()
        return self

    @property
    def bootstrap(self) -> str:
        return self.platform.bootstrap

    @property
    def urls(self) -> dict[str, str]:
        return self.platform.urls

    @property
    def operator(self) -> dict[str, str]:
        return self.platform.operator

    def pids(self) -> dict[str, int]:
        return {name: inst.proc.pid for name, inst in self.platform.instances.items()
                if inst.proc is not None and inst.proc.poll() is None}

    def stop(self) -> None:
        self.platform.stop()
        if not self.keep:
            self.platform.drop_databases()


class AttachedPlatform:
    """A platform already running: its orders URL (the others at the next four ports, as
    `make run` and `make run-prod-like` lay them out, unless given), its broker and the
    credentials of a platform operator (a JSON file with client_id and client_secret, e.g.
    var/prod-like/operator-credentials.json, or `orders create-operator`'s output)."""

    def __init__(self, orders_url: str, bootstrap: str, operator_file: Path,
                 urls: dict[str, str] | None = None) -> None:
        if urls is None:
            host, port = orders_url.rstrip("/").rsplit(":", 1)
            urls = {name: f"{host}:{int(port) + offset}" for name, _p, offset in SERVICES}
        self.urls = urls
        self.bootstrap = bootstrap
        self.operator = json.loads(Path(operator_file).read_text())

    def start(self) -> "AttachedPlatform":
        return self

    def pids(self) -> dict[str, int]:
        return {}

    def stop(self) -> None:
        pass
