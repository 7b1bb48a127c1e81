"""The attack suite shares one platform (five service processes and the broker), started
once per session; its figures (matrix size, schemathesis counts) close the test run."""
from __future__ import annotations

import logging

import pytest

from tests.security.platform import REPORT, PlatformRunner

# thousands of requests: their INFO lines would bury a failure's report
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    runner = PlatformRunner(tmp_path_factory.mktemp("security-platform"))
    try:
        yield runner.start()
    finally:
        runner.stop()


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("security suite")
        for key, line in REPORT.items():
            terminalreporter.write_line(f"{key}: {line}")
