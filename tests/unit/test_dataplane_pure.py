"""The data plane's pure decisions: which pods it runs, with what, and where they are scraped.

``DataPlane`` is fed recorded API objects here (the informers' events) and asked what it would
do; no API server. Its real processes and sockets are exercised on the local target in
tests/cluster/test_dataplane.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from harness.dataplane.networks import claim_networks
from harness.dataplane.plane import Addresses, DataPlane, image_service
from harness.dataplane.status import ContainerView, readiness_patch
from harness.errors import ConfigError, TargetError
from harness.images import Builds
from harness.kube import POD, SERVICE, VIRTUAL_SERVICE, pod_from


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/bluegreen-harness/service-b:1.1.0", ("service-b", "1.1.0")),
        ("service-c:2.0.0-rc.1", ("service-c", "2.0.0-rc.1")),
        ("localhost:5000/gateway-a:1.0.0", ("gateway-a", "1.0.0")),
        ("localhost:5000/gateway-a", ("gateway-a", "latest")),
        ("ghcr.io/x/service-b@sha256:" + "a" * 64, ("service-b", "latest")),
        ("ghcr.io/x/service-b:1.2.3@sha256:" + "a" * 64, ("service-b", "1.2.3")),
        ("nginx:1.27", None),
        ("ghcr.io/x/service-bb:1.0.0", None),
    ],
)
def test_only_demo_service_images_run_with_the_tag_as_version(
    image: str, expected: tuple[str, str] | None
) -> None:
    assert image_service(image) == expected


def test_addresses_are_stable_per_key_and_reused_after_release() -> None:
    addresses = Addresses(__import__("ipaddress").IPv4Network("127.1.0.0/30"))
    first, second = addresses.take("a"), addresses.take("b")
    assert (first, second) == ("127.1.0.1", "127.1.0.2")
    assert addresses.take("a") == first
    addresses.release("a")
    assert addresses.take("c") == first


def raw_pod(
    name: str,
    *,
    namespace: str = "demo",
    image: str = "ghcr.io/bluegreen-harness/gateway-a:1.1.0",
    env: dict[str, str] | None = None,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": labels
            or {"app": "gateway-a", "rollouts-pod-template-hash": "6c4b", "root-version": "v2"},
            "annotations": {"prometheus.io/port": "9090"},
        },
        "spec": {
            "containers": [
                {
                    "name": "gateway-a",
                    "image": image,
                    "ports": [{"name": "http", "containerPort": 3000}],
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()]
                    + [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 3000}},
                }
            ]
        },
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]},
    }


class Started(DataPlane):
    """A data plane whose pod processes are stopped as soon as they are made: no binaries here."""

    async def _start(self, pod: Any, service: str, version: str) -> Any:
        running = await super()._start(pod, service, version)
        await running.process.stop(grace=0)
        return running


def run_one_pod(tmp_path: Path, pod: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Reconcile one pod; returns its process's environment and the plane's state."""
    plane = Started(binaries=Path("/bin"), run_dir=tmp_path, targets_file=None)
    captured: dict[str, Any] = {}

    async def go() -> None:
        plane.apply(POD, "SYNC", [pod])
        plane.apply(SERVICE, "SYNC", [])
        plane.apply(VIRTUAL_SERVICE, "SYNC", [])
        await plane.reconcile()
        (running,) = plane.pods.values()
        captured.update(env=dict(running.process.env), state=plane.state())
        await plane.close()

    asyncio.run(go())
    return captured["env"], captured["state"]


def test_the_process_gets_the_containers_env_with_service_references_pointed_at_its_egress(
    tmp_path: Path,
) -> None:
    env = {
        "SERVICE_B_URL": "http://service-b:3000",
        "SERVICE_C_ADDR": "service-c.demo.svc.cluster.local:3000",
        "OTHER": "http://localhost:9000/x",
        "GREETING": "Hello 크리스마스 🎄",
        "VERSION": "9.9.9",
    }
    process_env, state = run_one_pod(tmp_path, raw_pod("gateway-a-1", env=env))
    (pod,) = state["pods"]
    egress = pod["egress"]
    assert set(egress) == {"service-b:3000", "service-c.demo.svc.cluster.local:3000"}
    assert process_env["SERVICE_B_URL"] == f"http://{egress['service-b:3000']}"
    assert process_env["SERVICE_C_ADDR"] == egress["service-c.demo.svc.cluster.local:3000"]
    assert process_env["OTHER"] == "http://localhost:9000/x"
    assert process_env["GREETING"] == "Hello 크리스마스 🎄"
    assert process_env["VERSION"] == "9.9.9", "the pod's env overrides the image's VERSION"
    assert process_env["HOST"] == pod["address"]
    assert process_env["POD_NAME"] == "gateway-a-1"


@pytest.mark.parametrize(
    ("image", "greeting"),
    [
        ("ghcr.io/bluegreen-harness/gateway-a:1.1.0", "Merry Christmas 🎄"),
        ("ghcr.io/bluegreen-harness/gateway-a:1.0.0", ""),
        ("ghcr.io/bluegreen-harness/gateway-a:9.9.9", ""),
    ],
)
def test_the_process_gets_the_greeting_its_image_was_built_with(
    tmp_path: Path, image: str, greeting: str
) -> None:
    """The greeting is the build's (services/builds.yaml), not the pod's configuration."""
    captured, _ = run_one_pod(tmp_path, raw_pod("gateway-a-1", image=image))
    assert captured["IMAGE_GREETING"] == greeting
    assert captured["VERSION"] == image.rsplit(":", 1)[1]


def test_a_build_table_with_an_unknown_argument_is_refused_naming_it(tmp_path: Path) -> None:
    table = tmp_path / "builds.yaml"
    table.write_text('gateway-a:\n  "1.1.0": {GREETNG: "x"}\n', encoding="utf-8")
    expected = r"gateway-a 1.1.0: unknown build argument\(s\) GREETNG; expected one of GREETING"
    with pytest.raises(ConfigError, match=expected):
        Builds.load(table)


def test_pending_foreign_and_out_of_scope_pods_do_not_run(tmp_path: Path) -> None:
    plane = Started(binaries=Path("/bin"), run_dir=tmp_path, namespaces=frozenset({"demo"}))
    captured: dict[str, Any] = {}

    async def go() -> None:
        plane.apply(
            POD,
            "SYNC",
            [
                raw_pod("runs"),
                raw_pod("pending", phase="Pending"),
                raw_pod("nginx", image="nginx:1.27"),
                raw_pod("elsewhere", namespace="other"),
            ],
        )
        plane.apply(SERVICE, "SYNC", [])
        plane.apply(VIRTUAL_SERVICE, "SYNC", [])
        await plane.reconcile()
        captured["names"] = [r.pod.name for r in plane.pods.values()]
        await plane.close()

    asyncio.run(go())
    assert captured["names"] == ["runs"]


def test_prometheus_targets_carry_pod_hash_and_root_version(tmp_path: Path) -> None:
    targets = tmp_path / "targets.json"
    plane = Started(binaries=Path("/bin"), run_dir=tmp_path, targets_file=targets)
    written: list[Any] = []

    async def go() -> None:
        plane.apply(POD, "SYNC", [raw_pod("gateway-a-1")])
        plane.apply(SERVICE, "SYNC", [])
        plane.apply(VIRTUAL_SERVICE, "SYNC", [])
        await plane.reconcile()
        written.append(json.loads(targets.read_text()))
        plane.apply(POD, "DELETED", raw_pod("gateway-a-1"))
        await plane.reconcile()
        await asyncio.gather(*plane._stopping)
        written.append(json.loads(targets.read_text()))

    asyncio.run(go())
    (group,) = written[0]
    assert group["targets"] == ["127.1.0.1:9090"]
    assert group["labels"] == {
        "namespace": "demo",
        "pod": "gateway-a-1",
        "app": "gateway-a",
        "rollouts_pod_template_hash": "6c4b",
        "root_version": "v2",
    }
    assert written[1] == []


def test_an_unsupported_virtual_service_is_a_problem_and_its_host_is_refused(
    tmp_path: Path,
) -> None:
    plane = Started(binaries=Path("/bin"), run_dir=tmp_path)
    vs = {
        "metadata": {"name": "service-b", "namespace": "demo"},
        "spec": {
            "hosts": ["service-b"],
            "http": [{"retries": {"attempts": 3}, "route": [{"destination": {"host": "b"}}]}],
        },
    }
    captured: dict[str, Any] = {}

    async def go() -> None:
        plane.apply(POD, "SYNC", [])
        plane.apply(SERVICE, "SYNC", [])
        plane.apply(VIRTUAL_SERVICE, "SYNC", [vs])
        await plane.reconcile()
        captured.update(problems=dict(plane.problems), refused=dict(plane.refused_hosts))

    asyncio.run(go())
    assert (
        "spec.http[0].retries is not implemented"
        in captured["problems"]["VirtualService demo/service-b"]
    )
    assert ("service-b", "demo") in captured["refused"]


def test_a_pod_view_keeps_what_the_data_plane_needs() -> None:
    pod = pod_from(raw_pod("p", env={"PORT": "3000"}))
    assert pod.ports == {"http": 3000}
    assert pod.readiness_port == "3000"
    assert pod.uid == "uid-demo-p"
    assert pod.env == {"PORT": "3000"}, "valueFrom entries are the kubelet's, not copied"


def kwok_ready_pod() -> dict[str, Any]:
    """A pod's status as kwok's pod-ready stage writes it (kustomize/stage/pod/fast)."""
    at = "2026-01-01T00:00:00Z"
    return {
        "metadata": {"name": "b-1", "namespace": "demo"},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": at},
                {"type": "Ready", "status": "True", "lastTransitionTime": at},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": at},
            ],
            "containerStatuses": [
                {
                    "name": "service-b",
                    "image": "ghcr.io/bluegreen-harness/service-b:1.0.0",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": at}},
                }
            ],
        },
    }


def _apply_merge_patch(pod: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return {**pod, "status": {**pod["status"], **patch["status"]}}


def test_a_crashed_process_makes_the_pod_not_ready_as_the_kubelet_writes_it() -> None:
    crashed = ContainerView("service-b", ready=False, restarts=1, running=False, last_exit_code=137)
    patch = readiness_patch(kwok_ready_pod(), crashed, now="2026-01-01T00:01:00Z")
    assert patch is not None
    pod = pod_from(_apply_merge_patch(kwok_ready_pod(), patch))
    assert not pod.ready
    conditions = {c["type"]: c for c in patch["status"]["conditions"]}
    assert conditions["Initialized"]["status"] == "True"  # untouched
    for kind in ("Ready", "ContainersReady"):
        assert conditions[kind]["status"] == "False"
        assert conditions[kind]["reason"] == "ContainersNotReady"
        assert conditions[kind]["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    (status,) = patch["status"]["containerStatuses"]
    assert (status["ready"], status["restartCount"]) == (False, 1)
    assert status["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert status["image"] == "ghcr.io/bluegreen-harness/service-b:1.0.0"  # kept


def test_a_recovered_process_makes_the_pod_ready_again_and_nothing_is_written_twice() -> None:
    down = ContainerView("service-b", ready=False, restarts=1, running=False, last_exit_code=137)
    first = readiness_patch(kwok_ready_pod(), down, now="2026-01-01T00:01:00Z")
    assert first is not None
    crashed = _apply_merge_patch(kwok_ready_pod(), first)
    assert readiness_patch(crashed, down, now="2026-01-01T00:01:01Z") is None
    up = ContainerView("service-b", ready=True, restarts=1, running=True, last_exit_code=137)
    second = readiness_patch(crashed, up, now="2026-01-01T00:01:02Z")
    assert second is not None
    recovered = _apply_merge_patch(crashed, second)
    assert pod_from(recovered).ready
    ready = next(c for c in second["status"]["conditions"] if c["type"] == "Ready")
    assert "reason" not in ready
    (status,) = second["status"]["containerStatuses"]
    assert status["state"] == {"running": {"startedAt": "2026-01-01T00:01:02Z"}}
    assert readiness_patch(recovered, up, now="2026-01-01T00:01:03Z") is None


def test_a_ready_pod_the_api_already_calls_ready_needs_no_write() -> None:
    fine = ContainerView("service-b", ready=True, restarts=0, running=True)
    assert readiness_patch(kwok_ready_pod(), fine, now="2026-01-01T00:01:00Z") is None


def test_two_data_planes_claim_disjoint_networks_and_a_released_slot_is_reused() -> None:
    """Real abstract sockets: a data plane already running here holds its slot, so the slots
    are compared with each other, not with 0."""
    first = claim_networks()
    second = claim_networks()
    try:
        assert second.slot != first.slot
        assert not first.pods.overlaps(second.pods)
        assert not first.services.overlaps(second.services)
        assert not first.pods.overlaps(first.services)
        first.release()
        again = claim_networks()
        assert again.slot == first.slot
        again.release()
    finally:
        first.release()
        second.release()


def test_a_lone_data_plane_keeps_the_demo_addresses() -> None:
    try:
        lone = claim_networks(slots=1)
    except TargetError:
        pytest.skip("a data plane runs in this network namespace and holds slot 0")
    try:
        assert (str(lone.pods), str(lone.services)) == ("127.1.0.0/16", "127.2.0.0/16")
    finally:
        lone.release()


def test_when_every_slot_is_held_the_error_says_how_to_free_one() -> None:
    held = [claim_networks() for _ in range(2)]
    try:
        with pytest.raises(TargetError, match=r"held by another data plane.*bgh down"):
            claim_networks(slots=max(n.slot for n in held) + 1)
    finally:
        for networks in held:
            networks.release()
