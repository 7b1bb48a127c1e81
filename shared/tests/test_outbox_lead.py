"""On PostgreSQL one replica's relay publishes at a time: the one holding the service's
session advisory lock on a connection of its own. Between batches it holds no transaction
(nothing holds back the database's cleanup horizon), and a standby takes over when the
leader stands down or its connection dies."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from shared import db
from shared.clock import ManualClock
from shared.messaging_tables import MessagingTables
from shared.outbox import OutboxRelay

NOW = datetime(2026, 11, 11, 4, 0, tzinfo=timezone.utc)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def db_backend(request):
    from shared.testing import pg_available

    if not pg_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    return request.param


def relay(engine, tables) -> OutboxRelay:
    return OutboxRelay(service="svc", sessions=db.session_factory(engine), tables=tables, producer=None,
                       clock=ManualClock(NOW), is_postgres=True)


async def test_one_relay_leads_without_holding_a_transaction_and_a_standby_takes_over(database_url):
    metadata = db.new_metadata()
    tables = MessagingTables(metadata)
    url = await database_url("lead")
    engines = [db.create_engine(url), db.create_engine(url)]  # two replicas
    a, b = relay(engines[0], tables), relay(engines[1], tables)
    try:
        assert await a._lead() is True
        assert await b._lead() is False  # stands by
        assert await a._lead() is True  # still leading, on the same connection
        async with engines[0].connect() as probe:
            pid = (await a._lead_conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
            await a._lead_conn.commit()
            state = (await probe.execute(text("SELECT state, backend_xmin FROM pg_stat_activity WHERE pid = :p"),
                                         {"p": pid})).one()
        assert state.state == "idle" and state.backend_xmin is None  # no transaction between batches
        # a leader that vanished without closing its connection loses the lock after a silent minute
        timeout = (await a._lead_conn.exec_driver_sql("SHOW idle_session_timeout")).scalar()
        await a._lead_conn.commit()
        assert timeout == "1min"
        await a.stand_down()
        assert await b._lead() is True
        assert await a._lead() is False
        # the leader's connection dies (killed by an operator, a network cut): the lock goes with it
        pid = (await b._lead_conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
        await b._lead_conn.commit()
        async with engines[0].connect() as killer:
            # (pg_terminate_backend signals the backend; its locks go when it has exited)
            assert (await killer.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})).scalar()
        assert await a._lead() is True
        assert await b._lead() is False  # notices, and stands by
    finally:
        await a.stand_down()
        await b.stand_down()
        for e in engines:
            await e.dispose()
