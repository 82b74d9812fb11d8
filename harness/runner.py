"""Run the runbooks as users do (`bgh run`, `make demo`): pytest over features/, with reports.

The runbooks run in a pytest process of their own, with the ``bgh`` plugin's options, and write
a JUnit XML file, a Cucumber JSON file (pytest-bdd's ``--cucumber-json``, for CI tools that read
it) and the runbook report (``--bgh-report``: feature, scenario, step with its duration and
result, what each probe saw, links to a failed scenario's ``.artifacts/<feature>/<scenario>/``).
The summary printed afterwards is read back from the JUnit file, so it says exactly what the
report says.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.target import Target

ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ROOT / "tests" / "runbooks"
FEATURES = ROOT / "features"


@dataclass(frozen=True)
class Outcome:
    """One scenario's result as the JUnit report has it."""

    name: str
    result: str  # passed, failed, error, skipped, xfailed (an expected failure, steps/upstream.py)
    seconds: float
    message: str = ""


@dataclass
class RunSummary:
    """What a run of the runbooks did, and where its reports are."""

    exit_code: int
    junit: Path
    html: Path
    artifacts: Path
    cucumber: Path | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
        return counts

    @property
    def seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)

    def lines(self) -> list[str]:
        counts = ", ".join(f"{n} {result}" for result, n in sorted(self.counts.items()))
        lines = [f"runbooks: {counts or 'none ran'} in {self.seconds:.0f}s"]
        for outcome in self.outcomes:
            if outcome.result != "passed":
                lines.append(f"  {outcome.result.upper()} {outcome.name}: {outcome.message}")
        lines += [f"  report: {self.html}", f"  JUnit: {self.junit}"]
        if self.cucumber is not None:
            lines.append(f"  Cucumber JSON: {self.cucumber}")
        if any(o.result in ("failed", "error") for o in self.outcomes):
            lines.append(f"  artifacts of failed scenarios: {self.artifacts}/")
        return lines


def pytest_argv(
    target: Target,
    *,
    reports: Path,
    artifacts: Path,
    select: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The pytest command line that runs the runbooks against ``target``."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        str(RUNBOOKS),
        f"--rootdir={ROOT}",
        f"--bgh-target={target.name}",
        f"--bgh-rollouts-version={target.settings.rollouts_version}",
        f"--bgh-artifacts={artifacts}",
        f"--junitxml={reports / 'runbooks.xml'}",
        f"--cucumber-json={reports / 'runbooks.cucumber.json'}",
        f"--bgh-report={reports / 'runbooks.html'}",
        "-o",
        "junit_family=xunit2",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    if not target.owns_cluster:
        # Someone else's cluster: the runbooks use the namespace given, not one each.
        argv.append(f"--bgh-namespace={target.settings.namespace}")
    if select:
        argv += ["-k", select]
    return [*argv, *extra]


def run_runbooks(
    target: Target,
    *,
    reports: Path = Path("reports"),
    artifacts: Path = Path(".artifacts"),
    select: str | None = None,
    extra: Sequence[str] = (),
) -> RunSummary:
    """Run the runbooks in a pytest process (its output goes to this terminal)."""
    if not FEATURES.is_dir():
        raise ConfigError(f"no runbooks: {FEATURES} does not exist")
    reports = reports.resolve()
    artifacts = artifacts.resolve()
    reports.mkdir(parents=True, exist_ok=True)
    argv = pytest_argv(target, reports=reports, artifacts=artifacts, select=select, extra=extra)
    code = subprocess.run(argv, cwd=ROOT, check=False).returncode
    summary = RunSummary(
        code,
        reports / "runbooks.xml",
        reports / "runbooks.html",
        artifacts,
        cucumber=reports / "runbooks.cucumber.json",
    )
    summary.outcomes = read_junit(summary.junit)
    return summary


def read_junit(path: Path) -> list[Outcome]:
    """Each test case of a JUnit XML report, with its result and first message line."""
    try:
        tree = ElementTree.parse(path)
    except (OSError, ElementTree.ParseError):
        return []
    outcomes = []
    for case in tree.iter("testcase"):
        result, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                result = {"failure": "failed"}.get(tag, tag)
                if tag == "skipped" and found.get("type") == "pytest.xfail":
                    result = "xfailed"
                first = (found.get("message") or found.text or "").strip().splitlines()
                message = first[0][:300] if first else ""
                break
        name = case.get("name", "").removeprefix("test_").replace("_", " ")
        outcomes.append(Outcome(name, result, float(case.get("time") or 0.0), message))
    return outcomes
