"""Every rule of the KPI rule tables (``kpi.domain.rules``) through both engines: the
Python projection and the columnar (DuckDB) rebuild are compiled from the same tables and
must agree, rule by rule, on values drawn from the tables themselves (each limit ± 1 µs,
every literal and set member a rule compares with, missing values, ties)."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from kpi.adapters import columnar as C
from kpi.domain import expressions as E
from kpi.domain import projection as P
from kpi.domain import rules as R
from shared.contracts.vocabulary import Action, OrderState

US = timedelta(microseconds=1)
# Sunday 23:30 Beijing: the Monday-to-Sunday weeks and the days turn over among the times below
T0 = datetime(2026, 11, 22, 15, 30, tzinfo=timezone.utc)


def _limits() -> list[timedelta]:
    exprs = [d.value for d in R.DERIVED] + [e for c in R.COUNTS for e in (c.when, c.dim, c.period)] + [
        x.when if isinstance(x, R.Unit) else x.value for c in R.COUNTS for _i, x in c.columns]
    return sorted({n.limit for e in exprs for n in e.walk() if isinstance(n, (E.Within, E.Exceeds))})


def _literals(field: str, exprs) -> set:
    """Every value a rule compares ``field`` with."""
    out: set = set()
    for e in exprs:
        for n in e.walk():
            if isinstance(n, E.Cmp) and n.left == E.Field(field) and isinstance(n.right, E.Lit):
                out.add(n.right.value)
            if isinstance(n, E.In) and n.x == E.Field(field):
                out |= set(n.values)
    return out


def _instants() -> list[datetime]:
    """Times at and around every limit of the tables from T0, and a few others: pairs of
    them fall exactly on a limit, 1 µs inside and outside, or tie."""
    offsets = {timedelta(0), US, timedelta(minutes=45), timedelta(hours=30), timedelta(days=8)}
    for lim in _limits():
        offsets |= {lim - US, lim, lim + US}
    return sorted(T0 + o for o in offsets)


def _fact_rows(n: int, seed: int) -> list[P.OrderFact]:
    rnd = random.Random(seed)
    exprs = [d.value for d in R.DERIVED] + [e for c in R.COUNTS for e in (c.when, c.dim, c.period)] + [
        x.when if isinstance(x, R.Unit) else x.value for c in R.COUNTS for _i, x in c.columns]
    times = _instants()
    text = {f: sorted(_literals(f, exprs) | {"other"}) for f in ("service_type", "mode", "closed_role", "refund_by")}
    small = sorted({v for f in ("stars", "recommend") for v in _literals(f, exprs)} | {0, 3, 5, 7, 8, 9, 10})

    def maybe(values, p_none=0.35):
        return None if rnd.random() < p_none else rnd.choice(values)

    rows = []
    for i in range(n):
        created = rnd.choice(times[:4])
        v = {f: maybe(times) for f in (R.MILESTONES[m][0] for m in R.MILESTONES)}
        rows.append(P.OrderFact(
            f"o{i}", snap_version=1, merchant_id=None if rnd.random() < 0.03 else rnd.choice(("m1", "m2")),
            category=rnd.choice(("phones", "tv")), sku=rnd.choice(("s1", "s2")),
            service_type=rnd.choice(text["service_type"][:-1]), problem_type=rnd.choice(("quality", "other")),
            amount_cents=1050, created_at=created, on_behalf=rnd.choice((True, False)),
            mode=rnd.choice(text["mode"]), audit_action="audit.approve_return", process_action="process.refund",
            stars=maybe(small), recommend=None, closed_role=maybe(text["closed_role"], 0.1),
            refund_cents=maybe((0, 1200)), refund_by=maybe(text["refund_by"], 0.1),
            advance_cents=maybe((0, 1900)), penalty_cents=maybe((0, 200000, -5), 0.1), **v))
        if rows[-1].recommend_at is not None:  # recorded together (one milestone)
            rows[-1].recommend = rnd.choice(small)
    return rows


_TYPES = {"on_behalf": "BOOLEAN", "audit_late": "BOOLEAN"}


def _sql_type(col: str) -> str:
    if col in _TYPES:
        return _TYPES[col]
    if col.endswith("_at"):
        return "TIMESTAMPTZ"
    if col.endswith("_cents") or col in ("snap_version", "stars", "recommend"):
        return "BIGINT"
    return "VARCHAR"


def _sql_counters(con, counts) -> dict:
    con.execute("DROP TABLE IF EXISTS counters")
    con.execute(C.counters_sql(counts))
    return {tuple(r[:4]): [int(v) for v in r[4:]] for r in con.execute(
        f"SELECT {', '.join(C.COUNTER_COLUMNS)} FROM counters").fetchall()}


@pytest.fixture(scope="module")
def fact_rows():
    return _fact_rows(1500, seed=20)


@pytest.fixture(scope="module")
def facts_db(fact_rows, tmp_path_factory):
    """The same facts in the columnar engine's ``facts`` table."""
    path = tmp_path_factory.mktemp("facts") / "facts.json"
    path.write_text("\n".join(json.dumps(dict(zip(C.FACT_COLUMNS, r.as_tuple() + (r.audit_late,))), default=str)
                              for r in fact_rows) + "\n")
    con = C.connect(threads=1)
    columns = "{" + ", ".join(f"'{c}': '{_sql_type(c)}'" for c in C.FACT_COLUMNS) + "}"
    con.execute(f"CREATE TABLE facts AS SELECT * FROM read_ndjson('{path}', columns = {columns})")
    yield con
    con.close()


def _name(c: R.Count) -> str:
    return f"{c.family}:{c.dim.value if isinstance(c.dim, E.Lit) else 'dim'}:{c.doc[:24]}"


@pytest.mark.parametrize("rule", R.COUNTS, ids=_name)
def test_every_counter_rule_gives_the_same_counters_in_both_engines(rule, fact_rows, facts_db):
    alone = P.compile_contributions((rule,), name="contributions_under_test")
    python = P.Tally()
    for r in fact_rows:
        python.add(alone(r))
    expected = python.counters()
    assert expected, "the generated facts never trigger this rule"
    # every column the rule fills is non-zero somewhere, and its conditions are false somewhere
    for i, _x in rule.columns:
        assert any(v[i] for v in expected.values()), f"column {'abcd'[i]} never counted"
    assert _sql_counters(facts_db, (rule,)) == expected


def test_the_whole_table_and_the_derived_values_agree(fact_rows, facts_db):
    assert facts_db.execute("SELECT count(*) FROM facts").fetchone()[0] == len(fact_rows)
    expected = P.counters_of(fact_rows)
    assert _sql_counters(facts_db, R.COUNTS) == expected
    # each derived value takes more than one value over the generated facts (both branches run)
    values = [P.derived(r) for r in fact_rows if r.merchant_id is not None]
    for d in R.DERIVED:
        assert len({v[d.name] for v in values}) > 1, d.name


# ---------------------------------------------------------------- the triggers (events → facts)

def _snapshot(merchant: str, created: datetime, service_type: str) -> dict:
    return {"merchant_id": merchant, "customer_id": "c", "customer_phone": "138", "customer_level": "regular",
            "sales_order_id": "so", "sku": "s-1", "category": "phones", "quantity": 1, "amount_paid": "10.50",
            "service_type": service_type, "problem_type": "quality", "created_at": _iso(created),
            "mode": "pop_self_service", "on_behalf": False}


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


DETAIL_VALUES = {
    "amount": [None, "10.50", 12, "0.05", "-3.00"],
    "stars": [None, 5, "4", 4.5, True, 1],
    "recommend": [None, 0, 6, 7, 9, 10, 11, -1, True, "9"],
    "outcome": [None, "refund", "exchange", "reject", 3],
    "completed_by": [None, "merchant", "platform", "system", "other", 3],
}


def _events(n_orders: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    actions = sorted({str(a) for a in Action} | {n.value for t in R.TRIGGERS for n in t.when.walk()
                                                  if isinstance(n, E.Lit) and isinstance(n.value, str)})
    states = sorted(str(s) for s in OrderState)
    roles = sorted(R.MERCHANT_ROLES | R.PLATFORM_ROLES | {"customer", "system"})
    times = _instants()
    events = []
    for i in range(n_orders):
        oid, created = f"order-{i}", rnd.choice(times[:3])
        snap = _snapshot(rnd.choice(("m1", "m2")), created, rnd.choice(("return", "exchange", "compensation")))
        for v in range(2, 2 + rnd.randint(1, 8)):
            details = {}
            for k, values in DETAIL_VALUES.items():
                x = rnd.choice(values)
                if x is not None:
                    details[k] = x
            events.append({"type": "service_order.transitioned", "schema_version": 1, "data": {
                "order_id": oid, "number": "N", "version": rnd.choice((v, v, 2)), "action": rnd.choice(actions),
                "from_state": "pending_audit", "to_state": rnd.choice(states), "actor_role": rnd.choice(roles),
                "actor_id": "u", "occurred_at": _iso(rnd.choice(times)), "order": snap, "details": details}})
    return events


def _python_fold(events: list[dict]) -> dict:
    rows: dict[str, P.OrderFact] = {}
    for e in events:
        d, o = e["data"], e["data"]["order"]
        row = rows.setdefault(d["order_id"], P.OrderFact(d["order_id"]))
        snap = P.snapshot_tuple(o["merchant_id"], o["category"], o["sku"], o["service_type"], o["problem_type"],
                                o["amount_paid"], P.utc(datetime.fromisoformat(o["created_at"])), o["on_behalf"],
                                o["mode"])
        details = d["details"] if d["action"] in P.DETAIL_ACTIONS else {}  # what the decoders hand over
        P.fold_transition(row, d["version"], snap, d["action"], d["to_state"], d["actor_role"],
                          P.utc(datetime.fromisoformat(d["occurred_at"])), details)
    return rows


def test_every_trigger_gives_the_same_facts_in_both_engines(tmp_path):
    events = _events(400, seed=7)
    rows = _python_fold(events)
    # every trigger holds for some event, so the comparison below covers each of them
    py = E.ToPython({f: f for f in R.EVENT_FIELDS}, {})
    for t in R.TRIGGERS:
        when = eval(f"lambda action, to_state, actor_role, details: {py(t.when)}", py.ns)  # noqa: S307
        assert any(when(e["data"]["action"], e["data"]["to_state"], e["data"]["actor_role"], e["data"]["details"])
                   for e in events), f"no event triggers {t}"
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in events) + "\n")
    folded = C.fold([path], threads=1)
    try:
        assert folded.odd == 0
        C.count(folded)
        facts = {r[0]: r for r in C.rows(folded, "facts", C.FACT_COLUMNS)}
        counters = {tuple(r[:4]): [int(v) for v in r[4:]] for r in C.rows(folded, "counters", C.COUNTER_COLUMNS)}
    finally:
        folded.con.close()
    assert facts == {k: r.as_tuple() + (r.audit_late,) for k, r in rows.items()}
    for m in R.MILESTONE_TABLE:
        if m.name != "penalty":  # the SLA timer's event, not a transition (test_columnar)
            assert any(getattr(r, m.at) is not None for r in rows.values()), f"{m.name} never recorded"
    assert counters == P.counters_of(rows.values())
