"""Per-runtime parts of this service (policy cache, firing loop), created on
first use: the shared Runtime builds consumers before any hook of ours runs."""
from __future__ import annotations

from shared.runtime import Runtime
from sla_timer.handlers.firing import FiringLoop
from sla_timer.handlers.policies import Policies
from sla_timer.adapters.metrics import timer_metrics


def attach(rt: Runtime) -> Runtime:
    if not hasattr(rt, "sla_policies"):
        rt.sla_policies = Policies()  # type: ignore[attr-defined]
        rt.sla_firing = FiringLoop(rt, rt.settings.fire_batch_size, rt.settings.fire_poll_interval_s,
                                    rt.settings.fire_min_gap_s)  # type: ignore
        rt.sla_wake = rt.sla_firing.wake  # type: ignore[attr-defined]
        rt.relay.batch_size = rt.settings.outbox_batch_size  # type: ignore[attr-defined]
        timer_metrics(rt)
    return rt
