"""The runbook report, from a real run of the plugin: a small feature run by pytester in-process,
its probes going through a real gateway A (the component demo system on loopback), then the HTML
report opened in Debian's headless Chromium and judged by its pixels, and the Cucumber JSON read
as a CI tool would.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from steps.report import RESULTS, ScenarioRecord, StepRecord, collapse, render
from tests.component.analysis.test_report_in_chromium import count_colour, read_png, screenshot
from tests.component.conftest import Demo

PASSED_GREEN, FAILED_RED = "#2a7d2a", "#c0262d"

CONFTEST = """
import os

import pytest
from pytest_bdd import given, parsers, then

from harness.probes import Gateway, Side
from steps.plugin import watch


@pytest.fixture
def gateway(request):
    url = os.environ["REPORT_TEST_GATEWAY"]
    probes = Gateway(lambda side: url, timeout=2.0, request_timeout=1.0)
    watch(request.node, probes)
    return probes


@given("gateway A answers")
def _(gateway):
    gateway.wait_for_answers((Side.ACTIVE,))


@then(parsers.parse('the page shows "{text}"'))
def _(gateway, text):
    gateway.wait_for_page(Side.ACTIVE, text, within=0.5)
"""

FEATURE = """
Feature: Greeting
  Scenario: The build's greeting is on the page
    Given gateway A answers
    Then the page shows "Hello &lt;blue&gt;"

  Scenario: A greeting the build does not have
    Given gateway A answers
    Then the page shows "Happy Easter"
    And the page shows "Hello &lt;blue&gt;"
"""


@pytest.fixture
def ran(pytester: pytest.Pytester, demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPORT_TEST_GATEWAY", demo.a.http)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_runbooks='from pytest_bdd import scenarios\nscenarios("features")\n')
    (pytester.path / "features").mkdir()
    (pytester.path / "features" / "greeting.feature").write_text(textwrap.dedent(FEATURE))
    reports = pytester.path / "reports"
    reports.mkdir()  # as the runner does: pytest-bdd's --cucumber-json does not make it
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-W", "ignore",
        f"--bgh-report={reports / 'runbooks.html'}",
        f"--cucumber-json={reports / 'runbooks.cucumber.json'}",
        f"--junitxml={reports / 'runbooks.xml'}",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    # Each scenario's name and result as it finishes, in order.
    result.stdout.fnmatch_lines(
        [
            "*bgh: PASSED  Greeting / The build's greeting is on the page  (*s)",
            "*bgh: FAILED  Greeting / A greeting the build does not have  (*s)",
        ]
    )
    return reports


def test_the_report_shows_feature_scenario_steps_probes_and_results(ran: Path) -> None:
    page = (ran / "runbooks.html").read_text(encoding="utf-8")
    assert "Runbooks: 1 passed, 1 failed in" in page
    assert page.count("<h2>Feature: Greeting</h2>") == 1
    assert "Scenario: The build&#x27;s greeting is on the page" in page
    # What the probes saw, under the step that probed.
    assert "active: HTTP 200 in" in page and "gateway-a=1.0.0 (gateway-a-5f6d-blue)" in page
    assert "active: page HTTP 200, does not show &#x27;Happy Easter&#x27;" in page
    # The failed step, then the one that never ran.
    failed = page.index('class="step failed"')
    assert page.index("the page shows &quot;Happy Easter&quot;") > failed
    assert page.index('class="step not-run"') > failed
    assert "ProbeError: gateway A&#x27;s page through active did not show" in page


def test_cucumber_json_has_each_step_with_status_and_duration(ran: Path) -> None:
    (feature,) = json.loads((ran / "runbooks.cucumber.json").read_text())
    assert feature["name"] == "Greeting"
    statuses = {
        element["name"]: [step["result"]["status"] for step in element["steps"]]
        for element in feature["elements"]
    }
    assert statuses["The build's greeting is on the page"] == ["passed", "passed"]
    assert statuses["A greeting the build does not have"][:2] == ["passed", "failed"]
    durations = [s["result"]["duration"] for e in feature["elements"] for s in e["steps"]]
    assert all(isinstance(d, int) and d >= 0 for d in durations)
    assert (ran / "runbooks.xml").is_file()


def test_the_report_in_chromium_shows_the_failed_scenario_open(ran: Path, tmp_path: Path) -> None:
    shot = Path(os.environ.get("BGH_REPORT_SCREENSHOT", tmp_path / "report.png"))
    screenshot(ran / "runbooks.html", shot, tmp_path / "profile")
    pixels = read_png(shot.read_bytes())
    # Badges: one green for the passed scenario, a red one for the failed scenario and its
    # failed step, green ones for its steps that passed: the failed scenario is laid out open.
    assert count_colour(pixels, PASSED_GREEN, tolerance=12) > 2 * 600
    assert count_colour(pixels, FAILED_RED, tolerance=12) > 2 * 600


def test_consecutive_identical_probe_answers_are_counted_once() -> None:
    lines = ["active: HTTP 502", "active: HTTP 502", "active: HTTP 200", "active: HTTP 502"]
    assert collapse(lines) == ["active: HTTP 502  (x2)", "active: HTTP 200", "active: HTTP 502"]


def test_a_report_of_nothing_says_no_scenario_ran() -> None:
    assert "Runbooks: no scenario ran in 0s" in render([])
    record = ScenarioRecord("F", "S", "skipped", 0.0, [StepRecord("Given", "x", 0.0, "not run")])
    assert "1 skipped" in render([record])
    assert set(RESULTS) >= {"passed", "failed", "skipped", "not run"}
