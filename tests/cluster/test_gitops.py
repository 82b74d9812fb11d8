"""The GitOps tree against the local target, with the real Argo Rollouts, Istio and Argo CD CRDs:
every rendered object and every Application passes a server-side dry run, and `deploy` brings the
demo system up and releases a bump to preview."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import gitops
from harness.delivery import DirectApply
from harness.errors import TargetError
from harness.gitops import GitOps
from harness.settings import load_settings
from harness.targets import target_for
from harness.targets.local import LocalTarget
from tests.cluster.conftest import Cluster

TREE = Path(__file__).parents[2] / "gitops"

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("env", ["prod", "qa"])
def test_environment_dry_runs_clean_against_the_real_crds(
    cluster: Cluster, namespace: str, env: str
) -> None:
    settings = load_settings(namespace=namespace)
    tree = GitOps(TREE)
    if isinstance(cluster.target, LocalTarget):
        cluster.target.establish_argocd_crds()  # `bgh up` leaves them to Argo CD's start
    kubectl = target_for(settings).kubectl()
    objects = tree.render(env, helm=gitops.helm_binary(settings), namespace=namespace)
    applied = kubectl.apply(objects, namespace=namespace, dry_run=True)
    applications = [*tree.application_objects(env), tree.root_application(env)]
    applied += kubectl.apply(applications, namespace=namespace, dry_run=True)
    lines = applied.splitlines()
    assert len(lines) == len(objects) + len(applications)
    assert all(line.endswith("serverside-applied (server dry run)") for line in lines)
    assert cluster.kubectl("get", "rollouts,services", "-n", namespace, "-o", "name") == ""


def test_a_field_the_schema_lacks_is_refused(cluster: Cluster, namespace: str) -> None:
    """The dry run is a real check: Istio's schema has no name on a TCP route."""
    settings = load_settings(namespace=namespace)
    objects = GitOps(TREE).render("qa", helm=gitops.helm_binary(settings))
    (service_c,) = [
        o for o in objects if (o["kind"], o["metadata"]["name"]) == ("VirtualService", "service-c")
    ]
    service_c["spec"]["tcp"][0]["name"] = "preview"
    with pytest.raises(TargetError, match=r"\.spec\.tcp\[0\]\.name: field not declared"):
        target_for(settings).kubectl().apply([service_c], namespace=namespace, dry_run=True)


def test_deploy_brings_qa_healthy_then_a_bump_waits_on_preview(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    shutil.copytree(TREE, tmp_path / "gitops")
    settings = load_settings(namespace=namespace, gitops_dir=tmp_path / "gitops")
    deployed = DirectApply(target_for(settings)).deploy("qa")
    assert [(d.name, d.phase) for d in deployed] == [
        ("gateway-a", "Healthy"),
        ("service-b", "Healthy"),
        ("service-c", "Healthy"),
    ]
    assert deployed[1].image == "ghcr.io/bluegreen-harness/service-b:1.0.0"

    GitOps(settings.gitops_dir).bump("qa", "service-b", "1.1.0")
    deployed = DirectApply(target_for(settings)).deploy("qa")
    assert [(d.name, d.phase) for d in deployed] == [
        ("gateway-a", "Healthy"),
        ("service-b", "Paused"),
        ("service-c", "Healthy"),
    ]
    assert deployed[1].image == "ghcr.io/bluegreen-harness/service-b:1.1.0"
    selectors = cluster.kubectl(
        "get", "service", "service-b", "service-b-preview", "-n", namespace,
        "-o", "jsonpath={.items[*].spec.selector.rollouts-pod-template-hash}",
    ).split()  # fmt: skip
    assert len(set(selectors)) == 2, "active and preview must be on different ReplicaSets"
