"""A scenario without isolation streams says so in its report, through pytester.

The plugin runs in-process on a one-step feature whose step needs no cluster: the streams start
only once a step has brought the demo system up, which these scenarios never do.
"""

from __future__ import annotations

import textwrap

import pytest

STEPS = """
from pytest_bdd import given, scenarios

scenarios("features")


@given("a Rollout of the scenario's own")
def _() -> None:
    pass
"""


def run(pytester: pytest.Pytester, tags: str) -> pytest.RunResult:
    pytester.makepyfile(test_runbooks=STEPS)
    (pytester.path / "features").mkdir()
    feature = f"""
        Feature: Fields
          {tags}
          Scenario: Own Rollout
            Given a Rollout of the scenario's own
        """
    (pytester.path / "features" / "fields.feature").write_text(textwrap.dedent(feature).lstrip())
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "ignore", "-rP")


def test_a_scenario_without_the_demo_system_is_reported_not_watched(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, "")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*bgh isolation*", "not watched: no demo system*"])


def test_a_quiet_scenario_is_reported_not_watched(pytester: pytest.Pytester) -> None:
    result = run(pytester, "@quiet")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*bgh isolation*", "not watched: @quiet*"])


def test_a_readonly_scenario_has_no_isolation_note(pytester: pytest.Pytester) -> None:
    result = run(pytester, "@readonly")
    result.assert_outcomes(passed=1)
    assert "bgh isolation" not in result.stdout.str()
