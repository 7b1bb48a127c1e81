"""The columnar rebuild engine (DuckDB) folds and counts exactly what the Python
fold does (``kpi.projection`` via ``kpi.fastdecode.Folder``), and hands every event
outside the canonical form to the Python engine."""
from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta, timezone

from kpi_month import month_events

from kpi import columnar
from kpi import projection as P
from kpi.fastdecode import Folder
from kpi.synthetic import Generator
from shared.clock import BEIJING
from shared.events import make_envelope

START = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)


def _python(raws):
    f = Folder()
    for raw in raws:
        f.feed(raw)
    facts = {r.order_id: r.as_tuple() + (r.audit_late,) for r in f.rows.values()}
    return f, facts, P.counters_of(f.rows.values())


def _columnar(tmp_path, raws, name="events.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(raws) + b"\n")
    folded = columnar.fold([path], threads=2)
    if folded.odd:
        return folded, None, None
    columnar.count(folded)
    facts = {r[0]: r for r in columnar.rows(folded, "facts", columnar.FACT_COLUMNS)}
    counters = {tuple(r[:4]): [int(v) for v in r[4:]] for r in columnar.rows(folded, "counters",
                                                                             columnar.COUNTER_COLUMNS)}
    return folded, facts, counters


def _orders_only(raws):
    return [r for r in raws if b'"type":"routing.' not in r[:120]]


def test_same_facts_and_counters_as_the_python_fold_on_synthetic_events(tmp_path):
    raws = _orders_only([raw for _t, _k, raw in Generator(300, 2000, START, seed=5).events()])
    f, facts, counters = _python(raws)
    folded, cfacts, ccounters = _columnar(tmp_path, raws)
    assert (folded.odd, folded.fast, folded.orders) == (0, len(raws), 2000)
    assert cfacts == facts
    assert ccounters == counters


def test_any_order_and_duplicates_give_the_same_result(tmp_path):
    raws = _orders_only([raw for _t, _k, raw in Generator(40, 400, START, seed=6).events()])
    _f, facts, counters = _python(raws)
    rnd = random.Random(2)
    mixed = raws + rnd.sample(raws, 300)
    rnd.shuffle(mixed)
    _folded, cfacts, ccounters = _columnar(tmp_path, mixed)
    assert cfacts == facts and ccounters == counters


def test_on_envelopes_made_by_the_producers_code(tmp_path):
    raws = _orders_only([env.to_bytes() for _t, env in month_events(merchants=50, orders_per_merchant=4)])
    _f, facts, counters = _python(raws)
    folded, cfacts, ccounters = _columnar(tmp_path, raws)
    assert folded.odd == 0
    assert cfacts == facts and ccounters == counters
