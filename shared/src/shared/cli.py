"""``<service> serve``, ``<service> migrate`` and ``<service> provision-topics``: the same
entry point for every service."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from shared.settings import ServiceSettings, SettingsError, load_settings


class CommandError(Exception):
    """A command that cannot do what was asked: one line on stderr, exit status 2 (no traceback)."""


def run_cli(
    name: str,
    settings_cls: type[ServiceSettings],
    app_factory: Callable[[ServiceSettings], object],
    migrations_dir,
    argv: list[str] | None = None,
    extra_commands: dict[str, tuple[str, Callable, Callable]] | None = None,
) -> None:
    """``extra_commands``: name → (help, add_arguments(parser), run(settings, args)) for
    service-specific subcommands (e.g. the orders service's ``create-operator``); they raise
    :class:`CommandError` for an expected failure."""
    parser = argparse.ArgumentParser(prog=name, description=f"After-sales platform: {name} service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP service, its consumers and its outbox relay")
    sub.add_parser("migrate", help="apply this service's database migrations and exit")
    sub.add_parser("provision-topics",
                   help="create every topic of the platform with its partitions, replication and retention "
                        "(idempotent); exit 1 if a topic has fewer partitions or replicas than the settings ask")
    for cmd, (help_text, add_arguments, _run) in (extra_commands or {}).items():
        add_arguments(sub.add_parser(cmd, help=help_text))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(settings_cls)
        if extra_commands and args.command in extra_commands:
            extra_commands[args.command][2](settings, args)
            return
        if args.command == "migrate":
            from shared.migrations import upgrade_sync

            upgrade_sync(migrations_dir, settings.database_url)
            print(f"{name}: migrations applied to {settings.database_url.split('@')[-1]}")
            return
        if args.command == "provision-topics":
            raise SystemExit(provision_topics_command(name, settings))
        import uvicorn

        app = app_factory(settings)
    except (SettingsError, CommandError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from shared.gc_tuning import tune_collector
    from shared.http_server import uvicorn_options

    tune_collector()  # a long-running process: fewer collections, start-up objects frozen once started
    uvicorn.run(app, host=settings.host, port=settings.port, **uvicorn_options())


def provision_topics_command(name: str, settings: ServiceSettings) -> int:
    """Create the platform's topics (shared.topics.ALL_TOPICS) as the settings say; print one
    line per topic; 1 if a topic is provisioned short (fewer partitions or replicas)."""
    import asyncio

    from shared.kafka import kafka_connection, provision_topics, topic_configs
    from shared.topics import ALL_TOPICS

    configs = topic_configs(settings.kafka_min_insync_replicas, settings.kafka_topic_retention_ms)
    try:
        reports = asyncio.run(provision_topics(
            kafka_connection(settings), ALL_TOPICS, default_partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor, configs=configs))
    except SettingsError:
        raise
    except Exception as exc:  # noqa: BLE001 - the broker unreachable, refused, ...: one line
        raise CommandError(f"provision-topics: {settings.kafka_bootstrap}: {exc!r}") from None
    failed = False
    for r in reports:
        what = "created" if r.created else "exists"
        if r.problems:
            failed = True
            print(f"{name}: provision-topics: {r.name}: {'; '.join(r.problems)} (not changed here: see the runbook, 'Topics')",
                  file=sys.stderr)
        else:
            extra = "".join(f", {k}={v}" for k, v in configs.items()) if r.created else ""
            print(f"{name}: provision-topics: {r.name} {what} ({r.partitions} partitions, "
                  f"replication factor {r.replication_factor}{extra})")
    return 1 if failed else 0
