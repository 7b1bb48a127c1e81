"""promtool (Debian package `prometheus`) for tests/deploy: found on PATH, or installed with
apt-get where the tests run as root on a Debian machine (CI's machine is a fresh copy of
the developers': nothing installed by hand survives there). `make deploy-tools` does the
same by hand."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.debian import apt_install

_tried = False


def promtool() -> str:
    """The promtool path; skips (fails in CI) with the reason when it cannot be had."""
    global _tried
    path = shutil.which("promtool")
    if path:
        return path
    reason = "promtool not found"
    if not _tried and os.geteuid() == 0 and shutil.which("apt-get"):
        _tried = True
        error = apt_install("prometheus", timeout=600)
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
