"""The ``kpi`` command: the shared service commands (serve, migrate, ...) and ``kpi replay``."""
from __future__ import annotations

import asyncio

from kpi.app import MIGRATIONS, create_app
from kpi.handlers.replay import default_workers, dir_sources, kafka_sources, rebuild
from kpi.settings import KpiSettings
from shared.cli import run_cli


def main() -> None:
    run_cli("kpi", KpiSettings, create_app, MIGRATIONS, extra_commands={
        "replay": ("rebuild the fact tables from the order, SLA and routing topics (offset 0); "
                   "stop the service first, run 'kpi migrate' on a new database", add_arguments, replay),
    })


def add_arguments(parser) -> None:
    parser.add_argument("--from-dir", help="rebuild from topic exports in this directory "
                                           "(<topic>.<partition>.jsonl, one envelope a line) instead of the broker")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"DuckDB threads, or worker processes of the per-event engine "
                             f"(default {default_workers()}: the CPU count, at most 8)")


def replay(settings, args) -> None:
    from shared.migrations import upgrade_sync

    upgrade_sync(MIGRATIONS, settings.database_url)
    if args.from_dir:
        sources = dir_sources(args.from_dir)
    else:
        from shared.kafka import kafka_connection

        sources = asyncio.run(kafka_sources(kafka_connection(settings)))
    result = rebuild(settings.database_url, sources, args.workers)
    print(f"kpi: replayed {result['events']} events ({result['orders']} orders, {result['invalid']} rejected) "
          f"with the {result['engine']} engine ({result['workers']} workers) in {result['seconds']} s "
          f"into {settings.database_url.split('@')[-1]}")
