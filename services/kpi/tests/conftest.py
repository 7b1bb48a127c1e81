"""Make the KPI test helpers (kpi_gen, kpi_feed) importable under --import-mode=importlib,
and the fixtures of the tests that run the service on a real broker."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
async def kpi(start_service, database_url):
    from kpi.app import create_app
    from kpi.settings import KpiSettings

    return await start_service(create_app, KpiSettings, database_url=await database_url("kpi"))


@pytest.fixture
async def feed(broker):
    from aiokafka import AIOKafkaProducer
    from kpi_feed import Feed

    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    await p.start()
    yield Feed(p)
    await p.stop()
