"""Cluster tests run against the local target: the real control plane and Argo Rollouts controller.

The session brings the target up (building what the cache lacks) and takes it down again only if
it was not already running, so a developer's `bgh up` survives a test run.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import builds
from harness.settings import load_settings
from harness.targets.kind import KindTarget
from harness.targets.local import LocalTarget


@dataclass(frozen=True)
class Cluster:
    """The running local target and its command-line tools, bound to its kubeconfig."""

    target: LocalTarget | KindTarget
    kubectl_path: Path
    plugin_path: Path

    def kubectl(self, *argv: str, stdin: str | None = None) -> str:
        return _run(
            [str(self.kubectl_path), f"--kubeconfig={self.target.kubeconfig}", *argv], stdin
        )

    def plugin(self, *argv: str) -> str:
        """Run the real `kubectl argo rollouts` plugin."""
        return _run([str(self.plugin_path), f"--kubeconfig={self.target.kubeconfig}", *argv], None)


def _run(argv: Sequence[str], stdin: str | None) -> str:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(
            f"command failed (exit {result.returncode}): {' '.join(argv)}\n"
            f"{result.stderr}{result.stdout}"
        )
    return result.stdout


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    settings = load_settings()
    target: LocalTarget | KindTarget
    if settings.target == "kind":
        # The kind workflow brings the cluster up before the suite and installs the tools.
        target = KindTarget(settings, report=print)
        tools = [shutil.which("kubectl"), shutil.which("kubectl-argo-rollouts")]
        if None in tools:
            pytest.fail("the kind target needs kubectl and kubectl-argo-rollouts on PATH")
        yield Cluster(target, Path(str(tools[0])), Path(str(tools[1])))
        return
    target = LocalTarget(settings, report=print)
    was_up = all(line.running for line in target.status())
    target.up()
    cache = settings.cache_dir
    yield Cluster(
        target,
        builds.KUBERNETES.install_dir(cache) / "kubectl",
        builds.argo_rollouts(settings.rollouts_version).install_dir(cache)
        / "kubectl-argo-rollouts",
    )
    if not was_up:
        target.down()


def blue_green_manifest(
    name: str,
    *,
    image: str = "ghcr.io/bluegreen-harness/service-b:1.0.0",
    scale_down_delay: int = 30,
) -> str:
    """A two-replica blue-green Rollout with manual promotion and its active/preview Services.

    The Services come first: a Rollout whose Services do not exist yet is InvalidSpec.
    """
    return f"""
apiVersion: v1
kind: Service
metadata:
  name: {name}-active
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}-preview
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {name}
spec:
  replicas: 2
  revisionHistoryLimit: 5
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: app
          image: {image}
          ports: [{{containerPort: 8080}}]
  strategy:
    blueGreen:
      activeService: {name}-active
      previewService: {name}-preview
      autoPromotionEnabled: false
      scaleDownDelaySeconds: {scale_down_delay}
"""


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards without waiting."""
    import uuid

    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")
