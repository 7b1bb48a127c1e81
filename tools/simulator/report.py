"""The simulation's report: ``figures.json`` (every figure) and ``report.html``, one
self-contained page (SVG charts drawn by pygal in Python and inlined; nothing is
fetched from elsewhere): orders opened and closed per simulated hour, the backlog by state, the
deadlines fired by rule, penalties per merchant, the score distribution, the routing share,
and tables of the rest."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pygal
from pygal.style import Style

STYLE = Style(background="white", plot_background="white", font_family="sans-serif",
              colors=("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                      "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39"))
COMMON = dict(style=STYLE, disable_xml_declaration=True, js=[], width=900, height=380, legend_at_bottom=True,
              legend_at_bottom_columns=4, truncate_legend=40, print_values=False, explicit_size=True,
              include_x_axis=True)


def _hours_labels(n: int, step_h: float) -> list[str]:
    return [f"d{int(k * step_h // 24)} {int(k * step_h % 24):02d}h" for k in range(n)]


def _major_every(n: int, step_h: float) -> int:
    return max(1, int(round(24 / step_h)) if n * step_h > 48 else max(1, int(round(6 / step_h))))


def chart_flow(f: dict) -> str:
    s = f["series"]
    n = len(s["opened"])
    c = pygal.Line(title="Orders opened and closed per simulated step (Beijing time from 11-11 00:00)",
                   show_dots=False, x_label_rotation=30, show_minor_x_labels=False,
                   x_labels_major_every=_major_every(n, s["step_hours"]), **COMMON)
    c.x_labels = _hours_labels(n, s["step_hours"])
    c.add("opened", s["opened"])
    c.add("closed (terminal state)", s["closed"])
    c.add("deadlines fired", s["deadlines_fired"])
    return c.render(is_unicode=True)


def chart_backlog(f: dict) -> str:
    s = f["series"]
    n = len(s["opened"])
    c = pygal.StackedLine(title="Open orders by state at the end of each step", fill=True, show_dots=False,
                          x_label_rotation=30, show_minor_x_labels=False,
                          x_labels_major_every=_major_every(n, s["step_hours"]),
                          **{**COMMON, "legend_at_bottom_columns": 3, "height": 420})
    c.x_labels = _hours_labels(n, s["step_hours"])
    for state, values in s["backlog"].items():
        if any(values):
            c.add(state, values)
    return c.render(is_unicode=True)


def chart_deadlines(f: dict) -> str:
    rules = sorted(f["deadlines"]["fired_by_rule"].items(), key=lambda kv: kv[1])
    c = pygal.HorizontalBar(title="Deadlines fired, by rule", show_legend=False,
                            **{**COMMON, "print_values": True, "height": max(240, 60 + 28 * len(rules))})
    c.x_labels = [rule for rule, _n in rules]
    c.add("fired", [n for _rule, n in rules])
    return c.render(is_unicode=True)


def chart_penalties(f: dict) -> str:
    c = pygal.Bar(title="Penalties per merchant (CNY), by quality", x_label_rotation=30, **COMMON)
    ms = f["merchants"]
    c.x_labels = [f"{m['id']} ({m['quality']})" for m in ms]
    c.add("penalties (CNY)", [m["penalties_cny"] for m in ms])
    c.add("orders", [m["orders"] for m in ms], secondary=True)
    return c.render(is_unicode=True)


def chart_scores(f: dict) -> str:
    bins = [0] * 10
    for kind in ("pop_weekly", "service_express_after_sales"):
        for per_week in f["scores"][kind].values():
            for v in per_week.values():
                if v is None:
                    continue
                x = v if kind == "pop_weekly" else v / 100.0  # POP scores are 0-1, service-express 0-100
                bins[min(9, max(0, int(x * 10)))] += 1
    c = pygal.Bar(title="Score distribution (weekly POP scorecards and service-express after-sales scores)",
                  **COMMON)
    c.x_labels = [f"{k / 10:.1f}-{(k + 1) / 10:.1f}" for k in range(10)]
    c.add("merchant-weeks", bins)
    return c.render(is_unicode=True)


def chart_routing(f: dict) -> str:
    c = pygal.Pie(title="Routing share: where consultations went (target: reason)", inner_radius=0.4, **COMMON)
    for reason, count in f["routing"]["by_reason"].items():
        c.add(reason, count)
    return c.render(is_unicode=True)


CHARTS = (("flow", chart_flow), ("backlog", chart_backlog), ("deadlines", chart_deadlines),
          ("penalties", chart_penalties), ("scores", chart_scores), ("routing", chart_routing))


def _table(title: str, rows: dict) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<h2>{html.escape(title)}</h2><table>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) or "—"
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v) or "—"
    return "—" if v is None else str(v)


def render_html(f: dict, charts: dict[str, str]) -> str:
    sc, run = f["scenario"], f["run"]
    tables = "".join([
        _table("Scenario", sc),
        _table("Run", {k: v for k, v in run.items() if k not in ("first_errors",)}),
        _table("Orders", f["orders"]),
        _table("Deadlines", {"fired": f["deadlines"]["fired_total"], "effects on orders": f["deadlines"]["effects"]}),
        _table("Penalties", {"total (CNY)": f["penalties"]["total_cny"], **f["penalties"]["by_kind"]}),
        _table("Ratings and NPS", f["ratings"]),
        _table("Arbitration", f["arbitration"] or {"requests": 0}),
        _table("Routing", {k: v for k, v in f["routing"].items() if k != "by_reason"}),
        _table("Weeks closed", {w["week"]: {"flagged": w["flagged"], "disqualified": w["disqualified"]}
                                for w in f["weeks_closed"]} or {"none": "no Monday passed"}),
        _table("Consumer lag (s)", f["lag"]),
    ])
    svgs = "".join(f'<figure id="{name}">{svg}</figure>' for name, svg in charts.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Double-11 simulation — seed {sc['seed']}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 960px; color: #222; }}
figure {{ margin: 1.5em 0; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; font-size: 0.9em; }}
th {{ background: #f4f4f4; }}
</style></head><body>
<h1>Double-11 simulation</h1>
<p>Seed {sc['seed']}, {sc['merchants']} merchants, {f['orders']['opened']} service orders over {sc['days']} simulated
days from {html.escape(sc['start_beijing'])} (Beijing); {run['actions']} order actions through the platform's APIs in
{run['real_seconds']} s. The same figures are in <code>figures.json</code> beside this page.</p>
{svgs}
{tables}
</body></html>
"""


def write_report(figures: dict, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = {name: fn(figures) for name, fn in CHARTS}
    paths = {"json": out_dir / "figures.json", "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(figures, indent=1, sort_keys=False, default=str))
    paths["html"].write_text(render_html(figures, charts))
    for name, svg in charts.items():
        p = out_dir / f"{name}.svg"
        p.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + svg if not svg.startswith("<?xml") else svg)
        paths[name] = p
    return paths
