"""Parsing a bulk catalogue upload: CSV (header ``sku,manufacturer_id,category``)
or JSON lines. Bad rows are reported by line number; good rows are kept."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from consultation_routing.domain.model import Sku

FIELDS = ("sku", "manufacturer_id", "category")
MAX_LEN = 100


@dataclass(frozen=True)
class RowError:
    line: int
    error: str


def _row(values: dict, line: int) -> Sku | RowError:
    out = {}
    for name in FIELDS:
        raw = values.get(name)
        if not isinstance(raw, str) or not raw.strip():
            return RowError(line, f"{name} is missing or empty")
        v = raw.strip()
        if len(v) > MAX_LEN:
            return RowError(line, f"{name} is longer than {MAX_LEN} characters")
        out[name] = v
    out["category"] = out["category"].lower()
    return Sku(**out)


def parse_csv(text: str) -> tuple[list[Sku], list[RowError]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [f for f in FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        return [], [RowError(1, f"header lacks column(s): {', '.join(missing)}")]
    good: dict[str, Sku] = {}
    bad: list[RowError] = []
    for values in reader:
        line = reader.line_num
        if None in values:
            bad.append(RowError(line, "too many fields"))
            continue
        r = _row(values, line)
        if isinstance(r, RowError):
            bad.append(r)
        else:
            good[r.sku] = r  # the last row of a SKU wins, like a sequence of upserts
    return list(good.values()), bad


def parse_jsonl(text: str) -> tuple[list[Sku], list[RowError]]:
    good: dict[str, Sku] = {}
    bad: list[RowError] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            values = json.loads(raw)
        except ValueError:
            bad.append(RowError(n, "not valid JSON"))
            continue
        if not isinstance(values, dict):
            bad.append(RowError(n, "not a JSON object"))
            continue
        r = _row(values, n)
        if isinstance(r, RowError):
            bad.append(r)
        else:
            good[r.sku] = r
    return list(good.values()), bad
