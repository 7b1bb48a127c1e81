"""Stopping background tasks in bounded time (shared.stopping)."""
import asyncio
import logging

from shared.stopping import await_chain, bounded, cancel_and_wait


async def _deep_wait(ev: asyncio.Event) -> None:
    await ev.wait()


async def _stubborn(ev: asyncio.Event) -> None:
    """Swallows its cancellation and goes on waiting: what a buggy client library might do."""
    while True:
        try:
            await _deep_wait(ev)
            return
        except asyncio.CancelledError:
            continue


async def test_the_await_chain_names_every_awaiting_function_down_to_the_awaited_future():
    ev = asyncio.Event()

    async def outer():
        await _deep_wait(ev)

    task = asyncio.create_task(outer(), name="outer")
    await asyncio.sleep(0)
    chain = await_chain(task)
    assert chain[0].endswith("in outer") and chain[1].endswith("in _deep_wait")
    assert chain[2].endswith("in wait")  # asyncio.Event.wait
    assert chain[-1].startswith("-> <") and len(chain) == 4
    ev.set()
    await task


async def test_cooperative_tasks_stop_and_nothing_is_reported(caplog):
    tasks = [asyncio.create_task(asyncio.sleep(3600), name=f"t{i}") for i in range(3)]
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="shared.stopping"):
        left = await cancel_and_wait(tasks, what="svc stop", warn_after_s=1, give_up_after_s=2)
    assert left == []
    assert all(t.cancelled() for t in tasks)
    assert caplog.records == []


async def test_a_task_ignoring_cancellation_is_reported_with_where_it_waits_and_left_behind(caplog):
    ev = asyncio.Event()
    ok = asyncio.create_task(asyncio.sleep(3600), name="ok")
    stuck = asyncio.create_task(_stubborn(ev), name="stuck")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="shared.stopping"):
        left = await cancel_and_wait([ok, stuck], what="svc stop", warn_after_s=0.05, give_up_after_s=0.1)
    assert left == [stuck] and ok.cancelled() and not stuck.done()
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.WARNING, logging.ERROR]
    assert all("task stuck" in r.getMessage() and "_deep_wait" in r.getMessage() for r in caplog.records)
    ev.set()
    await stuck


async def test_a_task_that_ends_late_is_warned_about_but_not_left_behind(caplog):
    async def slow_cleanup():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.1)
            raise

    task = asyncio.create_task(slow_cleanup(), name="slow")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="shared.stopping"):
        left = await cancel_and_wait([task], what="svc stop", warn_after_s=0.02, give_up_after_s=5)
    assert left == [] and task.cancelled()
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


async def test_bounded_returns_on_time_even_if_the_operation_ignores_its_cancellation():
    ev = asyncio.Event()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await bounded(_stubborn(ev), what="client stop", timeout_s=0.05) is False
    assert loop.time() - t0 < 3  # 0.05 s, then at most a second for the cancellation
    ev.set()
    await asyncio.sleep(0.01)  # let the abandoned operation end before the loop closes


async def test_bounded_reports_completion_and_swallows_failure():
    async def fine():
        return 1

    async def broken():
        raise ConnectionResetError

    assert await bounded(fine(), what="x", timeout_s=1) is True
    assert await bounded(broken(), what="x", timeout_s=1) is False


async def test_a_service_stop_is_bounded_and_names_the_task_that_held_it(tmp_path, monkeypatch, caplog):
    from pathlib import Path

    from sqlalchemy import MetaData

    from shared import runtime as runtime_mod
    from shared.messaging_tables import MessagingTables
    from shared.runtime import Runtime, ServiceDefinition
    from shared.settings import ServiceSettings

    monkeypatch.setattr(runtime_mod, "STOP_WARN_S", 0.05)
    monkeypatch.setattr(runtime_mod, "STOP_GIVE_UP_S", 0.2)
    md = MetaData()
    definition = ServiceDefinition(name="demo", title="demo", metadata=md, tables=MessagingTables(md),
                                   migrations_dir=Path(tmp_path))
    rt = Runtime(definition, ServiceSettings(environment="test", log_json=False,
                                             database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db"))
    ev = asyncio.Event()
    rt.spawn(_stubborn(ev), "stubborn-loop")
    rt.spawn(asyncio.sleep(3600), "polite-loop")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with caplog.at_level(logging.WARNING, logger="shared.stopping"):
        await rt.stop()
    assert loop.time() - t0 < 3
    held = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(held) == 1 and "demo:stubborn-loop" in held[0] and "_deep_wait" in held[0]
    ev.set()
    await asyncio.sleep(0.01)
