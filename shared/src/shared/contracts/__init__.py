"""Event contracts between services. Importing this package registers every
event type (the producer validates against it, consumers parse with it)."""
from shared.contracts import accounts, kpi, orders, routing, sla  # noqa: F401
