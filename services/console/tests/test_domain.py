"""The console's pure rules: who sees what, the words in both languages, the figures."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from console.domain import access
from console.domain.figures import backlog_trend, last_hours, share
from console.domain.i18n import STATES, TEXT, Words
from shared.contracts.vocabulary import OrderState

TEMPLATES = Path(__file__).resolve().parents[1] / "src" / "console" / "templates"
SOURCES = Path(__file__).resolve().parents[1] / "src" / "console"


def test_only_operators_and_arbitrators_sign_in_and_arbitrators_see_two_pages():
    assert access.may_sign_in("platform_operator") and access.may_sign_in("arbitrator")
    for role in ("merchant_main", "merchant_staff", "storefront"):
        assert not access.may_sign_in(role) and access.pages_for(role) == []
    assert access.pages_for("platform_operator") == list(access.PAGES)
    assert access.pages_for("arbitrator") == ["overview", "arbitration"]
    assert not access.may_see("arbitrator", "platform")  # the services' /metrics are for operators
    assert access.DECIDERS == {"arbitrator"}


def test_every_word_the_pages_use_exists_in_both_languages():
    for key, (zh, en) in TEXT.items():
        assert zh and en, key
        assert set(re.findall(r"{(\w+)}", zh)) == set(re.findall(r"{(\w+)}", en)), key
    used = set()
    for path in list(TEMPLATES.glob("*.html")) + list(SOURCES.rglob("*.py")):
        used |= set(re.findall(r"""w\(\s*['"]([a-z_]+\.[a-z_0-9.]+)['"]""", path.read_text()))
    assert used and not sorted(used - set(TEXT)), sorted(used - set(TEXT))
    assert set(STATES) == {s.value for s in OrderState}
    # the keys the templates build: nav.<page>, role.<role>, outcome.<outcome>
    assert {f"nav.{p}" for p in access.PAGES} | {f"role.{r}" for r in access.CONSOLE_ROLES} <= set(TEXT)
    assert {f"outcome.{o}" for o in ("refund", "exchange", "return_original", "reject")} <= set(TEXT)


def test_numbers_carry_their_unit_and_times_are_beijing():
    zh, en = Words("zh"), Words("en")
    assert zh.count(12345, "orders") == "12,345 单" and en.count(1, "orders") == "1 order"
    assert en.count(2, "messages") == "2 messages"
    assert zh.money("1999.5") == "¥1,999.50" and en.money("1999.5") == "CNY 1,999.50"
    assert zh.duration(2 * 86400 + 3 * 3600 + 59) == "2 天 3 小时" and en.duration(59) == "59 s"
    assert en.duration(3600 + 120) == "1 h 2 min"
    t = datetime(2026, 11, 10, 16, 5, tzinfo=timezone.utc)
    assert zh.time(t) == "2026-11-11 00:05" and en.time(t.isoformat()) == "2026-11-11 00:05"
    assert zh.state("arbitration") == "仲裁中" and en.state("arbitration") == "in arbitration"
    assert en.state("something_new") == "something_new"  # a state added later shows its name
    assert Words("fr").lang == "zh"


def test_backlog_trend_walks_back_from_the_open_orders_now():
    now = datetime(2026, 11, 11, 10, tzinfo=timezone.utc)
    hours = last_hours(now, 4)
    assert hours == [now - timedelta(hours=3), now - timedelta(hours=2), now - timedelta(hours=1), now]
    opened = {hours[1]: 5, hours[3]: 2}
    closed = {hours[2]: 3}
    # open now 10: end of h3 = 10, end of h2 = 10 - 2 = 8, end of h1 = 8 + 3 = 11, end of h0 = 11 - 5 = 6
    assert backlog_trend(10, hours, opened, closed) == [6, 11, 8, 10]
    # events stamped after the last hour shown are taken off first
    assert backlog_trend(11, hours, opened, closed, {now + timedelta(hours=1): (1, 0)}) == [6, 11, 8, 10]


def test_shares_round_to_a_tenth_and_need_a_whole():
    assert share(1, 0) is None and share(1, 3) == 33.3


def test_every_setting_is_in_the_readme():
    from console.settings import ConsoleSettings
    from shared.settings import ServiceSettings

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    own = [f for f in ConsoleSettings.model_fields if f not in ServiceSettings.model_fields or f == "port"]
    missing = [f.upper() for f in own if f != "service_name" and f"`{f.upper()}`" not in readme
               and not re.search(rf"`{f.upper()}`|\b{f.upper()}\b", readme)]
    assert not missing, missing


def test_csv_exports_raw_values_and_never_a_formula():
    from decimal import Decimal

    from console.handlers.views import Cell, Column, Table

    t = Table("x", "x", [Column("a", "A"), Column("b", "B", True), Column("c", "C")])
    t.rows.append([Cell("=HYPERLINK(\"http://x\")"), Cell("¥-1.00", Decimal("-1.00")),
                   Cell("2026-11-11 09:00", datetime(2026, 11, 11, 1, tzinfo=timezone.utc))])
    lines = t.to_csv().splitlines()
    assert lines[0] == "a,b,c"
    assert lines[1] == "\"'=HYPERLINK(\"\"http://x\"\")\",-1.00,2026-11-11T01:00:00+00:00"
