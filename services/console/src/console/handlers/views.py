"""What a page is made of: figure cards, charts (plotly.js figures) and tables. One page
builder fills these; the template draws them, the live refresh redraws them, and the CSV
export writes a table's raw values from the same object."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PALETTE = ["#1f6feb", "#f0883e", "#2da44e", "#cf222e", "#8250df", "#bf8700", "#0969da", "#57606a",
           "#e16f24", "#1a7f37", "#a40e26", "#6639ba", "#9a6700", "#116329"]


@dataclass
class Cell:
    text: str
    sort: Any = None  # raw value: sorting and CSV
    href: str | None = None
    tone: str | None = None  # warn | bad | good


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False


@dataclass
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    total: int | None = None  # rows there are, when more than shown
    csv: bool = True

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow([c.key for c in self.columns])
        for row in self.rows:
            w.writerow([_raw(c) for c in row])
        return out.getvalue()


def _raw(c: Cell) -> str:
    v = c.sort if c.sort is not None else c.text
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, (bool, int, float, Decimal)):
        return str(v)
    text = str(v)
    # A cell a spreadsheet would run as a formula (text customers or merchants wrote): quoted.
    if text[:1] in FORMULA_START:
        return "'" + text
    return text


@dataclass
class Card:
    id: str
    label: str
    value: str
    raw: Any = None
    tone: str | None = None


@dataclass
class Chart:
    id: str
    title: str
    data: list[dict]
    layout: dict = field(default_factory=dict)

    def figure(self) -> dict:
        base = {"margin": {"l": 48, "r": 12, "t": 8, "b": 40}, "height": 260, "paper_bgcolor": "rgba(0,0,0,0)",
                "plot_bgcolor": "rgba(0,0,0,0)", "font": {"size": 12}, "colorway": PALETTE,
                "legend": {"orientation": "h", "y": -0.2}}
        return {"data": self.data, "layout": {**base, **self.layout}}


@dataclass
class Page:
    name: str
    title: str
    cards: list[Card] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # what one page's template needs beyond these

    def table(self, table_id: str) -> Table | None:
        return next((t for t in self.tables if t.id == table_id), None)

    def charts_json(self) -> dict:
        return {c.id: c.figure() for c in self.charts}
