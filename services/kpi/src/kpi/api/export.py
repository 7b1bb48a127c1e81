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


INDEX_COLUMNS = ["merchant_id", "category", "paid_transactions", "disputes", "completed", "dispute_rate",
                 "completion_hours", "self_completion_rate", "lead_dispute_rate_pct", "lead_completion_hours_pct",
                 "lead_self_completion_rate_pct", "index_score", "lead_index_pct", "platinum", "warnings"]


def index_csv(merchants: list[dict]) -> str:
    """The composite index, one row per merchant (empty value = no value)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(INDEX_COLUMNS)
    for m in merchants:
        lead = m["lead_pct"]
        w.writerow([m["merchant_id"], m["category"], m["paid_transactions"], m["disputes"], m["completed"],
                    m["dispute_rate"] or "", m["completion_hours"] or "", m["self_completion_rate"] or "",
                    lead["dispute_rate"] or "", lead["completion_hours"] or "", lead["self_completion_rate"] or "",
                    m["index_score"] or "", lead["index"] or "", "yes" if m["platinum"] else "no",
                    " ".join(m["warnings"])])
    return buf.getvalue()
