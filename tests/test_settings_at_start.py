"""Bad settings fail at start with a message naming the setting."""
import subprocess

import pytest

from tests.procs import BIN


def run(command, env_extra):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "KPI_"))}
    env.update(env_extra)
    return subprocess.run([str(BIN / command), "serve"], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "command, env, names",
    [
        ("orders", {"ORDERS_PORT": "not-a-port"}, ["ORDERS_PORT"]),
        ("kpi", {"KPI_CLOCK": "sundial"}, ["KPI_CLOCK"]),
        ("orders", {"ORDERS_DATABASE_URL": "mysql://x/y"}, ["DATABASE_URL"]),
        (
            "orders",
            {"ORDERS_ENVIRONMENT": "production"},
            ["ORDERS_DATABASE_URL", "ORDERS_TOKEN_SECRET"],
        ),
        (
            "kpi",
            {"KPI_ENVIRONMENT": "production", "KPI_DATABASE_URL": "postgresql+asyncpg://u@h/db",
             "KPI_TOKEN_SECRET": "x" * 40, "KPI_CLOCK": "virtual"},
            ["KPI_CLOCK"],
        ),
    ],
)
def test_bad_settings_fail_at_start_naming_the_setting(command, env, names):
    result = run(command, env)
    assert result.returncode == 2, result.stderr[-1000:]
    for name in names:
        assert name in result.stderr, result.stderr
