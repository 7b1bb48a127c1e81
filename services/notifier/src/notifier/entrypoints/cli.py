"""The ``notifier`` command: the shared service commands (serve, migrate, ...)."""
from __future__ import annotations

from notifier.app import MIGRATIONS, create_app
from notifier.settings import NotifierSettings
from shared.cli import run_cli


def main() -> None:
    run_cli("notifier", NotifierSettings, create_app, MIGRATIONS)
