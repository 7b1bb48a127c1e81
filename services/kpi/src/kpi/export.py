"""CSV rendering of the weekly scorecards (one row per merchant)."""
from __future__ import annotations

import csv
import io

from kpi.domain.scorecard import INDICATORS

COLUMNS = ["week", "merchant_id", "rank", "score"] + [
    f"{i.id}_{part}" for i in INDICATORS for part in ("numerator", "denominator", "value")]


def scorecards_csv(cards: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for c in cards:
        row = [c["week"], c["merchant_id"], c.get("rank") or "", c["score"] or ""]
        for i in INDICATORS:
            v = c["indicators"][i.id]
            row += [v["numerator"], v["denominator"], v["value"] or ""]
        w.writerow(row)
    return buf.getvalue()
