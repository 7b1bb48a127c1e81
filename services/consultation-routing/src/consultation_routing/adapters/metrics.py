"""The routing service's domain metrics (names and meanings: docs/operations.md, "Metrics").

- ``routing_decisions_total{target, reason, channel}``: consultations routed (the storefront's
  calls; an operator's what-if is not a consultation), ``target`` manufacturer or platform,
  ``reason`` the rule that decided (``enrolled`` for the manufacturer's queue);
- ``routing_decision_duration_seconds``: time to decide one call (resolving the consultation's
  SKU and the rules), what-ifs included; ``routing_route_seconds`` the route's own time (the
  request as a whole is in ``http_request_duration_seconds{route="/v1/route"}``).
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram

BUCKETS = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)


class DecisionMetrics:
    def __init__(self, registry) -> None:
        self.decisions = Counter("routing_decisions_total", "Consultations routed, by target, reason and channel",
                                 ["target", "reason", "channel"], registry=registry)
        self.duration = Histogram("routing_decision_duration_seconds", "Time to decide where a call goes",
                                  registry=registry, buckets=BUCKETS)
        self.route = Histogram("routing_route_seconds", "GET /v1/route: time in the route (query, decision, "
                               "the billable's fsync)", registry=registry, buckets=BUCKETS)
        # (target, reason, channel) → child: labels() validates and locks per call, on the hot path
        self._children: dict[tuple[str, str, str], object] = {}

    def decided(self, answer: dict, seconds: float, consultation: bool) -> None:
        self.duration.observe(seconds)
        if consultation:
            key = (answer["target"], answer["reason"], answer["channel"])
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.decisions.labels(*key)
            child.inc()

