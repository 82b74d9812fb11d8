"""Steps and hooks about who answered: the isolation invariants, watched in every runbook.

Every scenario that changes the demo system (not ``@readonly``, nor ``@quiet``: one that measures
the absence of traffic, which the streams would be) gets two background streams once its
first step has brought the demo system up: users through gateway A's active Service and testers
through its preview Service, judged against the Rollouts' selectors as they were when each answer
came (harness/isolation.py). At the end of the scenario every answer is judged; a violation fails
the scenario with the offending chains, and ``provenance.json`` (every answer's hops, the
selectors over time) is written beside the scenario's other artifacts. A scenario that never
brings the demo system up (the blue-green field runbooks: a Rollout of their own, with no gateway A
in front of it) has nothing to stream through; its report says it was not watched.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pytest_bdd import then

from harness.errors import ConfigError
from harness.isolation import Isolation, by_service, figures, sample, write_provenance
from harness.probes import Side
from harness.provenance import Verdict
from harness.targets.kind import KindTarget
from harness.timeline import timeline_svg
from steps.plugin import DemoSystem, _feature_of, _slug

_ISOLATION = pytest.StashKey[Isolation]()
_VERDICT = pytest.StashKey[Verdict]()
_NOT_WATCHED = pytest.StashKey[str]()
_NO_MESH = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("bgh").addoption(
        "--bgh-provenance-figures",
        default=None,
        help="append each scenario's isolation figures to this JSON-lines file "
        "(benchmarks/bench_provenance.py reads it)",
    )


@pytest.hookimpl(trylast=True)
def pytest_bdd_after_step(request: pytest.FixtureRequest) -> None:
    """Start the streams once the scenario's first step has the demo system up; after the
    plugin has recorded that step, so its duration and probes in the runbook report are its own,
    not the streams' start."""
    node = request.node
    if _ISOLATION in node.stash or any(node.get_closest_marker(m) for m in ("readonly", "quiet")):
        return
    if "demo" not in request.fixturenames:
        return
    demo: DemoSystem = request.getfixturevalue("demo")
    isolation = Isolation(demo.kube, demo.gateway, unjudged=_unjudged(request, demo))
    node.stash[_ISOLATION] = isolation
    isolation.start(isolated_first=True)


def _unjudged(request: pytest.FixtureRequest, demo: DemoSystem) -> dict[int, str]:
    """Invariant 2 (a preview chain reaches the release's previews) rests on mesh routing: on a
    kind cluster without Istio, gateway A's preview pods call B's and C's active Services like
    everyone else, so it is not judged there, and the report says so. Asked of the cluster once
    per run."""
    if not isinstance(demo.target, KindTarget):
        return {}
    config = request.config
    if _NO_MESH not in config.stash:
        missing = demo.target.missing_addon("istio")
        config.stash[_NO_MESH] = f"no mesh routing: {missing}" if missing else ""
    why = config.stash[_NO_MESH]
    return {2: why} if why else {}


def pytest_bdd_after_scenario(request: pytest.FixtureRequest) -> None:
    """Judge every answer; a violation fails a scenario that has not failed already."""
    isolation = request.node.stash.get(_ISOLATION, None)
    if isolation is None:
        _note_not_watched(request)
        return
    verdict = isolation.stop()
    request.node.stash[_VERDICT] = verdict
    failing = sys.exc_info()[1] is not None
    _record_figures(request, verdict)
    if verdict.violations or failing:
        path = _artifacts(request) / "provenance.json"
        write_provenance(verdict, isolation.history, path)
        if not failing:
            raise AssertionError(
                f"isolation invariants broken (chains in {path}):\n{verdict.report()}"
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """The verdict's summary in the report; in the HTML report, the answers over time."""
    report = yield
    not_watched = item.stash.get(_NOT_WATCHED, None)
    if report.when == "call" and not_watched is not None:
        report.sections.append(("bgh isolation", f"not watched: {not_watched}"))
    verdict = item.stash.get(_VERDICT, None)
    isolation = item.stash.get(_ISOLATION, None)
    if report.when != "call" or verdict is None or isolation is None:
        return report
    report.sections.append(("bgh isolation", verdict.summary()))
    if item.config.pluginmanager.has_plugin("html"):
        from pytest_html import extras

        svg = timeline_svg(verdict, isolation.history)
        report.extras = [*getattr(report, "extras", []), extras.html(svg)]
    return report


def _note_not_watched(request: pytest.FixtureRequest) -> None:
    """Say why a scenario that ran to its end had no streams, unless it is @readonly (it
    changes nothing); one that failed first says why it failed instead."""
    node = request.node
    if node.get_closest_marker("readonly") is not None or sys.exc_info()[1] is not None:
        return
    if node.get_closest_marker("quiet") is not None:
        node.stash[_NOT_WATCHED] = "@quiet (no background traffic)"
    elif "demo" not in request.fixturenames:
        node.stash[_NOT_WATCHED] = "no demo system (a Rollout of the scenario's own, no gateway A)"


def _artifacts(request: pytest.FixtureRequest) -> Path:
    item = request.node
    base = Path(item.config.getoption("bgh_artifacts"))
    return base / _feature_of(item) / _slug(item.name.removeprefix("test_"))


def _record_figures(request: pytest.FixtureRequest, verdict: Verdict) -> None:
    target = request.config.getoption("bgh_provenance_figures")
    if not target:
        return
    line = {"feature": _feature_of(request.node), "scenario": request.node.name}
    with Path(target).open("a") as out:
        out.write(json.dumps({**line, **figures(verdict)}) + "\n")


@pytest.fixture
def isolation(request: pytest.FixtureRequest) -> Isolation:
    """The scenario's background streams (started by its first step)."""
    found: Isolation | None = request.node.stash.get(_ISOLATION, None)
    if found is None:
        raise ConfigError(
            "no isolation streams in this scenario: they start after a first step that brings "
            "the demo system up, and never in @readonly or @quiet scenarios"
        )
    return found


@then("users never reached preview")
def _(isolation: Isolation) -> None:
    verdict = isolation.verdict()
    assert verdict.checked(Side.ACTIVE) > 0, f"no user answer to judge: {verdict.summary()}"
    assert [v.describe() for v in verdict.of(1, 3)] == [], verdict.summary()


@then("every preview answer came from the release")
def _(isolation: Isolation) -> None:
    verdict = isolation.verdict()
    if not verdict.judged(2):
        pytest.skip(f"invariant 2 not judged: {isolation.unjudged[2]}")
    assert verdict.checked(Side.PREVIEW) > 0, f"no preview answer to judge: {verdict.summary()}"
    assert [v.describe() for v in verdict.of(2)] == [], verdict.summary()


@then("every answer through active and preview came from its own side")
def _(demo: DemoSystem) -> None:
    verdict = sample(demo.kube, demo.gateway)
    per_service = by_service(verdict)
    assert min(verdict.checked(s) for s in (Side.ACTIVE, Side.PREVIEW)) > 0, verdict.summary()
    assert [v.describe() for v in verdict.violations] == [], f"per service: {per_service}"
