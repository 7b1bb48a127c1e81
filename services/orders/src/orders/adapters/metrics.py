"""The orders service's domain metrics (names and meanings: docs/operations.md, "Metrics").

- ``orders_service_orders{state, mode}``: service orders by state and fulfilment mode, counted
  in the database every METRICS_REFRESH_S (every state and mode listed, zeros included);
- ``orders_transitions_total{from_state, to_state, action}``: transitions committed by this
  replica (an application counts as ``from_state=""`` → ``pending_claim``, action ``apply``).
"""
from __future__ import annotations

from prometheus_client import Counter
from sqlalchemy import func, select

from orders.domain.modes import MODES
from orders.domain.states import STATES
from orders.models import ServiceOrder
from shared.metrics import after_commit


class OrdersMetrics:
    def __init__(self, rt) -> None:
        self.transitions = Counter("orders_transitions_total", "Service-order transitions committed, by source "
                                   "state, target state and action", ["from_state", "to_state", "action"],
                                   registry=rt.metrics)
        self._children: dict[tuple[str, str, str], object] = {}  # labels() validates and locks per call
        rt.sampled.gauge("orders_service_orders", "Service orders by state and fulfilment mode",
                         ["state", "mode"], lambda: _by_state_and_mode(rt))

    def transition(self, from_state: str, to_state: str, action: str) -> None:
        """Count one committed transition (call it after the commit)."""
        key = (from_state, to_state, action)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.transitions.labels(*key)
        child.inc()

    def transition_at_commit(self, session, from_state: str, to_state: str, action: str) -> None:
        """Count it once ``session``'s transaction commits (not if it rolls back)."""
        after_commit(session, lambda: self.transition(from_state, to_state, action))


def orders_metrics(rt) -> OrdersMetrics:
    """The runtime's OrdersMetrics (made by the app factory; made here for a runtime built
    some other way, e.g. a test's)."""
    m = getattr(rt, "orders_metrics", None)
    if m is None:
        m = rt.orders_metrics = OrdersMetrics(rt)
    return m


async def _by_state_and_mode(rt) -> list[tuple[tuple[str, str], int]]:
    counts = {(state, mode): 0 for state in STATES for mode in MODES}
    async with rt.sessions() as s:
        rows = (await s.execute(select(ServiceOrder.state, ServiceOrder.mode, func.count())
                                .group_by(ServiceOrder.state, ServiceOrder.mode))).all()
    for state, mode, n in rows:
        counts[(state, mode)] = n
    return list(counts.items())
