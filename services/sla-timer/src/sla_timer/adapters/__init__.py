"""Adapters at the edge of the sla-timer service (metrics)."""
