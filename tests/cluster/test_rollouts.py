"""Rollouts operations and waits against the real controller on the local target."""

from __future__ import annotations

import time

import pytest

from harness.errors import NotFound, RolloutFailed
from harness.kube import Kube
from harness.rollouts import Phase, Rollouts, phase_of
from tests.cluster.conftest import Cluster, blue_green_manifest

IMAGE = "ghcr.io/bluegreen-harness/service-b"


@pytest.fixture
def rollouts(cluster: Cluster, namespace: str) -> Rollouts:
    kube = Kube(kubeconfig=cluster.target.kubeconfig, context=None, namespace=namespace)
    return Rollouts(kube, timeout=60)


def deploy(
    cluster: Cluster, namespace: str, name: str, rollouts: Rollouts, *, scale_down_delay: int = 30
) -> None:
    manifest = blue_green_manifest(name, scale_down_delay=scale_down_delay)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=manifest)
    rollouts.wait_for_phase(name, Phase.HEALTHY)


def release(rollouts: Rollouts, name: str, version: str) -> None:
    rollouts.set_image(name, "app", f"{IMAGE}:{version}")
    rollouts.wait_for_phase(name, Phase.PAUSED)
    rollouts.promote(name)
    rollouts.wait_for_phase(name, Phase.HEALTHY)


def test_release_pauses_on_preview_then_promote_switches_active(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    deploy(cluster, namespace, "b", rollouts)
    rollouts.set_image("b", "app", f"{IMAGE}:1.1.0")
    paused = rollouts.wait_for_phase("b", Phase.PAUSED)
    assert phase_of(paused) == (Phase.PAUSED, "BlueGreenPause")
    active, preview = rollouts.revisions("b", active=1, preview=2)
    assert active.agree and preview.agree, (active, preview)
    assert active.service_selector != preview.service_selector

    rollouts.promote("b")
    rollouts.wait_for_phase("b", Phase.HEALTHY)
    active, preview = rollouts.revisions("b", active=2, preview=2)
    assert active.agree and preview.agree, (active, preview)


def test_abort_sends_active_back_to_stable_and_retry_goes_forward(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    deploy(cluster, namespace, "b", rollouts)
    rollouts.set_image("b", "app", f"{IMAGE}:1.1.0")
    rollouts.wait_for_phase("b", Phase.PAUSED)
    rollouts.abort("b")
    degraded = rollouts.wait_for_phase("b", Phase.DEGRADED)
    assert phase_of(degraded) == (
        Phase.DEGRADED,
        "RolloutAborted: Rollout aborted update to revision 2",
    )
    active, preview = rollouts.revisions("b", active=1, preview=2)
    assert active.agree and preview.agree, (active, preview)

    rollouts.retry("b")
    rollouts.wait_for_phase("b", Phase.PAUSED)
    assert rollouts.read("b").abort is False


def test_waiting_for_paused_on_an_aborted_rollout_fails_fast(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    deploy(cluster, namespace, "b", rollouts)
    rollouts.set_image("b", "app", f"{IMAGE}:1.1.0")
    rollouts.wait_for_phase("b", Phase.PAUSED)
    rollouts.abort("b")
    rollouts.wait_for_phase("b", Phase.DEGRADED)
    started = time.monotonic()
    with pytest.raises(RolloutFailed) as caught:
        rollouts.wait_for_phase("b", Phase.PAUSED, within=60)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f'Rollout "b" in namespace "{namespace}"' in message
    assert "Degraded: RolloutAborted: Rollout aborted update to revision 2" in message
    assert "last seen: phase=Degraded" in message


def test_undo_goes_back_to_the_previous_then_to_a_named_revision(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    """Old ReplicaSets scale down at once (delay 0), so each undo is a new release to preview."""
    deploy(cluster, namespace, "b", rollouts, scale_down_delay=0)
    release(rollouts, "b", "1.1.0")
    release(rollouts, "b", "1.2.0")
    assert rollouts.undo("b") == "rollout 'b' undo"
    rollouts.wait_for_phase("b", Phase.PAUSED)
    assert rollouts.read("b").images == {"app": f"{IMAGE}:1.1.0"}
    rollouts.promote("b")
    rollouts.wait_for_phase("b", Phase.HEALTHY)

    rollouts.undo("b", to_revision=1)
    rollouts.wait_for_phase("b", Phase.PAUSED)
    assert rollouts.read("b").images == {"app": f"{IMAGE}:1.0.0"}


def test_unknown_rollout_and_revision_are_named(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    deploy(cluster, namespace, "b", rollouts)
    with pytest.raises(NotFound) as caught:
        rollouts.read("bb")
    assert str(caught.value) == (
        f'Rollout "bb" not found in namespace "{namespace}"; rollouts there: b.'
    )
    with pytest.raises(NotFound, match="unable to find specified revision 9 in history"):
        rollouts.undo("b", to_revision=9)
    with pytest.raises(NotFound, match='unable to find container named "web"'):
        rollouts.set_image("b", "web", f"{IMAGE}:2")


def test_pause_holds_a_healthy_rollout_and_promote_releases_it(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    deploy(cluster, namespace, "b", rollouts)
    rollouts.pause("b")
    paused = rollouts.wait_for_phase("b", Phase.PAUSED)
    assert phase_of(paused) == (Phase.PAUSED, "manually paused")
    rollouts.promote("b")
    assert rollouts.wait_for_phase("b", Phase.HEALTHY).paused is False


def test_restart_is_observed_by_the_controller(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    deploy(cluster, namespace, "b", rollouts)
    restarted = rollouts.restart("b")
    assert restarted.restart_at is not None
    rollouts.wait_for(
        "b", lambda r: r.restarted_at == restarted.restart_at, expecting="restart done"
    )
    # Pods come back after the restart; the phase settles through a wait, not at once.
    assert rollouts.wait_for_phase("b", Phase.HEALTHY).restarted_at == restarted.restart_at


def test_revision_waits_follow_the_preview_then_the_active_service(
    cluster: Cluster, namespace: str, rollouts: Rollouts
) -> None:
    deploy(cluster, namespace, "b", rollouts)
    rollouts.set_image("b", "app", f"{IMAGE}:1.1.0")
    rollouts.wait_for_phase("b", Phase.PAUSED)
    assert rollouts.wait_for_preview_revision("b", 2).preview_selector != ""
    assert (
        rollouts.read("b").active_selector
        == rollouts.revisions("b", active=1, preview=2)[0].replica_set_hash
    )
    rollouts.promote("b")
    promoted = rollouts.wait_for_active_revision("b", 2)
    assert promoted.active_selector == promoted.preview_selector
    with pytest.raises(NotFound, match="has no ReplicaSet with revision 7; revisions: 1, 2"):
        rollouts.wait_for_active_revision("b", 7)
