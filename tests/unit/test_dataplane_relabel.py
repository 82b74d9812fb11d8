"""The sidecar routes by the caller's labels as they are now, not as they were at its start.

Argo Rollouts relabels running pods in place (ephemeral metadata: role=preview becomes
role=active when their ReplicaSet becomes the stable one), so the data plane must route a
pod's next connection by its current labels. Fed recorded objects; no API server, and the pod
processes are stopped as soon as they are made (their real runs are in tests/cluster/).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from harness.dataplane.plane import DataPlane
from harness.kube import POD, SERVICE, VIRTUAL_SERVICE


def _pod(name: str, app: str, labels: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": f"uid-{name}",
            "labels": {"app": app, **labels},
        },
        "spec": {
            "containers": [
                {
                    "name": app,
                    "image": f"ghcr.io/bluegreen-harness/{app}:1.0.0",
                    "ports": [{"name": "http", "containerPort": 3000}],
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                }
            ]
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def _service(name: str, pod_hash: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {
            "selector": {"app": "service-b", "rollouts-pod-template-hash": pod_hash},
            "ports": [{"name": "http", "port": 3000, "targetPort": 3000}],
        },
    }


# The chart's VirtualService for B (gitops/charts/demo-service/templates/virtualservice.yaml).
VIRTUAL_SERVICE_B = {
    "metadata": {"name": "service-b", "namespace": "demo"},
    "spec": {
        "hosts": ["service-b"],
        "http": [
            {
                "name": "preview",
                "match": [{"sourceLabels": {"root-version": "v2", "role": "preview"}}],
                "route": [{"destination": {"host": "service-b-preview"}}],
            },
            {"name": "active", "route": [{"destination": {"host": "service-b"}}]},
        ],
    },
}


class Started(DataPlane):
    """Pod processes stopped at once, then marked ready: only the routing is under test."""

    async def _start(self, pod: Any, service: str, version: str) -> Any:
        running = await super()._start(pod, service, version)
        await running.process.stop(grace=0)
        running.process.ready = True
        return running


def test_a_relabelled_caller_is_routed_by_its_new_labels(tmp_path: Path) -> None:
    plane = Started(binaries=Path("/bin"), run_dir=tmp_path)
    gateway = {"rollouts-pod-template-hash": "a2", "root-version": "v2", "role": "preview"}
    picked: list[str] = []

    def target_of(endpoint: tuple[str, int] | None) -> str:
        names = {r.process.address: r.pod.name for r in plane.pods.values()}
        return "none" if endpoint is None else names[endpoint[0]]

    async def go() -> None:
        plane.apply(
            POD,
            "SYNC",
            [
                _pod("a-new", "gateway-a", gateway, {"SERVICE_B_URL": "http://service-b:3000"}),
                _pod("b-old", "service-b", {"rollouts-pod-template-hash": "b1"}, {}),
                _pod("b-new", "service-b", {"rollouts-pod-template-hash": "b2"}, {}),
            ],
        )
        plane.apply(
            SERVICE, "SYNC", [_service("service-b", "b1"), _service("service-b-preview", "b2")]
        )
        plane.apply(VIRTUAL_SERVICE, "SYNC", [VIRTUAL_SERVICE_B])
        await plane.reconcile()
        picked.append(target_of(plane._pick_egress("uid-a-new", "service-b", 3000)))
        # The controller relabels the pod in place: role=preview -> role=active.
        relabelled = _pod(
            "a-new",
            "gateway-a",
            {**gateway, "role": "active"},
            {"SERVICE_B_URL": "http://service-b:3000"},
        )
        plane.apply(POD, "MODIFIED", relabelled)
        await plane.reconcile()
        picked.append(target_of(plane._pick_egress("uid-a-new", "service-b", 3000)))
        picked.append(str(len(plane.pods)))
        await plane.close()

    asyncio.run(go())
    assert picked == ["b-new", "b-old", "3"], "same process, routed by its labels of the moment"
