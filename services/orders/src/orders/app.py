"""The orders service: service-order state and its lifecycle."""
from __future__ import annotations

from pathlib import Path

import shared.contracts  # noqa: F401 - registers event types
import asyncio

from orders.adapters.metrics import orders_metrics
from orders.adapters.account_versions import OrdersAccountGuard, start_account_guard
from orders.adapters.attempt_limits import AttemptLimits
from orders.adapters.blobstore import blob_store
from orders.adapters.direct import DirectStore
from orders.adapters.relay_pacing import PacedWake
from orders.adapters.secret_hashing import SecretHasher
from orders.adapters.session_store import SessionStore
from orders.adapters.store import OrderStore
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


async def _start(rt) -> None:
    await start_account_guard(rt)
    rt.spawn(_close_on_stop(rt.order_store), "order-store")


async def _close_on_stop(store: OrderStore) -> None:
    """Owned by the runtime (``Runtime.spawn``): cancelled when the service stops, it closes the
    store's connections then."""
    try:
        await asyncio.Event().wait()
    finally:
        await store.close()


DEFINITION = ServiceDefinition(
    name="orders",
    title="After-sales platform: orders",
    metadata=Base.metadata,
    tables=messaging,
    migrations_dir=MIGRATIONS,
    # the order actions first: FastAPI matches a request against the routes in order (twice per
    # included router), so the most frequent requests should find their route early (no two
    # routes of the service overlap: tests/test_route_order.py)
    routers=[storefront_router, merchant_router, platform_orders_router, staff_router, platform_router, auth_router],
    consumers=[ConsumerSpec("deadlines", [SLA_EVENTS], lambda rt: {**deadline_handlers(rt), **armed_handlers(rt)}),
               ConsumerSpec("qualification", [KPI_EVENTS], qualification_handlers)],
    on_start=_start,
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
    rt.order_store = order_store(rt, settings)
    orders_metrics(rt)  # on /metrics from the start (docs/operations.md, "Metrics")
    return app


def order_store(rt, settings: OrdersSettings) -> OrderStore:
    """The configured adapter of the order store (``ORDERS_ORDER_STORE``; adapters/store.py)."""
    # After a commit with events the relay is woken at most once per window (adapters/relay_pacing.py).
    window = settings.outbox_wake_window_s
    wake = PacedWake(rt.relay.wake, window) if window > 0 else rt.relay.wake
    if settings.order_store == "direct" or (settings.order_store == "auto" and not settings.is_sqlite):
        return DirectStore(rt.engine.url, rt.outbox, after_commit=wake)
    return SessionStore(rt.sessions, rt.outbox, after_commit=wake)
