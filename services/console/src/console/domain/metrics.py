"""Figures from one scrape of a service's ``/metrics``: pure functions.

A scrape is what the answering replica holds: counters and histograms since that replica
started, gauges as of its last sample (the sampled ones are read from the service's database,
so every replica reports the same). The Grafana dashboards take rates over Prometheus's
history and sum replicas; the console shows the replica's totals (docs/console.md says so)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float


# sample name (``x_total``, ``x_bucket``, a gauge's name) -> its samples
Scrape = Mapping[str, list[Sample]]


def _matches(s: Sample, match: Mapping[str, str]) -> bool:
    return all(s.labels.get(k, "") == v for k, v in match.items())


def total(scrape: Scrape, name: str, **match: str) -> float | None:
    """The sum of the samples of ``name`` (those with the ``match`` labels); None when the
    service exposes no such sample."""
    samples = [s for s in scrape.get(name, ()) if _matches(s, match)]
    return sum(s.value for s in samples) if samples else None


def by_label(scrape: Scrape, name: str, *labels: str, how: str = "sum") -> dict[tuple[str, ...], float]:
    """The samples of ``name`` grouped by ``labels`` (``sum`` or ``max`` within a group, as
    ``sum by`` / ``max by`` in PromQL)."""
    out: dict[tuple[str, ...], float] = {}
    for s in scrape.get(name, ()):
        key = tuple(s.labels.get(lbl, "") for lbl in labels)
        if key not in out:
            out[key] = s.value
        elif how == "max":
            out[key] = max(out[key], s.value)
        else:
            out[key] += s.value
    return out


def buckets(scrape: Scrape, bucket_name: str, **match: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets ``(le, count)``, ascending, summed over every other
    label (as ``sum by (le)``)."""
    acc: dict[float, float] = {}
    for s in scrape.get(bucket_name, ()):
        if "le" not in s.labels or not _matches(s, match):
            continue
        le = float(s.labels["le"])  # "+Inf" parses as inf
        acc[le] = acc.get(le, 0.0) + s.value
    return sorted(acc.items())


def histogram_quantile(q: float, cumulative: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus's ``histogram_quantile``: the ``q`` quantile (0..1) of cumulative buckets,
    interpolated linearly inside the bucket holding it. None without observations; in the
    open-ended bucket, the highest finite bound."""
    bs = sorted(cumulative)
    if not bs or not math.isinf(bs[-1][0]):
        return None  # not a histogram (Prometheus answers NaN)
    # counts must not fall from one bucket to the next (a scrape racing an observation)
    fixed, high = [], 0.0
    for le, n in bs:
        high = max(high, n)
        fixed.append((le, high))
    observed = fixed[-1][1]
    if observed <= 0:
        return None
    rank = q * observed
    prev_le, prev_n = 0.0, 0.0
    for i, (le, n) in enumerate(fixed):
        if n >= rank:
            if math.isinf(le):
                return fixed[-2][0] if len(fixed) > 1 else None
            if i == 0 and le <= 0:
                return le
            inside = n - prev_n
            return prev_le + (le - prev_le) * ((rank - prev_n) / inside if inside else 1.0)
        prev_le, prev_n = le, n
    return None


def bucket_counts(cumulative: Iterable[tuple[float, float]]) -> list[tuple[float, float, int]]:
    """Observations per bucket ``(lower, upper, count)`` from cumulative buckets."""
    out, prev_le, prev_n = [], 0.0, 0.0
    for le, n in sorted(cumulative):
        out.append((prev_le, le, int(max(0.0, n - prev_n))))
        prev_le, prev_n = le, max(prev_n, n)
    return out
