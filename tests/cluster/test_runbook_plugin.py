"""The runbook plugin on the local target: an unknown Rollout in a feature is named with the
Rollouts that do exist, a failed scenario leaves its artifacts, and one whose demo system fails
to deploy leaves them too and no namespace behind (unless ``--bgh-keep-failed``)."""

from __future__ import annotations

import json
import os
import pwd
import re
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
    options: tuple[str, ...] = (),
) -> pytest.RunResult:
    settings = load_settings()
    # pytester runs (and has already chdir'd) in a directory of its own, with HOME there too:
    # point it at this checkout's target and tree, and Go at the user's module and build caches
    # (`bgh up` rebuilds the demo services, and the module proxy may be out of reach).
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    monkeypatch.setenv("GOPATH", os.environ.get("GOPATH") or str(home / "go"))
    monkeypatch.setenv("GOCACHE", os.environ.get("GOCACHE") or str(home / ".cache" / "go-build"))
    monkeypatch.setenv("BGH_STATE_DIR", str(CHECKOUT / settings.state_dir))
    monkeypatch.setenv("BGH_GITOPS_DIR", str(gitops_dir or CHECKOUT / settings.gitops_dir))
    pytester.makepyfile(test_runbooks=BINDING)
    (pytester.path / "features").mkdir()
    (pytester.path / "features" / "typo.feature").write_text(textwrap.dedent(feature).lstrip())
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "ignore", *options)


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


# An object the API server refuses (a ConfigMap name is a DNS subdomain: no capitals or "_"),
# applied with the rest of the chart after the scenario's namespace was made.
REFUSED = """apiVersion: v1
kind: ConfigMap
metadata:
  name: Refused_{{ .Release.Name }}
data: {}
"""


@pytest.mark.parametrize("keep", [False, True], ids=["deleted", "kept"])
def test_a_scenario_whose_deploy_fails_leaves_artifacts_and_its_namespace_only_on_request(
    cluster: Cluster,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    keep: bool,
) -> None:
    """Defect: a deploy failing in the ``demo`` fixture left its rb-* namespace behind (the
    fixture's code after ``yield`` never ran). The Given step that needs the fixture fails, as
    any step does, with the API server's refusal and the artifacts."""
    tree = tmp_path / "gitops"
    shutil.copytree(CHECKOUT / "gitops", tree)
    (tree / "charts" / "demo-service" / "templates" / "refused.yaml").write_text(REFUSED)
    result = run(
        pytester,
        monkeypatch,
        """
        Feature: Refused
          Scenario: The chart holds an object the API server refuses
            Given the demo system is running
            When I promote "service-b"
        """,
        gitops_dir=tree,
        options=("--bgh-keep-failed",) if keep else (),
    )
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "Refused_" in output  # the API server's refusal, as the error
    artifacts = Path(pytester.path) / ".artifacts" / "typo"
    scenario = artifacts / "the-chart-holds-an-object-the-api-server-refuses"
    assert (scenario / "rollouts.yaml").is_file()
    assert (scenario / "events.txt").is_file()
    said = re.search(r"namespace (rb-[0-9a-f]{8}): (kept|deleted)", output)
    assert said is not None, output
    namespace = said.group(1)
    found = cluster.kubectl("get", "namespace", namespace, "-o", "json", "--ignore-not-found")
    terminating = bool(found) and "deletionTimestamp" in json.loads(found)["metadata"]
    try:
        if keep:
            assert said.group(2) == "kept"
            assert found and not terminating, f"namespace {namespace} was not kept"
            assert f"kubectl delete namespace {namespace}" in output
        else:
            assert said.group(2) == "deleted"
            assert not found or terminating, f"namespace {namespace} was left behind"
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


def test_a_chart_that_does_not_render_fails_the_scenario_with_its_message_and_artifacts(
    cluster: Cluster, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tree = tmp_path / "gitops"
    shutil.copytree(CHECKOUT / "gitops", tree)
    broken = '{{ fail "this chart is broken on purpose" }}\n'
    (tree / "charts" / "demo-service" / "templates" / "broken.yaml").write_text(broken)
    result = run(
        pytester,
        monkeypatch,
        """
        Feature: Broken
          Scenario: The chart does not render
            Given the demo system is running
        """,
        gitops_dir=tree,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*does not render*",
            "*this chart is broken on purpose*",
            "*bgh artifacts*",
            "namespace rb-*: deleted at teardown (--bgh-keep-failed keeps it)",
        ]
    )
    assert (Path(pytester.path) / ".artifacts" / "typo" / "the-chart-does-not-render").is_dir()
