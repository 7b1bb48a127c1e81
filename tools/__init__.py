"""Tools that drive a running platform from outside (workload generator)."""
