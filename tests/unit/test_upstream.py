"""The @upstream runbooks: which controller releases still have each bug, and how pytest reports
a replayed bug (strict expected failure), pinned through pytester with the real plugin."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import ConfigError
from harness.runner import RunSummary, pytest_argv, read_junit
from harness.settings import load_settings
from harness.targets import target_for
from harness.upgrade import Column, UpgradeReport
from harness.upstream import ISSUES, UpstreamIssue, issue_for_marker

STEPS = """
from pytest_bdd import then

from harness.errors import RolloutFailed

@then("the bug shows")
def _():
    assert "kept" == "scaled down"

@then("the bug is gone")
def _():
    pass

@then("the rollout goes Degraded instead")
def _():
    raise RolloutFailed("Rollout web: Healthy", reason="Degraded", elapsed=1.0, last_seen="-")

@then("something unrelated breaks")
def _():
    raise RuntimeError("the runbook itself is broken")
"""


def run(pytester: pytest.Pytester, tags: str, step: str, *args: str) -> pytest.RunResult:
    pytester.makeconftest(STEPS)
    pytester.makepyfile(test_runbooks='from pytest_bdd import scenarios\nscenarios("features")\n')
    (pytester.path / "features").mkdir(exist_ok=True)
    feature = f"""
        {tags}
        Feature: A replayed upstream bug
          Scenario: The bug
            Then {step}
        """
    (pytester.path / "features" / "bug.feature").write_text(textwrap.dedent(feature).lstrip())
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "ignore", "-rxX", *args)


def test_an_open_issue_is_open_in_every_release() -> None:
    issue = UpstreamIssue(1992, "kept")
    assert issue.is_open_in("v1.9.3") and issue.is_open_in("v1.10.2")
    assert "open upstream" in issue.reason("v1.10.2")


def test_a_fixed_issue_is_open_only_before_its_fix() -> None:
    issue = UpstreamIssue(4073, "lost", fixed_in="v1.10.0")
    assert issue.is_open_in("v1.9.3")
    assert not issue.is_open_in("v1.10.0") and not issue.is_open_in("v1.10.2")


def test_a_tag_naming_an_unknown_issue_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"@argo_rollouts_9 names no known upstream issue"):
        issue_for_marker("argo_rollouts_9")
    assert issue_for_marker("slow") is None
    assert issue_for_marker("argo_rollouts_4073") is ISSUES[4073]


def test_a_release_that_is_not_vxyz_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"expected vX.Y.Z"):
        UpstreamIssue(1, "x", fixed_in="1.10").is_open_in("v1.9.3")


def test_a_bug_that_shows_is_an_expected_failure_naming_the_issue(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, "@upstream @argo_rollouts_1992", "the bug shows")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*argoproj/argo-rollouts#1992 (open upstream*"])


def test_a_bug_that_no_longer_shows_fails_the_run(pytester: pytest.Pytester) -> None:
    result = run(pytester, "@upstream @argo_rollouts_1992", "the bug is gone")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*argoproj/argo-rollouts#1992*"])


def test_a_wait_that_saw_the_rollout_degraded_counts_as_the_bug(pytester: pytest.Pytester) -> None:
    result = run(pytester, "@upstream @argo_rollouts_1992", "the rollout goes Degraded instead")
    result.assert_outcomes(xfailed=1)


def test_an_unrelated_error_is_not_taken_for_the_bug(pytester: pytest.Pytester) -> None:
    result = run(pytester, "@upstream @argo_rollouts_1992", "something unrelated breaks")
    result.assert_outcomes(failed=1)


def test_a_fixed_bug_must_pass_on_a_release_with_the_fix(pytester: pytest.Pytester) -> None:
    fixed = run(pytester, "@upstream @argo_rollouts_4073", "the bug shows",
                "--bgh-rollouts-version=v1.10.2")  # fmt: skip
    fixed.assert_outcomes(failed=1)
    older = run(pytester, "@upstream @argo_rollouts_4073", "the bug shows",
                "--bgh-rollouts-version=v1.9.3")  # fmt: skip
    older.assert_outcomes(xfailed=1)
    older.stdout.fnmatch_lines(
        ["*argoproj/argo-rollouts#4073 (fixed in v1.10.0; controller v1.9.3)*"]
    )


def test_an_issue_not_reproduced_here_is_expected_to_fail_nowhere() -> None:
    issue = UpstreamIssue(2824, "aborted again", not_reproduced="the retry works")
    assert issue.is_open_in("v1.10.2")
    assert not issue.fails_on("v1.9.3") and not issue.fails_on("v1.10.2")
    assert UpstreamIssue(1992, "kept").fails_on("v1.10.2")


def test_the_runbook_of_an_issue_not_reproduced_is_a_plain_test(
    pytester: pytest.Pytester,
) -> None:
    """#2824 is open upstream but not reproduced here: its runbook pins the expected behaviour,
    so a pass is a pass and the bug showing is a plain failure."""
    assert ISSUES[2824].not_reproduced
    passed = run(pytester, "@upstream @argo_rollouts_2824", "the bug is gone")
    passed.assert_outcomes(passed=1)


def test_the_bug_showing_in_a_runbook_not_reproduced_before_fails_it(
    pytester: pytest.Pytester,
) -> None:
    shows = run(pytester, "@upstream @argo_rollouts_2824", "the bug shows")
    shows.assert_outcomes(failed=1)


def test_an_unknown_issue_tag_stops_the_run_before_anything_runs(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, "@upstream @argo_rollouts_9", "the bug is gone")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*@argo_rollouts_9 names no known upstream issue*"])


def test_the_junit_report_tells_an_expected_failure_from_a_skip(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    junit = tmp_path / "runbooks.xml"
    run(pytester, "@upstream @argo_rollouts_1992", "the bug shows", f"--junitxml={junit}")
    [outcome] = read_junit(junit)
    assert outcome.result == "xfailed"
    assert outcome.message.startswith("argoproj/argo-rollouts#1992 (open upstream")


def test_bgh_run_passes_the_controller_release_to_the_runbooks() -> None:
    target = target_for(load_settings(target="local", rollouts_version="v1.9.3"))
    argv = pytest_argv(target, reports=Path("r"), artifacts=Path("a"))
    assert "--bgh-rollouts-version=v1.9.3" in argv


@pytest.mark.parametrize("command", ["run", "up"])
def test_rollouts_version_names_the_pinned_builds_when_unknown(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--rollouts-version", "v1.8.0"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # rich wraps lines
    assert "--rollouts-version='v1.8.0'" in said
    assert "no pinned build of Argo Rollouts v1.8.0; expected one of ('v1.10.2', 'v1.9.3')" in said


@pytest.mark.parametrize("command", ["run", "up"])
def test_rollouts_version_is_refused_off_the_local_target(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--target", "kind", "--rollouts-version", "v1.9.3"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # rich wraps lines
    assert "--rollouts-version is for the local target; the kind target runs" in said


def _column(pytester: pytest.Pytester, tmp_path: Path, version: str) -> Column:
    """One release's run of two runbooks (a replayed #4073 and an ordinary one) as the real
    plugin reports them in JUnit XML, read back as `bgh upgrade-report` reads it."""
    reports = tmp_path / version
    reports.mkdir()
    pytester.makeconftest(STEPS)
    pytester.makepyfile(test_runbooks='from pytest_bdd import scenarios\nscenarios("features")\n')
    (pytester.path / "features").mkdir(exist_ok=True)
    (pytester.path / "features" / "bug.feature").write_text(
        "@upstream @argo_rollouts_4073\nFeature: Lost promote\n  Scenario: Promoted at once\n"
        "    Then the bug shows\n"
    )
    (pytester.path / "features" / "plain.feature").write_text(
        "Feature: Plain\n  Scenario: Something that works\n    Then the bug is gone\n"
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", f"--bgh-rollouts-version={version}",
        f"--junitxml={reports / 'runbooks.xml'}",
    )  # fmt: skip
    summary = RunSummary(int(result.ret), reports / "runbooks.xml", reports / "runbooks.html",
                         tmp_path / "artifacts")  # fmt: skip
    summary.outcomes = read_junit(summary.junit)
    return Column(version, summary, up_seconds=1.0, wall_seconds=2.0)


def test_the_upgrade_report_names_what_changed_between_two_releases(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    before = _column(pytester, tmp_path, "v1.9.3")
    after = _column(pytester, tmp_path, "v1.10.2")
    report = UpgradeReport.of(before, after)
    # On v1.10.2 the bug "shows" here (the step fails): the fixed release must pass, so the
    # newer run is not green, and the scenario is the one that changed.
    assert [
        (name, old and old.result, new and new.result) for name, old, new in report.changed
    ] == [("promoted at once", "xfailed", "failed")]
    assert report.exit_code != 0
    assert report.lines()[0] == (
        "upgrade v1.9.3 -> v1.10.2: 1 of 2 scenarios changed; the v1.10.2 run is NOT green"
    )
    written = report.write(tmp_path)
    suites = ElementTree.parse(written["JUnit"]).getroot()
    assert [s.get("name") for s in suites] == ["argo-rollouts v1.9.3", "argo-rollouts v1.10.2"]
    assert [s.get("failures") for s in suites] == ["0", "1"]
    page = written["HTML"].read_text()
    assert '<tr class="changed"><td>promoted at once</td>' in page
    assert 'href="v1.9.3/runbooks.html"' in page


def test_an_upgrade_report_where_nothing_ran_is_never_green(tmp_path: Path) -> None:
    empty = RunSummary(5, tmp_path / "x.xml", tmp_path / "x.html", tmp_path)
    report = UpgradeReport.of(Column("v1.9.3", empty, 0, 0), Column("v1.10.2", empty, 0, 0))
    assert report.exit_code == 5
    assert "NOT green" in report.verdict()


def test_an_upgrade_report_needs_two_different_releases(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["upgrade-report", "--from", "v1.9.3", "--to", "v1.9.3"])
    assert result.exit_code == 2, result.output
    assert "--from and --to are both v1.9.3" in " ".join(result.output.split())
