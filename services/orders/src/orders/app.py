"""The orders service: service-order state and its lifecycle."""
from __future__ import annotations

from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
from orders.adapters.account_versions import OrdersAccountGuard, start_account_guard
from orders.adapters.attempt_limits import AttemptLimits
from orders.adapters.blobstore import blob_store
from orders.adapters.secret_hashing import SecretHasher
from orders.adapters.relay_pacing import pace_relay
from orders.api.fast import OrdersApp, OrdersFastPath
from orders.api.auth import router as auth_router
from orders.api.back_office import merchant_router, platform_orders_router, staff_router
from orders.api.platform import router as platform_router
from orders.api.storefront import router as storefront_router
from orders.handlers.armed_deadlines import armed_handlers
from orders.handlers.deadlines import deadline_handlers
from orders.handlers.qualification import qualification_handlers
from orders.models import Base, messaging
from orders.settings import OrdersSettings

from shared.runtime import ConsumerSpec, ServiceDefinition, create_service_app
from shared.settings import load_settings
from shared.topics import KPI_EVENTS, SLA_EVENTS

MIGRATIONS = Path(__file__).parent / "migrations"

DEFINITION = ServiceDefinition(
    name="orders",
    title="After-sales platform: orders",
    metadata=Base.metadata,
    tables=messaging,
    migrations_dir=MIGRATIONS,
    routers=[auth_router, storefront_router, staff_router, merchant_router, platform_router, platform_orders_router],
    consumers=[ConsumerSpec("deadlines", [SLA_EVENTS], lambda rt: {**deadline_handlers(rt), **armed_handlers(rt)}),
               ConsumerSpec("qualification", [KPI_EVENTS], qualification_handlers)],
    on_start=start_account_guard,
)


def create_app(settings: OrdersSettings | None = None):
    settings = settings or load_settings(OrdersSettings)
    app = create_service_app(DEFINITION, settings)
    rt = app.state.runtime
    rt.blobstore = blob_store(settings)  # a local directory, or S3-compatible storage shared by every replica
    # Token endpoint: hashing off the event loop, failed-attempt limits; revocation from the
    # accounts table (adapters/account_versions.py).
    rt.secret_hasher = SecretHasher(settings.token_hash_concurrency)
    rt.token_attempts = AttemptLimits(settings.token_failures_per_client, settings.token_failures_per_address,
                                      settings.token_limit_storage)
    rt.account_guard = OrdersAccountGuard(rt, settings.account_refresh_s)
    pace_relay(app.state.runtime.relay, settings.outbox_wake_window_s)
    _close_direct_pool_on_stop(app.state.runtime)
    # The hot routes ahead of the middleware stack: see api/fast.py.
    app.__class__ = OrdersApp
    app.state.orders_fast_path = OrdersFastPath(app.call_stack, runtime=app.state.runtime)
    return app


def _close_direct_pool_on_stop(rt) -> None:
    stop = rt.stop

    async def stop_and_close() -> None:
        try:
            await stop()
        finally:
            pool = getattr(rt, "direct_pool", None)
            if pool is not None:
                await pool.close()

    rt.stop = stop_and_close
