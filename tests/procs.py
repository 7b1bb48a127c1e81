"""Run a service as a real process (for kill and start-up tests)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.broker import free_port

BIN = Path(sys.executable).parent


class ServiceProcess:
    def __init__(self, command: str, prefix: str, **settings: str) -> None:
        self.command = command
        self.port = int(settings.pop("port", 0)) or free_port()
        self.env = dict(os.environ)
        self.env.update({f"{prefix}{k.upper()}": str(v) for k, v in settings.items()})
        self.env[f"{prefix}PORT"] = str(self.port)
        self.env.setdefault(f"{prefix}ENVIRONMENT", "test")
        self.env.setdefault(f"{prefix}KAFKA_SESSION_TIMEOUT_MS", "2000")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_for: str = "/health", timeout: float = 60) -> "ServiceProcess":
        self.proc = subprocess.Popen([str(BIN / self.command), "serve"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command} exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + wait_for, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.command} not up within {timeout}s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
