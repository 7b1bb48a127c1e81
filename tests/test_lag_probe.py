"""The benchmark's lag probe (tools/simulator/tap.py) on the embedded broker: one admin
OffsetFetch per group reads what each group committed on every partition the tap has seen;
a group behind has a lag and a backlog, a group that never committed counts as at the start,
and a group that committed everything is at 0."""
import asyncio
import sys
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.simulator.tap import EventTap, LagProbe  # noqa: E402

TOPIC = "probe.events"


async def test_the_probe_reads_each_groups_committed_offsets(broker):
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for i in range(40):
            await producer.send_and_wait(TOPIC, b'{"data": {}}', key=f"k{i}".encode())
    finally:
        await producer.stop()
    # "done" commits everything, "half" commits half of each partition, "idle" nothing
    reader = AIOKafkaConsumer(TOPIC, bootstrap_servers=broker.bootstrap, group_id="done", enable_auto_commit=False,
                              auto_offset_reset="earliest")
    await reader.start()
    try:
        ends: dict[TopicPartition, int] = {}
        while sum(ends.values()) < 40:
            for tp, records in (await reader.getmany(timeout_ms=1000)).items():
                ends[tp] = records[-1].offset + 1
        await reader.commit(ends)
    finally:
        await reader.stop()
    half = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="half", enable_auto_commit=False)
    await half.start()
    try:
        half.assign(list(ends))
        await half.commit({tp: end // 2 for tp, end in ends.items()})
    finally:
        await half.stop()

    tap = EventTap(broker.bootstrap, (TOPIC,))
    stop = asyncio.Event()
    tap_task = asyncio.create_task(tap.run(stop))
    for _ in range(100):
        if sum(tap.end(TOPIC, tp.partition) for tp in ends) == 40:
            break
        await asyncio.sleep(0.1)
    probe = LagProbe(broker.bootstrap, tap, groups={"done": (TOPIC,), "half": (TOPIC,), "idle": (TOPIC,)},
                     every_s=0.1)
    probe_task = asyncio.create_task(probe.run(stop))
    try:
        for _ in range(100):
            if all(probe.samples[g] for g in probe.groups):
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(tap_task, probe_task)
    assert probe.errors == 0
    assert probe.backlog == {"done": 0, "half": sum(end - end // 2 for end in ends.values()), "idle": 40}
    assert probe.samples["done"][-1][1] == 0.0
    assert probe.samples["half"][-1][1] > 0 and probe.samples["idle"][-1][1] > 0
    tp = next(iter(ends))
    assert probe.committed_at("done", TOPIC, tp.partition, ends[tp] - 1) is not None
    assert probe.committed_at("half", TOPIC, tp.partition, ends[tp] - 1) is None
