"""Application services (one transaction each): closing an evaluation period
(bottom-10 flags, service-express disqualifications) and re-qualification."""
from __future__ import annotations

from datetime import date, timedelta

from kpi.domain.scorecard import rank
from kpi.domain.service_express import below_twice
from kpi.handlers.figures import figures_for_week, service_express
from kpi.models import Disqualification, FlagRecord
from shared.errors import ApiError
from shared.events import make_envelope
from shared.runtime import Runtime


async def close_period(rt: Runtime, week: date) -> dict:
    """Publish the flags and disqualifications that ``week`` completes. Idempotent:
    closing a week again publishes nothing new."""
    s = rt.settings
    now = rt.clock.now()
    flagged, disqualified = [], []
    async with rt.uow() as session:
        fig = await figures_for_week(session, week)
        weeks = fig["weeks"]
        for f in fig["flags"]:
            if await session.get(FlagRecord, (f["merchant_id"], f["week"])) is not None:
                continue
            session.add(FlagRecord(merchant_id=f["merchant_id"], week=f["week"], flagged_at=now))
            ranks = []
            for w in f["weeks"]:
                entries = rank(weeks.get(date.fromisoformat(w), {}))
                ranks.append(next(e.rank for e in entries if e.merchant_id == f["merchant_id"]))
            await rt.outbox.add(session, make_envelope(
                type_="kpi.merchant_flagged", key=f["merchant_id"], producer="kpi", occurred_at=now,
                data={"merchant_id": f["merchant_id"], "weeks": f["weeks"], "ranks": ranks, "flagged_at": now}))
            flagged.append(f["merchant_id"])
        prev = week - timedelta(weeks=1)
        se = await service_express(session, s.consultation_weights, [prev, week])
        for m in sorted(se.get(week, {})):
            scores = {w: {k: se.get(w, {}).get(m, {}).get(k) for k in ("after_sales", "consultation")}
                      for w in (prev, week)}
            if not below_twice(week, scores, s.disqualify_below):
                continue
            row = await session.get(Disqualification, m)
            if row is not None and (row.disqualified or prev.isoformat() <= row.since_period):
                continue  # already out, or re-qualified: a new run must lie wholly after the last decision
            if row is None:
                row = Disqualification(manufacturer_id=m, disqualified=True, since_period=week.isoformat(),
                                       changed_at=now, note="")
                session.add(row)
            else:
                row.disqualified, row.since_period, row.changed_at, row.note = True, week.isoformat(), now, ""
            await rt.outbox.add(session, make_envelope(
                type_="kpi.manufacturer_disqualified", key=m, producer="kpi", occurred_at=now,
                data={"manufacturer_id": m, "periods": [prev, week], "threshold": str(s.disqualify_below),
                      "scores": {w.isoformat(): {k: None if v is None else str(v) for k, v in sc.items()}
                                 for w, sc in scores.items()},
                      "disqualified_at": now}))
            disqualified.append(m)
    return {"week": week.isoformat(), "flagged": flagged, "disqualified": disqualified}


async def requalify(rt: Runtime, manufacturer_id: str, operator_id: str, note: str) -> dict:
    now = rt.clock.now()
    async with rt.uow() as session:
        row = await session.get(Disqualification, manufacturer_id)
        if row is None or not row.disqualified:
            raise ApiError(409, "not_disqualified", f"manufacturer {manufacturer_id} is not disqualified")
        row.disqualified, row.changed_at, row.note = False, now, note
        await rt.outbox.add(session, make_envelope(
            type_="kpi.manufacturer_requalified", key=manufacturer_id, producer="kpi", occurred_at=now,
            data={"manufacturer_id": manufacturer_id, "operator_id": operator_id, "note": note,
                  "requalified_at": now}))
    return {"manufacturer_id": manufacturer_id, "disqualified": False, "note": note}
