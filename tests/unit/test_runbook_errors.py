"""Bad runbook input fails with a message naming what was wrong, pinned through pytester.

Each test writes a small feature file and runs the real plugin on it in-process. Where a test
needs no cluster, its conftest replaces the ``rollouts`` and ``gateway`` fixtures with ones that
fail if used: the error must come from the feature text, before anything touches a cluster.
"""

from __future__ import annotations

import textwrap

import pytest

NO_CLUSTER = """
import pytest

@pytest.fixture
def rollouts():
    raise AssertionError("this runbook error must be found before any cluster is used")

@pytest.fixture
def gateway():
    raise AssertionError("this runbook error must be found before any cluster is used")
"""

BINDING = """
from pytest_bdd import scenarios

scenarios("features")
"""


def run(pytester: pytest.Pytester, feature: str, *, cluster: bool = False) -> pytest.RunResult:
    pytester.makeconftest("" if cluster else NO_CLUSTER)
    pytester.makepyfile(test_runbooks=BINDING)
    (pytester.path / "features").mkdir()
    (pytester.path / "features" / "bad.feature").write_text(textwrap.dedent(feature).lstrip())
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "ignore")


def test_a_misspelt_phase_names_the_valid_words(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        Feature: Bad phase
          Scenario: Paws
            Then the rollout "service-b" becomes Paws
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ['*ConfigError: unknown phase "Paws"; expected one of Healthy, Progressing, Paused, '
         "Degraded.*"]
    )  # fmt: skip
    assert "Step definition is not found" not in result.stdout.str()


def test_a_step_without_definition_names_the_step_and_feature(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        Feature: Teleport
          Scenario: Beam it
            When I teleport "service-b" to production
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ['*StepDefinitionNotFoundError: Step definition is not found: When '
         '"I teleport "service-b" to production"*Line 3 in scenario "Beam it"*']
    )  # fmt: skip


def test_a_malformed_feature_file_names_the_file_and_line(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        Feature: Broken
          Scenario: Steps before their scenario
            Given the demo system is running
          Examples without outline
            | a |
        """,
    )
    assert result.ret != 0
    output = result.stdout.str()
    assert "bad.feature" in output
    assert "(4:" in output or "line 4" in output.lower(), output[-2000:]


def test_an_unknown_side_names_the_valid_ones(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        Feature: Bad side
          Scenario: Green
            Then gateway A sees "service-b" at version "1.1.0" on green
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ['*ConfigError: unknown side "green"; expected one of active, preview*']
    )


def test_a_malformed_version_list_names_the_expected_form(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        Feature: History
          Scenario: Unquoted
            Then the revision history of "gateway-a" shows versions 1.0.0, 1.1.0
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ConfigError: versions '1.0.0, 1.1.0': expected quoted versions, e.g. \"1.0.0\", "
         '"1.1.0"*']
    )  # fmt: skip


def test_an_unknown_analysis_gate_names_the_valid_ones(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        Feature: Bad gate
          Scenario: Mid-promotion
            Then the mid-promotion analysis of "service-b" is Failed
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ['*ConfigError: unknown analysis gate "mid-promotion"; expected one of pre-promotion, '
         "post-promotion*"]
    )
