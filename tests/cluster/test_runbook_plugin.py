"""The runbook plugin on the local target: an unknown Rollout in a feature is named with the
Rollouts that do exist, and a failed scenario leaves its artifacts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.settings import load_settings
from tests.cluster.conftest import Cluster

CHECKOUT = Path(__file__).resolve().parents[2]
BINDING = """
from pytest_bdd import scenarios

scenarios("features")
"""


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, feature: str
) -> pytest.RunResult:
    settings = load_settings()
    # pytester runs (and has already chdir'd) in a directory of its own: point it at this
    # checkout's target and tree.
    monkeypatch.setenv("BGH_STATE_DIR", str(CHECKOUT / settings.state_dir))
    monkeypatch.setenv("BGH_GITOPS_DIR", str(CHECKOUT / settings.gitops_dir))
    pytester.makepyfile(test_runbooks=BINDING)
    (pytester.path / "features").mkdir()
    (pytester.path / "features" / "typo.feature").write_text(textwrap.dedent(feature).lstrip())
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "ignore")


def test_an_unknown_rollout_lists_the_ones_there_and_leaves_artifacts(
    cluster: Cluster, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(
        pytester,
        monkeypatch,
        """
        Feature: Typo
          Scenario: One b too many
            Given the demo system is running
            When I promote "service-bb"
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ['*NotFound: Rollout "service-bb" not found in namespace "rb-*"; rollouts there: '
         "gateway-a, service-b, service-c.*"]
    )  # fmt: skip
    artifacts = Path(pytester.path) / ".artifacts" / "typo" / "one-b-too-many"
    assert (artifacts / "rollouts.yaml").is_file()
    assert "managedFields" not in (artifacts / "rollouts.yaml").read_text()
    assert sorted(p.name for p in (artifacts / "logs").iterdir())[0].startswith("gateway-a-")
    result.stdout.fnmatch_lines(["*bgh artifacts*", "artifacts: .artifacts/typo/one-b-too-many/"])
