"""Live queue state pushed by the customer-service system."""
from __future__ import annotations

from consultation_routing.domain.model import QueueState
from consultation_routing.handlers.upsert import upsert
from consultation_routing.models import QueueStateRow


async def report_queue(rt, routing, manufacturer_id: str, agents_online: int, queue_length: int,
                       expected_wait_s: int | None) -> QueueState:
    now = rt.clock.now()
    async with rt.uow() as s:
        await upsert(s, QueueStateRow.__table__, [{
            "manufacturer_id": manufacturer_id, "agents_online": agents_online, "queue_length": queue_length,
            "expected_wait_s": expected_wait_s, "reported_at": now, "updated_at": now,
        }], "manufacturer_id")
    q = QueueState(agents_online, queue_length, expected_wait_s, now)
    routing.state.put_queue(manufacturer_id, q)
    return q
