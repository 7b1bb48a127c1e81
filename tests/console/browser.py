"""Chromium for the console's browser tests: Debian's package (with a CJK font, so the
Chinese pages render in screenshots), found on the machine or installed with apt-get where
the tests run as root (CI's machine is a fresh copy of the developers': nothing installed
by hand survives there). `make browser-tools` does the same by hand."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.debian import apt_install

PACKAGES = ("chromium", "fonts-wqy-microhei")
_tried = False


def chromium() -> str:
    """The Chromium executable; skips (fails in CI) with the reason when it cannot be had."""
    global _tried
    path = shutil.which("chromium")
    if path and shutil.which("fc-list") and _has_cjk_font():
        return path
    reason = "chromium (Debian package) not found"
    if not _tried and os.geteuid() == 0 and shutil.which("apt-get"):
        _tried = True
        error = apt_install(*PACKAGES)
        path = shutil.which("chromium")
        if path:
            return path
        reason = f"chromium could not be installed with apt-get: {error}"
    elif path:
        return path  # no CJK font and no way to install one: the pages still work, screenshots show boxes
    elif os.geteuid() != 0:
        reason = "chromium not found and not root: install it with `make browser-tools`"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _has_cjk_font() -> bool:
    out = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=30)
    return bool(out.stdout.strip())
