"""The collector of a long-running process (shared.gc_tuning), checked in fresh interpreters:
the test process itself keeps the defaults."""
import subprocess
import sys

PROBE = """
import gc
from shared import gc_tuning
before = gc.get_threshold()
print(gc_tuning.freeze_startup_objects(), gc.get_freeze_count() == 0)  # not a serving process: nothing
gc_tuning.tune_collector()
print(before != gc.get_threshold(), gc.get_threshold()[0])
kept = [[i] for i in range(1000)]
print(gc_tuning.freeze_startup_objects(), gc.get_freeze_count() >= 1000)
"""


def test_a_serving_process_collects_less_often_and_freezes_its_start_up():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True", "10000", "True", "True"], out


def test_a_test_process_keeps_the_collector_defaults():
    import gc

    from shared import gc_tuning

    assert not gc_tuning._serving
    assert gc.get_threshold()[0] == 700
