"""Event contracts between services (``msgspec.Struct`` payloads, docs/events.md).
Importing this package registers every event type: producers validate against them
(``shared.events.make_envelope``), consumers decode with them (``shared.events.decode``)."""
from shared.contracts import accounts, kpi, orders, routing, sla  # noqa: F401
