"""Debian packages the tests need (Chromium, promtool), installed with apt-get where the tests
run as root: CI's machine is a fresh copy of the developers', nothing installed by hand survives."""
from __future__ import annotations

import os
import subprocess


def apt_install(*packages: str, timeout: float = 900) -> str:
    """Install ``packages``; '' on success, else the end of apt-get's error output."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:  # the package lists may be missing or stale
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.stderr[-1000:] if proc.returncode else ""
