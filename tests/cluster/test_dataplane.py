"""The local data plane under the real Rollouts controller: the demo system deployed from the
GitOps tree, probed through gateway A's active and preview Services.

A release bumps the root version with all three services, so preview A carries the new
``root-version`` label and the VirtualServices send it to B's and C's previews; active A keeps
the old label and reaches the active ones.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.delivery import DirectApply
from harness.gitops import GitOps
from harness.kube import (
    POD,
    REPLICA_SET,
    Kube,
    Pod,
    ReplicaSet,
    Resource,
    pod_from,
    replica_set_from,
)
from harness.probes import Gateway, Side, Traffic
from harness.rollouts import Phase, Rollouts
from harness.settings import Settings, load_settings
from harness.targets import target_for
from harness.targets.local import LocalTarget
from harness.targets.processes import running_from
from harness.waits import poll, wait_for
from tests.cluster.conftest import Cluster

TREE = Path(__file__).parents[2] / "gitops"
SERVICES = ("gateway-a", "service-b", "service-c")

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class Demo:
    settings: Settings
    rollouts: Rollouts
    gateway: Gateway

    def release(self, version: str, root_version: str) -> None:
        tree = GitOps(self.settings.gitops_dir)
        for service in SERVICES:
            tree.bump("qa", service, version, root_version=root_version)
        deployed = DirectApply(target_for(self.settings)).deploy("qa")
        assert [d.phase for d in deployed] == ["Paused"] * 3

    def versions(self, side: Side) -> dict[str, str]:
        answer = self.gateway.read(side)
        assert answer.ok, answer.describe()
        return dict(answer.versions)


@pytest.fixture
def demo(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Demo]:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("the data plane is the local target's; kind has kubelet and Istio")
    shutil.copytree(TREE, tmp_path / "gitops")
    settings = load_settings(namespace=namespace, gitops_dir=tmp_path / "gitops")
    deployed = DirectApply(target_for(settings)).deploy("qa")
    assert [d.phase for d in deployed] == ["Healthy"] * 3
    kube = Kube(kubeconfig=cluster.target.kubeconfig, context=None, namespace=namespace)
    demo = Demo(
        settings, Rollouts(kube, timeout=settings.deadlines.rollout), target_for(settings).gateway()
    )
    for side in Side:
        demo.gateway.wait_for_version(side, "gateway-a", "1.0.0")
    yield demo


def test_preview_shows_the_release_end_to_end_while_active_is_untouched(demo: Demo) -> None:
    demo.release("1.1.0", "v2.2.0")
    answer = demo.gateway.wait_for_version(Side.PREVIEW, "service-c", "1.1.0")
    assert dict(answer.versions) == dict.fromkeys(SERVICES, "1.1.0")
    answers = demo.gateway.read_versions()
    assert dict(answers[Side.PREVIEW].versions) == dict.fromkeys(SERVICES, "1.1.0")
    assert dict(answers[Side.ACTIVE].versions) == dict.fromkeys(SERVICES, "1.0.0")
    for service in SERVICES:
        rollout = demo.rollouts.read(service)
        assert answers[Side.PREVIEW].pods[service].startswith(f"{service}-{rollout.current_hash}-")
        assert answers[Side.ACTIVE].pods[service].startswith(f"{service}-{rollout.stable_hash}-")


def test_after_promote_both_sides_show_the_new_versions(demo: Demo) -> None:
    demo.release("1.1.0", "v2.2.0")
    for service in SERVICES:
        demo.rollouts.promote(service)
    for service in SERVICES:
        demo.rollouts.wait_for_phase(service, Phase.HEALTHY)
    demo.gateway.wait_for_version(Side.ACTIVE, "gateway-a", "1.1.0")
    assert demo.versions(Side.ACTIVE) == dict.fromkeys(SERVICES, "1.1.0")
    assert demo.versions(Side.PREVIEW) == dict.fromkeys(SERVICES, "1.1.0")


def test_after_abort_active_stays_on_the_old_versions(demo: Demo) -> None:
    demo.release("1.1.0", "v2.2.0")
    for service in SERVICES:
        demo.rollouts.abort(service)
    for service in SERVICES:
        demo.rollouts.wait_for_phase(service, Phase.DEGRADED)
    assert demo.versions(Side.ACTIVE) == dict.fromkeys(SERVICES, "1.0.0")


def _switched(traffic: Traffic) -> bool:
    return traffic.first("gateway-a", "1.1.0") is not None


def test_promote_under_steady_traffic_drops_nothing(demo: Demo) -> None:
    demo.release("1.1.0", "v2.2.0")
    demo.gateway.wait_for_version(Side.PREVIEW, "service-c", "1.1.0")
    with demo.gateway.steady_traffic(rps=100) as traffic:
        traffic.wait_until(lambda t: len(t.answers) >= 500, what="500 answers", within=30)
        for service in SERVICES:
            demo.rollouts.promote(service)
        traffic.wait_until(_switched, what="gateway-a 1.1.0 on active", within=30)
        after = len(traffic.answers)
        traffic.wait_until(
            lambda t: len(t.answers) >= max(1000, after + 300), what="1000 answers", within=30
        )
    assert len(traffic.answers) >= 1000
    assert traffic.failures == [], traffic.failures[0].describe()
    assert traffic.versions_seen("gateway-a") == ["1.0.0", "1.1.0"]


def test_abort_under_steady_traffic_drops_nothing(demo: Demo) -> None:
    demo.release("1.1.0", "v2.2.0")
    with demo.gateway.steady_traffic(rps=100) as traffic:
        traffic.wait_until(lambda t: len(t.answers) >= 500, what="500 answers", within=30)
        for service in SERVICES:
            demo.rollouts.abort(service)
        for service in SERVICES:
            demo.rollouts.wait_for_phase(service, Phase.DEGRADED)
        after = len(traffic.answers)
        traffic.wait_until(
            lambda t: len(t.answers) >= max(1000, after + 300), what="1000 answers", within=30
        )
    assert traffic.failures == [], traffic.failures[0].describe()
    assert traffic.versions_seen("gateway-a") == ["1.0.0"]
    assert traffic.versions_seen("service-b") == ["1.0.0"]


def test_a_pod_process_that_exits_is_restarted_and_reported(demo: Demo, cluster: Cluster) -> None:
    assert isinstance(cluster.target, LocalTarget)
    target = cluster.target
    namespace = demo.settings.namespace
    pods = [
        p
        for p in target.read_dataplane()["pods"]
        if p["namespace"] == namespace and p["service"] == "service-b"
    ]
    victim = pods[0]
    os.kill(victim["pid"], signal.SIGKILL)
    restarted = target.wait_for_dataplane(
        lambda state: any(
            p["name"] == victim["name"] and p["restarts"] >= 1 and p["ready"] for p in state["pods"]
        ),
        what=f"pod {victim['name']} restarted and ready",
        within=30,
    )
    (pod,) = [p for p in restarted["pods"] if p["name"] == victim["name"]]
    assert pod["last_exit"]["code"] == -signal.SIGKILL
    assert pod["pid"] != victim["pid"]
    demo.gateway.wait_for_version(Side.ACTIVE, "service-b", "1.0.0")


@dataclass(frozen=True)
class Preview:
    """A preview pod of service B after a release: its process, and where the API keeps it."""

    pod: str
    pid: int
    pods: Resource[Pod]
    replica_sets: Resource[ReplicaSet]
    replica_set: str


def _release_b_to_preview(demo: Demo, target: LocalTarget) -> Preview:
    namespace = demo.settings.namespace
    demo.release("1.1.0", "v2.2.0")
    preview_hash = demo.rollouts.read("service-b").current_hash
    pod = next(
        p
        for p in target.read_dataplane()["pods"]
        if p["namespace"] == namespace and p["service"] == "service-b" and p["version"] == "1.1.0"
    )
    kube = Kube(kubeconfig=target.kubeconfig, context=None, namespace=namespace)
    return Preview(
        pod["name"],
        pod["pid"],
        Resource(kube, POD, pod_from),
        Resource(kube, REPLICA_SET, replica_set_from),
        f"service-b-{preview_hash}",
    )


def _wait_pod(preview: Preview, ready: bool) -> Pod:
    return wait_for(
        preview.pods,
        preview.pod,
        lambda pod: pod.ready is ready,
        what=f"Pod {preview.pod}: Ready={ready}",
        describe=lambda pod: f"ready={pod.ready}",
        within=20,
    ).value


def _wait_replica_set(preview: Preview, *, fully_ready: bool) -> ReplicaSet:
    return wait_for(
        preview.replica_sets,
        preview.replica_set,
        lambda rs: (rs.ready_replicas == rs.replicas) is fully_ready,
        what=f"ReplicaSet {preview.replica_set}: {'all' if fully_ready else 'not all'} ready",
        describe=lambda rs: f"ready {rs.ready_replicas}/{rs.replicas}",
        within=20,
    ).value


def test_a_killed_preview_pod_is_not_ready_in_the_api_until_its_process_is_back(
    demo: Demo, cluster: Cluster
) -> None:
    """The data plane writes the process's readiness to the pod's status, as the kubelet would:
    a killed process (restarted a second later) makes its pod not Ready, so the ReplicaSet the
    Rollouts controller reads counts one ready replica less, and both come back with it."""
    assert isinstance(cluster.target, LocalTarget)
    preview = _release_b_to_preview(demo, cluster.target)
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Both waits read, then watch, before the kill: the crash is over in about a second.
        pod_down = pool.submit(_wait_pod, preview, False)
        replica_set_down = pool.submit(_wait_replica_set, preview, fully_ready=False)
        os.kill(preview.pid, signal.SIGKILL)
        assert not pod_down.result().ready
        down = replica_set_down.result()
    assert down.ready_replicas == down.replicas - 1
    assert _wait_pod(preview, True).ready
    back = _wait_replica_set(preview, fully_ready=True)
    assert back.ready_replicas == back.replicas
    (status,) = preview.pods.kube.get(POD, preview.pod)["status"]["containerStatuses"]
    assert (status["ready"], status["restartCount"]) == (True, 1)
    assert status["lastState"]["terminated"]["exitCode"] == 128 + signal.SIGKILL


def test_a_hung_preview_pod_holds_the_promotion_until_it_answers_again(
    demo: Demo, cluster: Cluster
) -> None:
    """A preview process that stops answering its readiness probe makes its pod not Ready. The
    Rollouts controller then does not switch the active Service to a preview that is not fully
    available (rollout/service.go ``reconcileActiveService``: Progressing, "active service
    cutover pending"), and once the preview is ready again it pauses anew rather than take the
    promotion given meanwhile (rollout/bluegreen.go ``reconcileBlueGreenPause``); a promotion
    then cuts over."""
    assert isinstance(cluster.target, LocalTarget)
    preview = _release_b_to_preview(demo, cluster.target)
    os.kill(preview.pid, signal.SIGSTOP)
    try:
        _wait_pod(preview, False)
        _wait_replica_set(preview, fully_ready=False)
        demo.rollouts.promote("service-b")
        held = demo.rollouts.wait_for(
            "service-b",
            lambda r: r.status_phase == "Progressing" and not r.pause_conditions,
            expecting="promoted, its cutover held",
            within=30,
        ).value
        assert held.status_message == "active service cutover pending"
        assert held.active_selector == held.stable_hash != held.current_hash
    finally:
        os.kill(preview.pid, signal.SIGCONT)
    assert _wait_pod(preview, True).ready
    paused = demo.rollouts.wait_for_phase("service-b", Phase.PAUSED, within=30)
    assert paused.active_selector == paused.stable_hash != paused.current_hash
    demo.rollouts.promote("service-b")
    healthy = demo.rollouts.wait_for_phase("service-b", Phase.HEALTHY, within=30)
    assert healthy.active_selector == healthy.current_hash == preview.replica_set.rsplit("-", 1)[1]


def test_right_after_a_control_plane_restart_new_pods_run_and_are_served(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """kwok without node leases and the scheduler without leader election start work at once;
    the data plane's informers list again and serve the new pods."""
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("restarts the local target's control plane")
    cluster.target.restart_control_plane()
    shutil.copytree(TREE, tmp_path / "gitops")
    # Leases would hold pods Pending for 15 s to 200 s.
    settings = load_settings(
        namespace=namespace, gitops_dir=tmp_path / "gitops", timeouts={"rollout": 15.0}
    )
    deployed = DirectApply(target_for(settings)).deploy("qa")
    assert [d.phase for d in deployed] == ["Healthy"] * 3
    target_for(settings).gateway().wait_for_version(Side.ACTIVE, "service-c", "1.0.0", within=15)


def test_an_unsupported_virtual_service_is_reported_and_its_calls_refused(
    demo: Demo, cluster: Cluster
) -> None:
    assert isinstance(cluster.target, LocalTarget)
    namespace = demo.settings.namespace
    cluster.kubectl(
        "patch", "virtualservice", "service-b", "-n", namespace, "--type=json",
        "-p", '[{"op": "add", "path": "/spec/http/1/timeout", "value": "2s"}]',
    )  # fmt: skip
    problem = f"VirtualService {namespace}/service-b"
    state = cluster.target.wait_for_dataplane(
        lambda s: problem in s["problems"], what="the VirtualService refused", within=10
    )
    assert "spec.http[1].timeout is not implemented" in state["problems"][problem]
    # Routing is chosen per connection, and gateway A re-dials its upstreams about once a
    # second (docs/dataplane.md): its next new connection to B is the one refused.
    answer, _ = poll(lambda: demo.gateway.read(Side.ACTIVE), lambda a: a.status != 200, within=5)
    assert answer.status == 502
    assert set(answer.errors) == {"service-b"}
    assert answer.version("service-c") == "1.0.0"


def test_a_busy_dataplane_port_is_a_clear_error(cluster: Cluster, tmp_path: Path) -> None:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("the local target's data plane")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable, "-m", "harness.dataplane",
                f"--kubeconfig={cluster.target.kubeconfig}",
                f"--binaries={cluster.target.dataplane_dir / 'bin'}",
                f"--run-dir={tmp_path}", f"--port={port}",
            ],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "BGH_LOCAL__DATAPLANE_PORT" in result.stderr


def test_killing_the_data_plane_leaves_no_pod_process(demo: Demo, cluster: Cluster) -> None:
    target = cluster.target
    assert isinstance(target, LocalTarget)
    binaries = target.dataplane_dir / "bin"
    pods = running_from(binaries)
    assert len(pods) >= 3, f"expected the demo system's pods running from {binaries}"
    dataplane = target.servers.dataplane.pid()
    assert dataplane is not None
    os.kill(dataplane, signal.SIGKILL)
    try:
        # Each pod has SIGKILL as its parent-death signal: gone without anyone stopping it.
        # (Observed only: nothing here signals them.) /proc has no watch, hence the poll.
        left, gone = poll(lambda: running_from(binaries), lambda pids: not pids, within=5.0)
        assert gone, f"pod processes outlived the data plane: {left}"
    finally:
        target.up()  # the data plane back for the tests after this one
