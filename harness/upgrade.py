"""`bgh upgrade-report`: the runbooks on two Argo Rollouts releases, and what changed between them.

Each release runs on the local target in turn (its controller, plugin and CRDs, built once into
the cache: harness/builds.py), through the same runner as ``bgh run``, with its own reports
under ``<reports>/<version>/``. The two JUnit reports are then read back into one table,
scenario x release → passed / failed / xfailed (an ``@upstream`` runbook's expected failure,
steps/upstream.py) / skipped / error, with durations, written as text, JUnit XML and HTML:
the evidence a platform team attaches to a controller upgrade. Nothing here asserts or judges
beyond comparing the two reports; the verdict is whether the newer release's run is green.
"""

from __future__ import annotations

import html
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.runner import Outcome, RunSummary, run_runbooks
from harness.target import Target

# What counts as green in one release's column: an expected failure is the suite working.
GREEN = ("passed", "xfailed", "skipped")


@dataclass(frozen=True)
class Column:
    """One release's run: its summary, and how long bringing the target onto it took."""

    version: str
    summary: RunSummary
    up_seconds: float
    wall_seconds: float

    @property
    def by_name(self) -> dict[str, Outcome]:
        return {outcome.name: outcome for outcome in self.summary.outcomes}


@dataclass
class UpgradeReport:
    """The two runs side by side; ``rows`` in the order the scenarios ran."""

    before: Column
    after: Column
    rows: list[tuple[str, Outcome | None, Outcome | None]] = field(default_factory=list)

    @classmethod
    def of(cls, before: Column, after: Column) -> UpgradeReport:
        names = list(before.by_name)
        names += [name for name in after.by_name if name not in before.by_name]
        rows = [(name, before.by_name.get(name), after.by_name.get(name)) for name in names]
        return cls(before, after, rows)

    @property
    def changed(self) -> list[tuple[str, Outcome | None, Outcome | None]]:
        """The scenarios whose result differs between the two releases."""
        return [row for row in self.rows if _result(row[1]) != _result(row[2])]

    @property
    def exit_code(self) -> int:
        """0 when the newer release's run is green (every scenario passed, or failed as an
        @upstream runbook expects); otherwise that run's pytest exit code, or 1."""
        if not self.after.summary.outcomes:
            return self.after.summary.exit_code or 1  # nothing ran: never a pass
        if all(outcome.result in GREEN for outcome in self.after.summary.outcomes):
            return 0
        return self.after.summary.exit_code or 1

    def verdict(self) -> str:
        before, after = self.before.version, self.after.version
        changed = len(self.changed)
        green = "green" if self.exit_code == 0 else "NOT green"
        return (
            f"upgrade {before} -> {after}: {changed} of {len(self.rows)} scenarios changed; "
            f"the {after} run is {green}"
        )

    def lines(self) -> list[str]:
        """The table as text: the verdict, then one line per scenario, changed ones marked."""
        width = max((len(name) for name, _, _ in self.rows), default=8)
        head = f"  {'scenario':<{width}}  {self.before.version:>16}  {self.after.version:>16}"
        lines = [self.verdict(), head]
        for name, before, after in self.rows:
            mark = "*" if _result(before) != _result(after) else " "
            lines.append(f"{mark} {name:<{width}}  {_cell(before):>16}  {_cell(after):>16}")
        for column in (self.before, self.after):
            counts = ", ".join(f"{n} {r}" for r, n in sorted(column.summary.counts.items()))
            lines.append(
                f"  {column.version}: {counts or 'none ran'}; "
                f"scenarios {column.summary.seconds:.0f}s, "
                f"run {column.wall_seconds:.0f}s, target onto it {column.up_seconds:.0f}s; "
                f"reports {column.summary.html.parent}"
            )
        lines.append("  * the result differs between the two releases")
        return lines

    def junit(self) -> str:
        """JUnit XML: one test suite per release, each scenario a test case as its run had it,
        with the other release's result as a property; comparable in any CI's test view."""
        suites = ElementTree.Element("testsuites", name=f"upgrade {self.before.version} -> "
                                     f"{self.after.version}")  # fmt: skip
        for column, other in ((self.before, self.after), (self.after, self.before)):
            outcomes = column.summary.outcomes
            suite = ElementTree.SubElement(
                suites,
                "testsuite",
                name=f"argo-rollouts {column.version}",
                tests=str(len(outcomes)),
                failures=str(sum(o.result == "failed" for o in outcomes)),
                errors=str(sum(o.result == "error" for o in outcomes)),
                skipped=str(sum(o.result in ("skipped", "xfailed") for o in outcomes)),
                time=f"{column.summary.seconds:.3f}",
            )
            elsewhere = other.by_name
            for outcome in outcomes:
                case = ElementTree.SubElement(
                    suite,
                    "testcase",
                    classname=f"argo-rollouts {column.version}",
                    name=outcome.name,
                    time=f"{outcome.seconds:.3f}",
                )
                properties = ElementTree.SubElement(case, "properties")
                ElementTree.SubElement(
                    properties,
                    "property",
                    name=f"result on {other.version}",
                    value=_result(elsewhere.get(outcome.name)),
                )
                tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(
                    outcome.result
                )
                if outcome.result == "xfailed":
                    ElementTree.SubElement(
                        case, "skipped", type="pytest.xfail", message=outcome.message
                    )
                elif tag is not None:
                    ElementTree.SubElement(case, tag, message=outcome.message)
        ElementTree.indent(suites)
        return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"

    def html(self) -> str:
        """The table as one self-contained HTML page, each cell linking that run's report."""
        before, after = self.before, self.after
        head = (
            f"<tr><th>scenario</th><th>{_e(before.version)}</th><th>{_e(after.version)}</th></tr>"
        )
        body = []
        for name, old, new in self.rows:
            changed = ' class="changed"' if _result(old) != _result(new) else ""
            body.append(f"<tr{changed}><td>{_e(name)}</td>{_td(old, before)}{_td(new, after)}</tr>")
        totals = "".join(
            f"<li>{_e(c.version)}: scenarios {c.summary.seconds:.0f}s, run {c.wall_seconds:.0f}s, "
            f'target onto it {c.up_seconds:.0f}s; <a href="{_e(_relative(c.summary.html))}">'
            "runbook report</a></li>"
            for c in (before, after)
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{_e(self.verdict())}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{_e(self.verdict())}</h1><table>{head}{''.join(body)}</table>"
            f"<ul>{totals}</ul><p>Highlighted: the result differs between the two releases. "
            "xfailed: an @upstream runbook failing as the upstream issue it names predicts."
            "</p></body></html>\n"
        )

    def write(self, reports: Path) -> dict[str, Path]:
        """upgrade-report.txt, .xml and .html under ``reports``."""
        written = {
            "text": reports / "upgrade-report.txt",
            "JUnit": reports / "upgrade-report.xml",
            "HTML": reports / "upgrade-report.html",
        }
        written["text"].write_text("\n".join(self.lines()) + "\n", encoding="utf-8")
        written["JUnit"].write_text(self.junit(), encoding="utf-8")
        written["HTML"].write_text(self.html(), encoding="utf-8")
        return written


def run_upgrade_report(
    target_on: Callable[[str], Target],
    before: str,
    after: str,
    *,
    reports: Path,
    artifacts: Path = Path(".artifacts"),
    select: str | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> UpgradeReport:
    """Run the runbooks on ``before``, then on ``after`` (``target_on(version)`` is the local
    target on that release), and compare the two."""
    if before == after:
        raise ConfigError(f"--from and --to are both {before}; give two different releases")
    columns = []
    for version in (before, after):
        target = target_on(version)
        if target.name != "local":
            raise ConfigError(
                f"upgrade-report runs each release on the local target; the {target.name} "
                "target runs the release it was given"
            )
        started = time.monotonic()
        report(f"argo-rollouts {version}: bringing the local target onto it")
        up_seconds = target.up()
        report(f"argo-rollouts {version}: running the runbooks")
        summary = run_runbooks(
            target,
            reports=reports / version,
            artifacts=artifacts / version,
            select=select,
        )
        columns.append(Column(version, summary, up_seconds, time.monotonic() - started))
        for line in summary.lines():
            report(f"argo-rollouts {version}: {line.strip()}")
    reports.mkdir(parents=True, exist_ok=True)
    return UpgradeReport.of(*columns)


def _result(outcome: Outcome | None) -> str:
    return outcome.result if outcome is not None else "not run"


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return "not run"
    return f"{outcome.result} {outcome.seconds:.1f}s"


def _td(outcome: Outcome | None, column: Column) -> str:
    title = f' title="{_e(outcome.message)}"' if outcome is not None and outcome.message else ""
    css = _result(outcome).replace(" ", "-")
    return f'<td class="{css}"{title}>{_e(_cell(outcome))}</td>'


def _relative(path: Path) -> str:
    # The runbook reports sit under <reports>/<version>/, beside this page.
    return f"{path.parent.name}/{path.name}"


def _e(text: object) -> str:
    return html.escape(str(text))


_STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
    "tr.changed{background:#fff3cd}.passed{color:#1a7f37}.failed,.error{color:#cf222e}"
    ".xfailed{color:#9a6700}.skipped,.not-run{color:#666}"
)
