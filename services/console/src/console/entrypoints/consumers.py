"""The console's consumer: order, deadline and routing events into its read model, a
fetched batch in one transaction (``shared.consumer``: inbox, parking, offsets)."""
from __future__ import annotations

from console.adapters.readmodel import apply_events
from console.domain.readmodel import HANDLED
from shared.consumer import batched


async def _one(session, env, data) -> None:
    await apply_events(session, [(env, data)])


def handlers(_rt) -> dict:
    handler = batched(_one, apply_events)
    return {event_type: handler for event_type in HANDLED}
