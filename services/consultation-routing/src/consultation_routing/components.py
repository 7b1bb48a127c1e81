"""What one running routing service holds besides the shared runtime."""
from __future__ import annotations

from dataclasses import dataclass

from consultation_routing.engine import RoutingEngine
from consultation_routing.publisher import DecisionPublisher
from consultation_routing.state import RoutingState


@dataclass
class Routing:
    state: RoutingState
    engine: RoutingEngine
    publisher: DecisionPublisher


def routing_of(rt) -> Routing:
    return rt.routing
