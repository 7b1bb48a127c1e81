"""Operator commands of the orders service (``orders <command>``):

- ``create-operator --client-id ID``: create a platform operator and print its credentials (once).
- ``seed-demo``: idempotently seed demo merchants, staff, SKUs, a storefront client and orders
  (refused with ``ENVIRONMENT=production``: demo clients have secrets derived from the token secret).
- ``purge [--archive-dir DIR] [--retention-days N]``: archive and delete records past retention.
"""
from __future__ import annotations

import asyncio
import json
import os

from orders.app import MIGRATIONS, create_app
from shared.cli import CommandError
from shared.errors import ApiError
from shared.migrations import upgrade


async def _with_runtime(settings, fn):
    app = create_app(settings)
    rt = app.state.runtime
    await upgrade(MIGRATIONS, settings.database_url)
    try:
        return await fn(rt)
    finally:
        await rt.order_store.close()
        await rt.engine.dispose()


def _create_operator_args(p) -> None:
    p.add_argument("--client-id", default="operator", help="letters, digits, '.', '_' and '-', at most 64")
    p.add_argument("--name", default="First platform operator")
    p.add_argument("--role", default="platform_operator", choices=["platform_operator", "arbitrator", "storefront"])


def _create_operator(settings, args) -> None:
    from sqlalchemy.exc import IntegrityError

    from orders.handlers.accounts import CLIENT_ID, create_client

    if not CLIENT_ID.fullmatch(args.client_id):
        raise CommandError(f"create-operator: --client-id {args.client_id!r}: use letters, digits, '.', '_' and '-' "
                           "(at most 64)")

    async def run(rt):
        return await create_client(rt, client_id=args.client_id, role=args.role, name=args.name)

    try:
        creds = asyncio.run(_with_runtime(settings, run))
    except ApiError as exc:  # e.g. client_exists: the secret was shown once, at the first run
        raise CommandError(f"create-operator: {exc.message} (client ids are unique; pick another --client-id)") \
            from None
    except IntegrityError:  # the same id created at the same moment by another run
        raise CommandError(f"create-operator: client {args.client_id} already exists "
                           "(client ids are unique; pick another --client-id)") from None
    print(json.dumps(creds))


def _seed_args(p) -> None:
    p.add_argument("--out", default="", help="write the demo credentials JSON here (default <data_dir>/demo-credentials.json)")


def _seed(settings, args) -> None:
    from orders.entrypoints.demo import seed_demo

    if settings.environment == "production":
        # Demo clients (an operator among them) get secrets anyone with this code can derive
        # from the token secret, and demo merchants and orders would mix with real ones.
        raise CommandError("seed-demo: refused with ORDERS_ENVIRONMENT=production: it creates demo merchants, "
                           "orders and clients (an operator too) for demonstrations only")
    creds = asyncio.run(_with_runtime(settings, seed_demo))
    out = args.out or os.path.join(settings.data_dir, "demo-credentials.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(creds, fh, indent=2)
    print(json.dumps({"seeded": True, "credentials_file": out}))


def _purge_args(p) -> None:
    p.add_argument("--archive-dir", default="")
    p.add_argument("--retention-days", type=int, default=0)


def _purge(settings, args) -> None:
    from orders.handlers.retention import archive_and_purge

    archive = args.archive_dir or os.path.join(settings.data_dir, "orders-archive")

    async def run(rt):
        return await archive_and_purge(rt, archive, max(args.retention_days, 730) if args.retention_days else None)

    print(json.dumps(asyncio.run(_with_runtime(settings, run))))


COMMANDS = {
    "create-operator": ("create a platform operator (or arbitrator/storefront) client and print its credentials",
                        _create_operator_args, _create_operator),
    "seed-demo": ("seed demo merchants, staff, SKUs and orders (idempotent)", _seed_args, _seed),
    "purge": ("archive and delete finished orders older than the retention period", _purge_args, _purge),
}
