"""`make chaos`: the production-like platform under a workload while replicas and the broker
are killed, then invariants checked across services (see chaos/run.py)."""
