"""promtool (Debian package `prometheus`) for tests/deploy: found on PATH, or installed with
apt-get where the tests run as root on a Debian machine (CI's machine is a fresh copy of
the developers': nothing installed by hand survives there). `make deploy-tools` does the
same by hand."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_tried = False


def _install() -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    return proc.stderr[-1000:] if proc.returncode else ""


def promtool() -> str:
    """The promtool path; skips (fails in CI) with the reason when it cannot be had."""
    global _tried
    path = shutil.which("promtool")
    if path:
        return path
    reason = "promtool not found"
    if not _tried and os.geteuid() == 0 and shutil.which("apt-get"):
        _tried = True
        error = _install()
        path = shutil.which("promtool")
        if path:
            return path
        reason = f"promtool could not be installed with apt-get (package prometheus): {error}"
    elif os.geteuid() != 0:
        reason = "promtool not found and not root: install it with `make deploy-tools` (apt-get install prometheus)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120)
