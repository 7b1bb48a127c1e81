"""The garbage collector of a serving process (``<service> serve``).

CPython's cyclic collector runs a young collection every 700 allocations of tracked
objects (dicts, lists, tuples, ORM rows, envelopes...) and a full one every 100 young
ones; a full collection walks every live object. A service's heap is mostly what its
start-up made and keeps for good (modules, table metadata, compiled statements, models,
settings), and a consumer batch or a request allocates thousands of short-lived objects,
so with the defaults the collector walked that long-lived heap again and again: measured
under the platform benchmark, 15-35 % of a service's CPU time went to collections
(docs/simulator.md). Two changes, made once per serving process:

- a young collection every ``YOUNG_THRESHOLD`` allocations (the older generations keep
  their ratios), so far fewer collections for the same garbage;
- ``gc.freeze()`` once the service has started: what exists then moves to the permanent
  generation, which collections skip (freed as usual when no longer referenced; only a
  reference cycle among them would never be collected, and start-up objects are not
  garbage). A ``gc.collect()`` first, so no garbage of the start-up is frozen.

Only a long-running process turns it on (``shared.cli``'s serve command, the benchmark's
load driver): a test process that builds many apps keeps the defaults, and nothing of a
short-lived app is frozen."""
from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
_serving = False


def tune_collector() -> None:
    """Fewer young collections in this process; ``freeze_startup_objects`` (``Runtime.start``
    calls it) freezes from now on."""
    global _serving
    _serving = True
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)


def freeze_startup_objects() -> bool:
    """Freeze what exists now (a serving process, after start-up). True when done."""
    if not _serving:
        return False
    gc.collect()
    gc.freeze()
    return True
