"""The local target is real: a blue-green Rollout goes Paused and Healthy under the real controller.

Every wait here is a watch (`kubectl wait`, `kubectl argo rollouts status`), never a sleep.
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.cluster.conftest import Cluster

pytestmark = pytest.mark.cluster

ROLLOUT = """
apiVersion: v1
kind: Service
metadata:
  name: smoke-active
spec:
  selector: {app: smoke}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: smoke-preview
spec:
  selector: {app: smoke}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: smoke
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector:
    matchLabels: {app: smoke}
  template:
    metadata:
      labels: {app: smoke}
    spec:
      containers:
        - name: app
          image: ghcr.io/bluegreen-harness/service-b:1.0.0
          ports: [{containerPort: 8080}]
  strategy:
    blueGreen:
      activeService: smoke-active
      previewService: smoke-preview
      autoPromotionEnabled: false
"""


def _hash_of(cluster: Cluster, namespace: str, service: str) -> str:
    selector = cluster.kubectl("get", "service", service, "-n", namespace, "-o", "json")
    return str(json.loads(selector)["spec"]["selector"].get("rollouts-pod-template-hash", ""))


def test_blue_green_rollout_pauses_on_preview_and_promotes(cluster: Cluster) -> None:
    namespace = f"smoke-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=ROLLOUT)
        cluster.plugin("status", "smoke", "-n", namespace, "--timeout", "90s")
        first = json.loads(
            cluster.kubectl("get", "rollout", "smoke", "-n", namespace, "-o", "json")
        )
        stable = first["status"]["stableRS"]
        assert _hash_of(cluster, namespace, "smoke-active") == stable

        cluster.plugin(
            "set",
            "image",
            "smoke",
            "app=ghcr.io/bluegreen-harness/service-b:1.1.0",
            "-n",
            namespace,
        )
        cluster.kubectl(
            "wait",
            "rollout/smoke",
            "-n",
            namespace,
            "--for=jsonpath={.status.phase}=Paused",
            "--timeout=90s",
        )
        paused = json.loads(
            cluster.kubectl("get", "rollout", "smoke", "-n", namespace, "-o", "json")
        )
        new = paused["status"]["currentPodHash"]
        assert new != stable
        assert paused["status"]["stableRS"] == stable
        assert _hash_of(cluster, namespace, "smoke-preview") == new
        assert _hash_of(cluster, namespace, "smoke-active") == stable
        assert paused["status"]["blueGreen"]["previewSelector"] == new
        assert paused["status"]["blueGreen"]["activeSelector"] == stable

        cluster.plugin("promote", "smoke", "-n", namespace)
        cluster.plugin("status", "smoke", "-n", namespace, "--timeout", "90s")
        healthy = json.loads(
            cluster.kubectl("get", "rollout", "smoke", "-n", namespace, "-o", "json")
        )
        assert healthy["status"]["phase"] == "Healthy"
        assert healthy["status"]["stableRS"] == new
        assert _hash_of(cluster, namespace, "smoke-active") == new
        assert healthy["status"]["blueGreen"]["activeSelector"] == new
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_up_serves_the_kinds_a_run_needs_and_not_istios_others(cluster: Cluster) -> None:
    """Argo Rollouts' five (its controller waits for all five informers) and the three Istio kinds
    the data plane, the controller and discovery read are Established; Istio's others are not put
    in (Argo CD's come with Argo CD, so another test may have put them in)."""
    if cluster.target.name != "local":
        pytest.skip("which CRDs are put in is the local target's choice; kind installs its own")
    listed = json.loads(cluster.kubectl("get", "crd", "-o", "json"))["items"]
    established = {
        crd["metadata"]["name"]
        for crd in listed
        if any(
            c["type"] == "Established" and c["status"] == "True"
            for c in crd.get("status", {}).get("conditions", [])
        )
    }
    names = {crd["metadata"]["name"] for crd in listed}
    assert {
        "rollouts.argoproj.io",
        "experiments.argoproj.io",
        "analysisruns.argoproj.io",
        "analysistemplates.argoproj.io",
        "clusteranalysistemplates.argoproj.io",
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
        "gateways.networking.istio.io",
    } <= established
    assert {n for n in names if n.endswith(".istio.io")} == {
        "virtualservices.networking.istio.io",
        "destinationrules.networking.istio.io",
        "gateways.networking.istio.io",
    }
