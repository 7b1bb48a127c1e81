"""``<service> serve`` and ``<service> migrate``: the same entry point for every service."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from shared.settings import ServiceSettings, SettingsError, load_settings


def run_cli(
    name: str,
    settings_cls: type[ServiceSettings],
    app_factory: Callable[[ServiceSettings], object],
    migrations_dir,
    argv: list[str] | None = None,
    extra_commands: dict[str, tuple[str, Callable, Callable]] | None = None,
) -> None:
    """``extra_commands``: name → (help, add_arguments(parser), run(settings, args)) for
    service-specific subcommands (e.g. the orders service's ``create-operator``)."""
    parser = argparse.ArgumentParser(prog=name, description=f"After-sales platform: {name} service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service, its consumers and its outbox relay")
    sub.add_parser("migrate", help="apply this service's database migrations and exit")
    for cmd, (help_text, add_arguments, _run) in (extra_commands or {}).items():
        add_arguments(sub.add_parser(cmd, help=help_text))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if extra_commands and args.command in extra_commands:
        extra_commands[args.command][2](settings, args)
        return
    if args.command == "migrate":
        from shared.migrations import upgrade_sync

        upgrade_sync(migrations_dir, settings.database_url)
        print(f"{name}: migrations applied to {settings.database_url.split('@')[-1]}")
        return
    import uvicorn

    app = app_factory(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
