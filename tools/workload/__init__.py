"""A reusable workload generator: a seeded marketplace (merchants of every fulfilment mode,
staff, catalogues, customers) played through the platform's real APIs, with virtual-clock
jumps that make the deadlines fire. Used by the chaos run (chaos/) and meant for the
Double-11 simulator.

    api = Api(urls); api.add_client(operator_id, operator_secret)
    w = Workload(api, operator_id, Config(seed=7, merchants=8))
    await w.setup(); await w.run(stop_event)
"""
from tools.workload.api import Api, ApiError, Unavailable
from tools.workload.driver import Config, Workload

__all__ = ["Api", "ApiError", "Unavailable", "Config", "Workload"]
