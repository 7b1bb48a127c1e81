"""``shared.db.lock_names``: a transaction holding a name's lock keeps a second one touching
the same name waiting until it ends (commit or rollback), on both databases; other names
do not wait."""
from __future__ import annotations

import asyncio

from sqlalchemy import text

from shared.db import create_engine, lock_names, session_factory

WAIT_S = 0.3


async def _second(sessions, names, entered: list) -> None:
    async with sessions() as s, s.begin():
        await lock_names(s, "test", names)
        entered.append(names)
        await s.execute(text("SELECT 1"))


async def test_a_named_lock_is_held_until_the_transaction_ends(database_url):
    engine = create_engine(await database_url("locks"))
    sessions = session_factory(engine)
    try:
        for outcome in ("commit", "rollback"):
            entered: list = []
            s = sessions()
            await s.begin()
            await lock_names(s, "test", ["b", "a"])
            same = asyncio.create_task(_second(sessions, ["a", "c"], entered))
            other = asyncio.create_task(_second(sessions, ["z"], entered))
            await asyncio.wait({same, other}, timeout=WAIT_S)
            assert entered == [["z"]]  # a name nobody holds does not wait
            await (s.commit() if outcome == "commit" else s.rollback())
            await s.close()
            await asyncio.wait_for(same, 10)
            assert entered == [["z"], ["a", "c"]]
            await other
    finally:
        await engine.dispose()
