"""The consultation use case (docs/routing.md): decide from memory and, for a
consultation (not an operator's what-if), hand the decision to the publisher. A
billable decision is answered only once it is durable (journaled and fsynced, see
adapters/publisher.py); the others are journaled within ``JOURNAL_INTERVAL_S``."""
from __future__ import annotations

import time

from consultation_routing.parts import Routing
from consultation_routing.domain.model import Consultation


async def route_consultation(routing: Routing, c: Consultation, *, what_if: bool) -> dict:
    """The answer to ``c``; a what-if is answered only — no event, so no billable
    consultation and no score input."""
    started = time.perf_counter()
    engine = routing.engine
    c = engine.resolve(c)
    answer = engine.route(c)
    answer["what_if"] = what_if
    routing.metrics.decided(answer, time.perf_counter() - started, consultation=not what_if)
    if not what_if:
        durable = routing.publisher.offer(c, answer)
        if durable is not None:
            await durable
    return answer
