"""The library calls docs/library.md offers for writing one's own runbooks, on the real
controller: a namespace and a multi-document manifest through the library, the stable revision,
pods per revision, a Rollout's AnalysisRuns and the wait for one to be Running."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import yaml

from harness.bluegreen import BlueGreen, release
from harness.kubectl import Kubectl
from harness.rollouts import EPHEMERAL_METADATA, AnalysisPhase, Gate, Phase, Rollouts, phase_of
from tests.cluster.conftest import Cluster


@pytest.fixture
def library_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace made by ``Kubectl.ensure_namespace`` (twice: the second is a no-op)."""
    name = f"lib-{uuid.uuid4().hex[:8]}"
    kubectl: Kubectl = cluster.target.kubectl()
    kubectl.ensure_namespace(name)
    kubectl.ensure_namespace(name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false")


def test_a_runbook_of_ones_own_through_the_library(
    cluster: Cluster, library_namespace: str
) -> None:
    web = BlueGreen("web", fields={"prePromotionAnalysis": "passes"})
    manifest = yaml.safe_dump_all(web.objects(prometheus_url=cluster.target.prometheus_url))
    cluster.target.kubectl().apply_manifest(
        manifest, namespace=library_namespace, source="web.yaml"
    )
    rollouts = Rollouts(cluster.target.kube(library_namespace), timeout=60)
    rollouts.wait_for_phase("web", Phase.HEALTHY)
    assert rollouts.stable_revision("web") == 1
    assert {r: len(pods) for r, pods in rollouts.pods_by_revision("web").items()} == {1: 2}
    assert rollouts.analysis_runs("web") == []  # none on the initial deploy

    release(rollouts, "web", "1.1.0")
    rollouts.wait_for_preview_revision("web", 2)  # its ReplicaSet may not exist yet
    # The template measures after a delay, so the run is Running for a while before it ends.
    run = rollouts.wait_for(
        "web",
        lambda r: r.pre_promotion_analysis is not None,
        expecting="a pre-promotion AnalysisRun",
    ).value.pre_promotion_analysis
    assert run is not None
    running = rollouts.wait_for_analysis_run_running(run.name)
    assert [r.name for r in rollouts.analysis_runs("web")] == [running.name]
    assert rollouts.wait_for_analysis("web", Gate.PRE_PROMOTION).status == AnalysisPhase.SUCCESSFUL
    rollouts.wait_for_phase("web", Phase.PAUSED)
    assert rollouts.stable_revision("web") == 1
    assert sorted(rollouts.pods_by_revision("web")) == [1, 2]


def test_settled_means_no_older_replica_set_keeps_its_ephemeral_role(
    cluster: Cluster, library_namespace: str
) -> None:
    """``wait_until_settled`` returns only once the controller has stripped the previous side's
    ``role`` from the older ReplicaSets, which it does a reconcile after reporting Healthy, so an
    undo right after copies a template without it. (The undo itself is not exercised here: the
    controller tells a rollback by the ReplicaSets' creation timestamps, whole seconds
    (rollout/sync.go isRollback), so two revisions made within one second, as here, pause
    instead of rolling back fast.)"""
    web = BlueGreen(
        "web",
        fields={"activeMetadata": "role=active", "previewMetadata": "role=preview"},
    )
    cluster.target.kubectl().apply_manifest(
        yaml.safe_dump_all(web.objects(prometheus_url=cluster.target.prometheus_url)),
        namespace=library_namespace,
        source="web.yaml",
    )
    rollouts = Rollouts(cluster.target.kube(library_namespace), timeout=60)
    rollouts.wait_for_phase("web", Phase.HEALTHY)
    release(rollouts, "web", "1.1.0")
    rollouts.wait_for_phase("web", Phase.PAUSED)
    rollouts.promote("web")

    [settled] = rollouts.wait_until_settled(["web"])

    assert phase_of(settled)[0] is Phase.HEALTHY
    stable = rollouts.read("web").stable_hash
    older = [rs for rs in rollouts.replica_sets("web") if rs.pod_template_hash != stable]
    assert older, "the previous ReplicaSet is kept (scaleDownDelaySeconds)"
    assert [rs.name for rs in older if EPHEMERAL_METADATA in rs.annotations] == []
