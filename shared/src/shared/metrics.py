"""Prometheus helpers every service uses (names and meanings: docs/operations.md, "Metrics").

- :func:`family`: one metric family per registry, whichever object asks first (a service's
  consumers share ``consumer_messages_processed_total`` and tell themselves apart by the
  ``group`` label: dimensions are labels, never parts of a name).
- :func:`after_commit`: a count that lands only when its transaction commits (a batch rolled
  back and replayed one by one is not counted twice).
- :class:`SampledGauges`: gauges recomputed from the database every ``METRICS_REFRESH_S``
  seconds by the runtime (orders by state, pending timers, dead letters, outbox backlog); a
  scrape serves the last values and never queries the database.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

_FAMILIES: "weakref.WeakKeyDictionary[CollectorRegistry, dict[str, object]]" = weakref.WeakKeyDictionary()


def family(registry: CollectorRegistry | None, kind: type, name: str, documentation: str,
           labelnames: Sequence[str] = (), **kwargs):
    """The metric ``name`` of ``registry`` (a Counter, Gauge or Histogram class as ``kind``),
    created on its first use with these label names; later calls get the same object.
    Without a registry (a consumer built outside a service, in a test) a fresh unregistered one."""
    if registry is None:
        return kind(name, documentation, labelnames, registry=None, **kwargs)
    families = _FAMILIES.setdefault(registry, {})
    metric = families.get(name)
    if metric is None:
        metric = families[name] = kind(name, documentation, labelnames, registry=registry, **kwargs)
    elif not isinstance(metric, kind):
        raise ValueError(f"metric {name} is already a {type(metric).__name__}, not a {kind.__name__}")
    return metric


# ------------------------------------------------------------------ counts at commit time

_AFTER_COMMIT = "shared.metrics.after_commit"


def _run_pending(session) -> None:
    actions = session.info.get(_AFTER_COMMIT) or []
    session.info[_AFTER_COMMIT] = []
    for action in actions:
        try:
            action()
        except Exception:  # noqa: BLE001 - a metric must never fail a committed transaction
            log.exception("after-commit metric update failed")


def _drop_pending(session) -> None:
    session.info[_AFTER_COMMIT] = []


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` (a metric update) once the session's transaction has committed; it is
    dropped if the transaction rolls back. Uses SQLAlchemy's session events on this one session."""
    sync = session.sync_session
    pending = sync.info.get(_AFTER_COMMIT)
    if pending is None:
        pending = sync.info[_AFTER_COMMIT] = []
        event.listen(sync, "after_commit", _run_pending)
        event.listen(sync, "after_rollback", _drop_pending)
    pending.append(action)


# ------------------------------------------------------------------ gauges from the database

Samples = Iterable[tuple[Sequence[str], float]]
Sampler = Callable[[], Awaitable[Samples]]


@dataclass
class _Sampled:
    documentation: str
    labelnames: tuple[str, ...]
    sample: Sampler
    values: list[tuple[tuple[str, ...], float]] = field(default_factory=list)


class SampledGauges:
    """A collector of gauges whose values :meth:`refresh` computes (the runtime calls it every
    ``METRICS_REFRESH_S``). Each family is on /metrics from the start (without samples until
    the first refresh); a sampler that fails keeps its last values and is tried again next time."""

    def __init__(self) -> None:
        self._gauges: dict[str, _Sampled] = {}
        self._warned: set[str] = set()

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str], sample: Sampler) -> None:
        if name in self._gauges:
            raise ValueError(f"sampled gauge {name} is already declared")
        self._gauges[name] = _Sampled(documentation, tuple(labelnames), sample)

    async def refresh(self) -> None:
        for name, g in list(self._gauges.items()):
            try:
                g.values = [(tuple(str(v) for v in labels), float(value)) for labels, value in await g.sample()]
                self._warned.discard(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database away: keep the last values
                if name not in self._warned:  # once until it works again, not every round
                    self._warned.add(name)
                    log.warning("metric %s could not be sampled: %r", name, exc)

    def collect(self):
        for name, g in list(self._gauges.items()):
            fam = GaugeMetricFamily(name, g.documentation, labels=list(g.labelnames))
            for labels, value in g.values:
                fam.add_metric(list(labels), value)
            yield fam

    def describe(self):
        return []  # names are checked by the runtime (one declaration each), not by the registry


__all__ = ["SampledGauges", "after_commit", "family"]
