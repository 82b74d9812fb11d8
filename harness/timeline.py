"""Answers over time as an SVG: one row per side and service, each answer coloured by the
ReplicaSet that gave it, each active Service switch marked, each violation flagged.

Pure: a ``Verdict`` and its ``History`` in, markup out (the runbook plugin puts it in the HTML
report). Every label is escaped; nothing is fetched.
"""

from __future__ import annotations

from html import escape

from harness.probes import SERVICES, Side
from harness.provenance import History, Verdict

PALETTE = ("#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f")
WIDTH, LEFT, ROW, TOP = 900, 150, 14, 24


def timeline_svg(verdict: Verdict, history: History) -> str:
    """The SVG; a short note instead when there is nothing to draw."""
    answered = [p for p in verdict.provenance if p.hops]
    if not answered:
        return "<p>no answer with hops to draw</p>"
    start = min(p.answer.at for p in answered)
    end = max(p.answer.at + p.answer.latency for p in answered)
    span = max(end - start, 1e-3)

    def x(at: float) -> float:
        return LEFT + (WIDTH - LEFT - 10) * (at - start) / span

    rows = [
        (side, service) for side in (Side.ACTIVE, Side.PREVIEW) for service in SERVICES.values()
    ]
    colours: dict[tuple[str, str], str] = {}
    legend: dict[str, str] = {}
    marks: list[str] = []
    flagged = {id(v.provenance.answer) for v in verdict.violations}
    for provenance in answered:
        for hop in provenance.hops:
            if hop.origin is None:
                continue
            key = (hop.origin.rollout, hop.origin.pod_template_hash)
            if key not in colours:
                colours[key] = PALETTE[len(colours) % len(PALETTE)]
                revision = "?" if hop.origin.revision is None else hop.origin.revision
                legend[colours[key]] = f"{key[0]} rev {revision} ({key[1]})"
            y = TOP + rows.index((provenance.answer.side, hop.service)) * ROW
            marks.append(
                f'<rect x="{x(provenance.answer.at):.1f}" y="{y}" width="2" height="{ROW - 3}" '
                f'fill="{colours[key]}"/>'
            )
        if id(provenance.answer) in flagged:
            marks.append(
                f'<text x="{x(provenance.answer.at):.1f}" y="{TOP - 4}" fill="#d00" '
                'font-size="10">▼</text>'
            )
    for switch in history.switches:
        if start <= switch.at <= end:
            marks.append(
                f'<line x1="{x(switch.at):.1f}" x2="{x(switch.at):.1f}" y1="{TOP - 10}" '
                f'y2="{TOP + len(rows) * ROW}" stroke="#d00" stroke-dasharray="3,2"/>'
                f'<text x="{x(switch.at) + 3:.1f}" y="{TOP - 12}" font-size="10" fill="#d00">'
                f"{escape(switch.rollout)} switch</text>"
            )
    labels = [
        f'<text x="4" y="{TOP + i * ROW + ROW - 4}" font-size="10">{side} {escape(service)}</text>'
        for i, (side, service) in enumerate(rows)
    ]
    legend_y = TOP + len(rows) * ROW + 16
    keys = [
        f'<rect x="{LEFT + i % 3 * 250}" y="{legend_y + i // 3 * 14 - 9}" width="10" height="10" '
        f'fill="{colour}"/><text x="{LEFT + i % 3 * 250 + 14}" y="{legend_y + i // 3 * 14}" '
        f'font-size="10">{escape(text)}</text>'
        for i, (colour, text) in enumerate(legend.items())
    ]
    height = legend_y + (len(legend) + 2) // 3 * 14 + 8
    axis = (
        f'<text x="{LEFT}" y="{height - 2}" font-size="9">0 s</text>'
        f'<text x="{WIDTH - 40}" y="{height - 2}" font-size="9">{span:.1f} s</text>'
    )
    body = "".join(labels + marks + keys) + axis
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height + 10}" '
        f'font-family="sans-serif">{body}</svg>'
    )
