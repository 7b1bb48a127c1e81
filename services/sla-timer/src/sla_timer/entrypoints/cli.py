"""The ``sla-timer`` command: serve, migrate, provision-topics (shared.cli)."""
from sla_timer.app import MIGRATIONS, create_app
from sla_timer.settings import SlaTimerSettings
from shared.cli import run_cli


def main() -> None:
    run_cli("sla-timer", SlaTimerSettings, create_app, MIGRATIONS)
