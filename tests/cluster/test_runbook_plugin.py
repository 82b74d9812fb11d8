"""The runbook plugin on the local target: an unknown Rollout in a feature is named with the
Rollouts that do exist, and a failed scenario leaves its artifacts."""

from __future__ import annotations

import shutil
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml

from harness.settings import load_settings
from tests.cluster.conftest import Cluster

CHECKOUT = Path(__file__).resolve().parents[2]
BINDING = """
from pytest_bdd import scenarios

scenarios("features")
"""


def run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    feature: str,
    *,
    gitops_dir: Path | None = None,
) -> pytest.RunResult:
    settings = load_settings()
    # pytester runs (and has already chdir'd) in a directory of its own: point it at this
    # checkout's target and tree.
    monkeypatch.setenv("BGH_STATE_DIR", str(CHECKOUT / settings.state_dir))
    monkeypatch.setenv("BGH_GITOPS_DIR", str(gitops_dir or CHECKOUT / settings.gitops_dir))
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


def test_artifacts_keep_env_names_and_never_their_values(
    cluster: Cluster, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Service B's pods carry a credential in their env; the failed scenario's artifacts hold
    its pods, ReplicaSets and Rollouts, with the variable's name and without its value."""
    secret = f"postgres://bgh:{uuid.uuid4().hex}@db"
    tree = tmp_path / "gitops"
    shutil.copytree(CHECKOUT / "gitops", tree)
    values_file = tree / "charts" / "demo-service" / "values.yaml"
    values = yaml.safe_load(values_file.read_text())
    values["catalog"]["service-b"]["env"] = {"DATABASE_URL": secret}
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    result = run(
        pytester,
        monkeypatch,
        """
        Feature: Leak
          Scenario: A failure with a credential in the env
            Given the demo system is running
            When I promote "service-x"
        """,
        gitops_dir=tree,
    )
    result.assert_outcomes(failed=1)
    scenario = "a-failure-with-a-credential-in-the-env"
    artifacts = Path(pytester.path) / ".artifacts" / "typo" / scenario  # run() names it typo
    files = [path for path in artifacts.rglob("*") if path.is_file()]
    assert {"pods.yaml", "replicasets.yaml", "rollouts.yaml"} <= {path.name for path in files}
    assert [path.name for path in files if secret in path.read_text()] == []
    assert "DATABASE_URL" in (artifacts / "pods.yaml").read_text()
    assert secret not in result.stdout.str()
