"""Reports of a verdict: text (verdict first, one line per check), JSON, HTML and JUnit XML.

The JSON form is also the web provider's answer, so it never contains NaN or Infinity (Go's
encoding/json rejects them, and Argo Rollouts counts a body it cannot parse as Successful).
The HTML report is one self-contained file: charts are inline SVG drawn here, no script, no
network, so it renders the same in a CI artifact viewer and in headless Chromium.
"""

from __future__ import annotations

import html
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from analysis.checks import Kind, format_duration
from analysis.judge import Comparison, Measurement, Phase, Points, Verdict

PREVIEW_COLOUR = "#e8590c"
ACTIVE_COLOUR = "#1c6ed6"
_PHASE_COLOUR = {
    Phase.SUCCESSFUL: "#2b8a3e",
    Phase.FAILED: "#c92a2a",
    Phase.INCONCLUSIVE: "#e67700",
    Phase.ERROR: "#5f3dc4",
}


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if _number(value) is None else f"{value:.4g}{unit}"


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_query(m: Measurement, role: str = "preview") -> str:
    """The resolved query of one side, as one line: ``errors / total`` for a ratio."""
    q = m.queries[role]
    if m.check.kind is Kind.RATIO:
        return f"({q['errors']}) / ({q['total']})"
    return q["query"]


def _values(m: Measurement) -> str:
    worst = m.worst
    if m.phase is Phase.ERROR or worst is None:
        return m.message
    a = worst.assessment
    if a.preview is None:
        return m.message
    unit = m.check.unit
    if m.check.kind is Kind.VOLUME:
        active = "-" if a.active is None else f"~{a.active:.0f}"
        return f"~{a.preview:.0f} vs {active} requests  [{m.check.condition.describe()}]"
    effect = "" if a.effect is None else f"  effect {a.effect:+.4g}{unit}"
    p = "" if a.p_value is None else f" p={a.p_value:.2g}"
    where = f"{worst.labels} " if worst.key and len(m.comparisons) > 1 else ""
    return (
        f"{where}{_fmt(a.preview, unit)} vs {_fmt(a.active, unit)}{effect}{p}"
        f"  [{m.check.condition.describe(unit)}]"
    )


def text(verdict: Verdict) -> str:
    """The verdict first, then one line per check: phase, values, threshold/effect, query."""
    score = "n/a" if verdict.score is None else f"{verdict.score:.2f}"
    service = f" service={verdict.service}" if verdict.service else ""
    lines = [
        f"{verdict.phase}  score {score} (pass >= {verdict.checks.score.pass_:g}, "
        f"marginal >= {verdict.checks.score.marginal:g})  preview {verdict.preview} vs active "
        f"{verdict.active}{service}  window {format_duration(verdict.window)} ending "
        f"{_time(verdict.end)}",
        f"  {verdict.message}",
    ]
    width = max(len(m.check.name) for m in verdict.measurements)
    for m in verdict.measurements:
        lines.append(f"{m.phase:<12} {m.check.name:<{width}}  {_values(m)}  {shown_query(m)}")
    lines.extend(f"{'Skipped':<12} {reason}" for reason in verdict.skipped)
    return "\n".join(lines) + "\n"


def _comparison(c: Comparison) -> dict[str, Any]:
    a = c.assessment
    return {
        "labels": dict(c.key),
        "classification": str(a.classification),
        "reason": a.reason,
        "preview": _number(a.preview),
        "active": _number(a.active),
        "effect": _number(a.effect),
        "ratio": _number(a.ratio),
        "p_value": _number(a.p_value),
    }


def as_dict(verdict: Verdict) -> dict[str, Any]:
    """The verdict as plain JSON-ready data (no NaN, no Infinity)."""
    checks = []
    for m in verdict.measurements:
        worst = m.worst
        a = worst.assessment if worst is not None else None
        checks.append({
            "name": m.check.name,
            "phase": str(m.phase),
            "classification": None if m.classification is None else str(m.classification),
            "critical": m.check.critical,
            "weight": m.check.weight,
            "message": m.message,
            "condition": m.check.condition.describe(m.check.unit),
            "preview": None if a is None else _number(a.preview),
            "active": None if a is None else _number(a.active),
            "effect": None if a is None else _number(a.effect),
            "ratio": None if a is None else _number(a.ratio),
            "p_value": None if a is None else _number(a.p_value),
            "queries": {role: dict(q) for role, q in m.queries.items()},
            "series": [_comparison(c) for c in m.comparisons],
        })
    return {
        "phase": str(verdict.phase),
        "score": _number(verdict.score),
        "message": verdict.message,
        "preview": {"label": verdict.preview.label, "value": verdict.preview.value},
        "active": {"label": verdict.active.label, "value": verdict.active.value},
        "service": verdict.service,
        "window": format_duration(verdict.window),
        "step": format_duration(verdict.step),
        "start": _time(verdict.start),
        "end": _time(verdict.end),
        "thresholds": {"pass": verdict.checks.score.pass_,
                       "marginal": verdict.checks.score.marginal},
        "checks": checks,
        "skipped": list(verdict.skipped),
        "elapsed_seconds": round(verdict.elapsed, 4),
    }


def to_json(data: Mapping[str, Any]) -> str:
    """JSON that Go can parse: ``allow_nan=False`` turns a stray NaN into a bug, not a body."""
    return json.dumps(data, allow_nan=False, indent=2, sort_keys=False) + "\n"


def junit(verdict: Verdict) -> str:
    """JUnit XML: one test case per check; Inconclusive is a failure too (never a pass)."""
    failures = sum(m.phase in (Phase.FAILED, Phase.INCONCLUSIVE) for m in verdict.measurements)
    errors = sum(m.phase is Phase.ERROR for m in verdict.measurements)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", {
        "name": f"bgh gate: preview {verdict.preview} vs active {verdict.active}",
        "tests": str(len(verdict.measurements) + len(verdict.skipped)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(len(verdict.skipped)),
        "time": f"{verdict.elapsed:.3f}",
        "timestamp": _time(verdict.end),
    })
    props = ET.SubElement(suite, "properties")
    for name, value in (("phase", str(verdict.phase)), ("score", str(_number(verdict.score))),
                        ("message", verdict.message)):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for m in verdict.measurements:
        case = ET.SubElement(suite, "testcase", {"classname": "analysis.gate",
                                                 "name": m.check.name, "time": "0"})
        body = f"{m.message}\nquery (preview): {shown_query(m)}\nquery (active): " \
               f"{shown_query(m, 'active')}"
        if m.phase is Phase.ERROR:
            ET.SubElement(case, "error", {"type": "Error", "message": m.message}).text = body
        elif m.phase is not Phase.SUCCESSFUL:
            ET.SubElement(case, "failure", {"type": str(m.phase), "message": m.message}).text = body
        else:
            ET.SubElement(case, "system-out").text = body
    for reason in verdict.skipped:
        name, _, why = reason.partition(": ")
        case = ET.SubElement(suite, "testcase", {"classname": "analysis.gate", "name": name,
                                                 "time": "0"})
        ET.SubElement(case, "skipped", {"message": why})
    ET.indent(suites)
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return declaration + ET.tostring(suites, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------------
# HTML with inline SVG charts.

_W, _H = 760, 230
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 14, 30


def _path(points: Points, x: Any, y: Any) -> str:
    """An SVG path through the finite points; NaN and Inf leave gaps."""
    parts: list[str] = []
    pen_up = True
    for ts, value in zip(points.timestamps, points.values, strict=True):
        if not math.isfinite(value):
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{x(ts):.1f},{y(value):.1f}")
        pen_up = False
    return " ".join(parts)


def chart(comparison: Comparison, *, start: float, end: float, threshold: float | None,
          unit: str, title: str) -> str:
    """Preview and active over the window on one chart, with the absolute threshold if any."""
    both = np.concatenate([comparison.preview.values, comparison.active.values])
    finite = both[np.isfinite(both)]
    if finite.size == 0:
        return (f'<svg class="chart" role="img" width="{_W}" height="60" viewBox="0 0 {_W} 60">'
                f"<title>{html.escape(title)}</title>"
                f'<text x="{_LEFT}" y="34" class="nodata">no data to draw</text></svg>')
    low, high = float(finite.min()), float(finite.max())
    if threshold is not None and math.isfinite(threshold):
        low, high = min(low, threshold), max(high, threshold)
    low = min(low, 0.0) if low >= 0 else low
    if high == low:
        high = low + 1.0
    high += (high - low) * 0.08
    span = max(end - start, 1.0)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(ts: float) -> float:
        return _LEFT + (ts - start) / span * plot_w

    def y(value: float) -> float:
        return _TOP + (1 - (value - low) / (high - low)) * plot_h

    out = [
        f'<svg class="chart" role="img" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}">',
        f"<title>{html.escape(title)}</title>",
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = low + (high - low) * frac
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(value):.1f}" '
                   f'y2="{y(value):.1f}" class="grid"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" class="tick" '
                   f'text-anchor="end">{value:.3g}{html.escape(unit)}</text>')
    for frac in (0.0, 0.5, 1.0):
        ago = (1 - frac) * span
        label = "now" if ago == 0 else f"-{format_duration(round(ago))}"
        out.append(f'<text x="{_LEFT + frac * plot_w:.1f}" y="{_H - 10}" class="tick" '
                   f'text-anchor="middle">{label}</text>')
    if threshold is not None and math.isfinite(threshold):
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(threshold):.1f}" '
                   f'y2="{y(threshold):.1f}" class="threshold"/>')
        out.append(f'<text x="{_W - _RIGHT - 4}" y="{y(threshold) - 4:.1f}" class="tick" '
                   f'text-anchor="end">limit {threshold:g}{html.escape(unit)}</text>')
    for role, points, colour in (("active", comparison.active, ACTIVE_COLOUR),
                                 ("preview", comparison.preview, PREVIEW_COLOUR)):
        d = _path(points, x, y)
        if d:
            out.append(f'<path class="series series-{role}" d="{d}" stroke="{colour}"/>')
    out.append("</svg>")
    return "".join(out)


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #212529; }
.verdict { padding: 14px 18px; border-radius: 6px; color: #fff; }
.verdict h1 { margin: 0 0 4px; font-size: 26px; }
table { border-collapse: collapse; margin: 16px 0; }
td, th { border-bottom: 1px solid #dee2e6; padding: 4px 10px; text-align: left;
          vertical-align: top; }
.phase { font-weight: 600; }
code { font-size: 12px; word-break: break-all; }
section { margin: 22px 0; }
.legend span { display: inline-block; margin-right: 16px; }
.swatch { display: inline-block; width: 22px; height: 4px; vertical-align: middle;
           margin-right: 6px; }
svg.chart { display: block; }
svg .plot { fill: #f8f9fa; stroke: #ced4da; }
svg .grid { stroke: #dee2e6; }
svg .tick { font-size: 11px; fill: #495057; }
svg .nodata { font-size: 14px; fill: #868e96; }
svg .threshold { stroke: #c92a2a; stroke-dasharray: 6 4; stroke-width: 1.5; }
svg .series { fill: none; stroke-linejoin: round; }
svg .series-active { stroke-width: 4.5; }  /* under preview, so equal lines show both */
svg .series-preview { stroke-width: 2; }
.muted { color: #868e96; }
"""


def html_report(verdict: Verdict) -> str:
    """A self-contained page: verdict banner, one row per check, then a chart per check."""
    e = html.escape
    colour = _PHASE_COLOUR[verdict.phase]
    score = "n/a" if verdict.score is None else f"{verdict.score:.2f}"
    rows = []
    for m in verdict.measurements:
        rows.append(
            f'<tr><td class="phase" style="color:{_PHASE_COLOUR[m.phase]}">{e(str(m.phase))}</td>'
            f"<td>{e(m.check.name)}{' (critical)' if m.check.critical else ''}</td>"
            f"<td>{e(_values(m))}</td><td>{e(m.message)}</td></tr>"
        )
    sections = []
    legend = (f'<p class="legend"><span><i class="swatch" style="background:{PREVIEW_COLOUR}">'
              f"</i>preview {e(str(verdict.preview))}</span><span><i class=\"swatch\" "
              f'style="background:{ACTIVE_COLOUR}"></i>active {e(str(verdict.active))}</span></p>')
    # What went wrong comes first; within a check, the worst series first.
    order = {Phase.FAILED: 0, Phase.ERROR: 1, Phase.INCONCLUSIVE: 2, Phase.SUCCESSFUL: 3}
    for m in sorted(verdict.measurements, key=lambda m: order[m.phase]):
        limit = m.check.condition.max if m.check.condition.max is not None \
            else m.check.condition.min
        if m.check.kind is Kind.VOLUME:
            limit = None  # the minimum is a count over the window; the chart shows a rate
        what = {Kind.RATIO: "ratio per step", Kind.DISTRIBUTION: "value per step",
                Kind.VOLUME: "requests per step",
                Kind.QUANTILE: "quantile per step (judged over the whole window)"}[m.check.kind]
        charts = []
        for c in sorted(m.comparisons, key=lambda c: -c.assessment.classification.severity):
            title = f"{m.check.name} {c.labels}: preview vs active, {what}"
            caption = f"<h3>{e(c.labels)}</h3>" if c.key else ""
            charts.append(caption + chart(c, start=verdict.start, end=verdict.end,
                                          threshold=limit, unit=m.check.unit, title=title))
        if not charts:
            charts.append(f'<p class="muted">not measured: {e(m.message)}</p>')
        sections.append(
            f'<section id="check-{e(m.check.name)}"><h2>'
            f'<span style="color:{_PHASE_COLOUR[m.phase]}">{e(str(m.phase))}</span> '
            f"{e(m.check.name)}</h2><p>{e(m.check.description)} <span class=\"muted\">"
            f"({e(what)})</span></p>{legend}{''.join(charts)}"
            f"<p><code>{e(shown_query(m))}</code></p></section>"
        )
    skipped = "".join(
        f'<tr><td class="phase muted">Skipped</td><td>{e(name)}</td><td></td><td>{e(why)}</td>'
        "</tr>"
        for name, _, why in (reason.partition(": ") for reason in verdict.skipped)
    )
    sides = f"preview {e(str(verdict.preview))} vs active {e(str(verdict.active))}"
    thresholds = (f"pass &ge; {verdict.checks.score.pass_:g}, "
                  f"marginal &ge; {verdict.checks.score.marginal:g}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(str(verdict.phase))}: {sides}</title>
<style>{_CSS}</style></head>
<body>
<div class="verdict" style="background:{colour}">
<h1>{e(str(verdict.phase))}</h1>
<div>score {e(score)} ({thresholds}) &middot; {sides}
&middot; window {e(format_duration(verdict.window))} ending {e(_time(verdict.end))}</div>
<div>{e(verdict.message)}</div>
</div>
<table><tr><th>phase</th><th>check</th><th>values</th><th>why</th></tr>
{''.join(rows)}{skipped}</table>
{''.join(sections)}
</body></html>
"""
