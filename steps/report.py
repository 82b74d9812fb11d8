"""The runbook report: feature → scenario → step, each step with its duration, its result and
what the probes through gateway A saw while it ran; a failed scenario with its message and links
to its artifacts. Written by the plugin at the end of a run (``--bgh-report``), one self-contained
HTML file that references nothing outside itself but the artifacts it links.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = ("passed", "failed", "error", "xfailed", "skipped", "not run")


@dataclass
class StepRecord:
    """One step as it ran: ``result`` is passed, failed or not run (after an earlier failure)."""

    keyword: str
    name: str
    seconds: float
    result: str
    probes: list[str] = field(default_factory=list)


@dataclass
class ScenarioRecord:
    """One scenario as it ran, with the feature it belongs to."""

    feature: str
    name: str
    result: str  # passed, failed, error, xfailed (expected, steps/upstream.py), skipped
    seconds: float
    steps: list[StepRecord] = field(default_factory=list)
    message: str = ""
    artifacts: Path | None = None
    artifact_files: list[Path] = field(default_factory=list)

    @property
    def line(self) -> str:
        """The scenario's name and result on one line, as printed when it finishes."""
        return f"{self.result.upper():7} {self.feature} / {self.name}  ({self.seconds:.1f}s)"


def collapse(lines: Iterable[str]) -> list[str]:
    """Consecutive identical probe answers once each, with how many times they were seen."""
    out = []
    for line, run in itertools.groupby(lines):
        count = sum(1 for _ in run)
        out.append(f"{line}  (x{count})" if count > 1 else line)
    return out


_STYLE = """
body { font-family: sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 1.6rem; }
.scenario { border: 1px solid #ccc; border-left-width: .5rem; margin: .6rem 0;
  padding: .3rem .8rem; }
.scenario.passed { border-left-color: #2a7d2a; }
.scenario.failed, .scenario.error { border-left-color: #c0262d; }
.scenario.skipped { border-left-color: #999; }
.scenario.xfailed { border-left-color: #9a6700; }
summary { cursor: pointer; font-weight: bold; }
.result { display: inline-block; min-width: 4.5rem; padding: 0 .3rem; color: #fff;
  text-align: center; }
.result.passed { background: #2a7d2a; } .result.failed, .result.error { background: #c0262d; }
.result.skipped, .result.not-run { background: #888; }
.result.xfailed { background: #9a6700; }
ol.steps { list-style: none; padding-left: .4rem; }
ol.steps > li { margin: .25rem 0; }
.keyword { font-weight: bold; color: #5b2a86; } .seconds { color: #666; font-size: .9em; }
ul.probes { margin: .1rem 0 .2rem 1.2rem; color: #444; font-family: monospace; font-size: .85em; }
pre.message { background: #fbeaea; padding: .5rem; white-space: pre-wrap; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _step(step: StepRecord) -> str:
    probes = "".join(f"<li>{_e(line)}</li>" for line in collapse(step.probes))
    slug = step.result.replace(" ", "-")
    return (
        f'<li class="step {slug}"><span class="result {slug}">{_e(step.result)}</span> '
        f'<span class="keyword">{_e(step.keyword)}</span> {_e(step.name)} '
        f'<span class="seconds">{step.seconds:.1f}s</span>'
        + (f'<ul class="probes">{probes}</ul>' if probes else "")
        + "</li>"
    )


def _scenario(scenario: ScenarioRecord) -> str:
    failed = scenario.result in ("failed", "error")
    parts = [
        f'<details class="scenario {scenario.result}"{" open" if failed else ""}>',
        f'<summary><span class="result {scenario.result}">{_e(scenario.result)}</span> '
        f'Scenario: {_e(scenario.name)} <span class="seconds">{scenario.seconds:.1f}s</span>'
        "</summary>",
        '<ol class="steps">' + "".join(_step(s) for s in scenario.steps) + "</ol>",
    ]
    if scenario.message:
        parts.append(f'<pre class="message">{_e(scenario.message)}</pre>')
    if scenario.artifacts is not None:
        links = "".join(
            f'<li><a href="{_e(path.resolve().as_uri())}">{_e(path.name)}</a></li>'
            for path in scenario.artifact_files
        )
        where = _e(scenario.artifacts.resolve().as_uri())
        parts.append(
            f'<p class="artifacts">artifacts: <a href="{where}">{_e(scenario.artifacts)}/</a></p>'
            f"<ul>{links}</ul>"
        )
    parts.append("</details>")
    return "".join(parts)


def counts_line(scenarios: Sequence[ScenarioRecord]) -> str:
    counts = {r: sum(1 for s in scenarios if s.result == r) for r in RESULTS}
    seconds = sum(s.seconds for s in scenarios)
    ran = ", ".join(f"{n} {r}" for r, n in counts.items() if n) or "no scenario ran"
    return f"{ran} in {seconds:.0f}s"


def render(scenarios: Sequence[ScenarioRecord], *, title: str = "Runbooks") -> str:
    """The report as one HTML page: features in the order they ran, their scenarios within."""
    features: dict[str, list[ScenarioRecord]] = {}
    for scenario in scenarios:
        features.setdefault(scenario.feature, []).append(scenario)
    body = [f"<h1>{_e(title)}: {_e(counts_line(scenarios))}</h1>"]
    for feature, members in features.items():
        body.append(f'<section class="feature"><h2>Feature: {_e(feature)}</h2>')
        body += [_scenario(s) for s in members]
        body.append("</section>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )
