"""What one running notifier holds besides the shared runtime (``Runtime.parts``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import Counter

from notifier.adapters.metrics import NotifierMetrics
from shared.runtime import Runtime

if TYPE_CHECKING:  # the dispatcher's module reads these parts
    from notifier.entrypoints.dispatcher import Dispatcher


@dataclass
class NotifierParts:
    metrics: NotifierMetrics  # sent / failed / retried messages (adapters/metrics.py)
    # notifier_stale_deadlines_total{stage}: fired deadlines that notified nobody because a later
    # transition had cancelled their rule (``event``: no message recorded; ``dispatch``: a queued
    # SMS cancelled before sending; ``retracted``: messages withdrawn by the transition)
    stale_deadlines: Counter
    dispatcher: "Dispatcher | None" = None  # sends queued SMS, once started
    nonces_pruned_at: datetime | None = None  # the receipts' replay cache, last pruned by this replica


def build(rt: Runtime) -> NotifierParts:
    return NotifierParts(
        metrics=NotifierMetrics(rt.metrics),
        stale_deadlines=Counter("notifier_stale_deadlines_total",
                                "Fired deadlines not notified: cancelled by a later transition", ["stage"],
                                registry=rt.metrics))


def notifier_parts(rt: Runtime) -> NotifierParts:
    parts = rt.parts
    if not isinstance(parts, NotifierParts):
        raise TypeError(f"not a notifier runtime: {rt.name}")
    return parts
