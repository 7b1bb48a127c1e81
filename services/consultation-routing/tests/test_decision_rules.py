"""Every branch of the routing decision (docs/routing.md, "The decision"), on in-memory state with explicit times."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest

from consultation_routing.domain.model import DEFAULT_HOURS, Consultation, Manufacturer, QueueState, Sku
from consultation_routing.parts import routing_engine
from consultation_routing.settings import ConsultationRoutingSettings
from consultation_routing.adapters.state import RoutingState
from shared.calendar import BusinessCalendar
from shared.clock import BEIJING


def bj(y, mo, d, h, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BEIJING)


WORKDAY = (2026, 3, 3)  # Tuesday
SATURDAY = (2026, 3, 7)
NATIONAL_DAY = (2026, 10, 1)  # Thursday, a public holiday
ADJUSTED_SATURDAY = (2026, 2, 28)  # Saturday worked in exchange for Spring Festival (调休)

MAKER = Manufacturer(id="m-1", name="Maker", categories=frozenset({"phones"}), hours=dict(DEFAULT_HOURS),
                     im_queue_id="q-m-1", phone_extension="8001", max_queue_length=10, max_expected_wait_s=300)


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def world():
    mono = Mono()
    state = RoutingState(sessions=None, monotonic=mono)
    state.loaded_mono = mono.t
    state.put_manufacturer(MAKER)
    state.put_skus([Sku("sku-1", "m-1", "phones"), Sku("sku-tv", "m-1", "appliances"), Sku("sku-x", "m-none", "phones")])
    settings = ConsultationRoutingSettings(environment="test", database_url="sqlite+aiosqlite:///:memory:")
    engine = routing_engine(state, settings, BusinessCalendar())

    def route(at: datetime, channel: str = "im", sku: str | None = "sku-1", entry: str = "product_page",
              queue: QueueState | None | str = "fresh") -> dict:
        if queue == "fresh":
            queue = QueueState(agents_online=3, queue_length=0, expected_wait_s=10, reported_at=at - timedelta(seconds=5))
        if queue is None:
            state.queues.pop("m-1", None)
        else:
            state.put_queue("m-1", queue)
        return engine.route(Consultation(channel=channel, entry_point=entry, phase="pre_sale", at=at, sku=sku))

    world = type("W", (), {})()
    world.state, world.engine, world.route, world.mono, world.settings = state, engine, route, mono, settings
    return world


def test_enrolled_im_in_hours_goes_to_the_manufacturers_queue(world):
    a = world.route(bj(*WORKDAY, 10))
    assert (a["target"], a["reason"], a["queue_id"]) == ("manufacturer", "enrolled", "q-m-1")
    assert a["hotline"] is None and a["extension"] is None
    assert a["fallback"] == {"target": "platform", "queue_id": "platform", "hotline": None}
    assert a["manufacturer_id"] == "m-1" and len(a["decision_id"]) == 36


def test_enrolled_phone_answers_hotline_extension_and_hover_text_on_product_page(world):
    a = world.route(bj(*WORKDAY, 10), channel="phone")
    assert (a["target"], a["hotline"], a["extension"], a["queue_id"]) == ("manufacturer", "400-606-5500", "8001", None)
    assert "400-606-5500 转 8001" in a["hover_text"] and "解答手机商品" in a["hover_text"]
    other = world.route(bj(*WORKDAY, 10), channel="phone", entry="order_list")
    assert other["hover_text"] is None and other["extension"] == "8001"


def test_custom_hover_text_wins(world):
    world.state.put_manufacturer(replace(MAKER, hover_text="仅限手机"))
    assert world.route(bj(*WORKDAY, 10), channel="phone")["hover_text"] == "仅限手机"


def test_platform_answers_carry_platform_contacts(world):
    a = world.route(bj(*WORKDAY, 22), channel="phone")
    assert (a["target"], a["reason"], a["hotline"], a["extension"]) == ("platform", "out_of_hours", "400-606-5500", None)
    assert a["hover_text"].startswith("400-606-5500：平台客服")
    a = world.route(bj(*WORKDAY, 22))
    assert (a["queue_id"], a["hover_text"]) == ("platform", None)


def test_unknown_sku_and_missing_sku(world):
    assert world.route(bj(*WORKDAY, 10), sku="nope")["reason"] == "unknown_sku"
    a = world.route(bj(*WORKDAY, 10), sku=None)
    assert (a["target"], a["reason"], a["manufacturer_id"]) == ("platform", "unknown_sku", None)


def test_not_enrolled_manufacturer_or_category(world):
    assert world.route(bj(*WORKDAY, 10), sku="sku-x")["reason"] == "not_enrolled"
    a = world.route(bj(*WORKDAY, 10), sku="sku-tv")
    assert (a["reason"], a["manufacturer_id"], a["category"]) == ("not_enrolled", "m-1", "appliances")


def test_disqualified_goes_to_platform_even_in_hours(world):
    world.state.put_manufacturer(replace(MAKER, disqualified=True))
    assert world.route(bj(*WORKDAY, 10))["reason"] == "disqualified"


@pytest.mark.parametrize(("channel", "hm", "reason"), [
    ("phone", (8, 59), "out_of_hours"), ("phone", (9, 0), "enrolled"), ("phone", (17, 59), "enrolled"),
    ("phone", (18, 0), "out_of_hours"), ("im", (8, 59), "out_of_hours"), ("im", (9, 0), "enrolled"),
    ("im", (17, 59), "enrolled"), ("im", (18, 0), "enrolled"), ("im", (20, 59), "enrolled"),
    ("im", (21, 0), "out_of_hours"),
])
def test_service_hour_boundaries(world, channel, hm, reason):
    assert world.route(bj(*WORKDAY, *hm), channel=channel)["reason"] == reason


def test_boundaries_are_beijing_time_whatever_the_callers_offset(world):
    from datetime import timezone

    at = datetime(2026, 3, 3, 0, 59, tzinfo=timezone.utc)  # 08:59 Beijing
    assert world.route(at)["reason"] == "out_of_hours"
    assert world.route(at + timedelta(minutes=1))["reason"] == "enrolled"


def test_holiday_is_closed(world):
    assert world.route(bj(*NATIONAL_DAY, 10))["reason"] == "out_of_hours"
    assert world.route(bj(*NATIONAL_DAY, 10), channel="phone")["reason"] == "out_of_hours"


def test_weekend_is_closed_by_default(world):
    assert world.route(bj(*SATURDAY, 10))["reason"] == "out_of_hours"


def test_adjusted_working_day_is_open(world):
    assert world.route(bj(*ADJUSTED_SATURDAY, 10))["reason"] == "enrolled"
    assert world.route(bj(*ADJUSTED_SATURDAY, 18), channel="phone")["reason"] == "out_of_hours"


def test_serve_non_working_days_opens_weekends_and_holidays_within_hours(world):
    world.state.put_manufacturer(replace(MAKER, serve_non_working_days=True))
    assert world.route(bj(*SATURDAY, 10))["reason"] == "enrolled"
    assert world.route(bj(*NATIONAL_DAY, 10))["reason"] == "enrolled"
    assert world.route(bj(*NATIONAL_DAY, 21))["reason"] == "out_of_hours"


def test_custom_hours(world):
    world.state.put_manufacturer(replace(MAKER, hours={"phone": (time(8), time(20)), "im": (time(10), time(22))}))
    assert world.route(bj(*WORKDAY, 8), channel="phone")["reason"] == "enrolled"
    assert world.route(bj(*WORKDAY, 9, 30))["reason"] == "out_of_hours"
    assert world.route(bj(*WORKDAY, 21, 30))["reason"] == "enrolled"


def test_no_agents_when_none_online_or_no_report(world):
    at = bj(*WORKDAY, 10)
    assert world.route(at, queue=QueueState(0, 0, None, at))["reason"] == "no_agents"
    assert world.route(at, queue=None)["reason"] == "no_agents"
    world.state.put_manufacturer(replace(MAKER, min_agents=5))
    assert world.route(at, queue=QueueState(4, 0, None, at))["reason"] == "no_agents"
    assert world.route(at, queue=QueueState(5, 0, None, at))["reason"] == "enrolled"


def test_stale_queue_report_counts_as_no_agents(world):
    at = bj(*WORKDAY, 10)
    ttl = world.settings.queue_state_ttl_s
    assert world.route(at, queue=QueueState(3, 0, None, at - timedelta(seconds=ttl)))["reason"] == "enrolled"
    assert world.route(at, queue=QueueState(3, 0, None, at - timedelta(seconds=ttl + 1)))["reason"] == "no_agents"


def test_overflow_by_queue_length_or_expected_wait(world):
    at = bj(*WORKDAY, 10)
    assert world.route(at, queue=QueueState(3, 9, None, at))["reason"] == "enrolled"
    assert world.route(at, queue=QueueState(3, 10, None, at))["reason"] == "overflow"
    assert world.route(at, queue=QueueState(3, 0, 299, at))["reason"] == "enrolled"
    assert world.route(at, queue=QueueState(3, 0, 300, at))["reason"] == "overflow"


def test_no_limits_means_no_overflow(world):
    world.state.put_manufacturer(replace(MAKER, max_queue_length=None, max_expected_wait_s=None))
    at = bj(*WORKDAY, 10)
    assert world.route(at, queue=QueueState(3, 10_000, 10_000, at))["reason"] == "enrolled"


def test_reasons_are_checked_in_order(world):
    # disqualified and out of hours and no agents: disqualified is reported
    world.state.put_manufacturer(replace(MAKER, disqualified=True))
    assert world.route(bj(*NATIONAL_DAY, 23), queue=None)["reason"] == "disqualified"


def test_old_state_degrades_to_platform(world):
    at = bj(*WORKDAY, 10)
    world.mono.t += world.settings.max_state_age_s
    assert world.route(at)["reason"] == "enrolled"
    world.mono.t += 1
    a = world.route(at, channel="phone")
    assert (a["target"], a["reason"], a["hotline"], a["extension"]) == ("platform", "degraded", "400-606-5500", None)


def test_never_loaded_state_degrades(world):
    world.state.loaded_mono = None
    assert world.route(bj(*WORKDAY, 10))["reason"] == "degraded"


def test_a_failure_inside_the_decision_degrades_instead_of_raising(world):
    class Boom:
        def is_working_day(self, day):
            raise RuntimeError("calendar broke")

    world.engine.calendar = Boom()
    a = world.route(bj(2030, 1, 2, 10))
    assert (a["target"], a["reason"]) == ("platform", "degraded")
