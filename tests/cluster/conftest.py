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

from harness.settings import load_settings
from harness.targets import builds
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
        builds.ARGO_ROLLOUTS.install_dir(cache) / "kubectl-argo-rollouts",
    )
    if not was_up:
        target.down()
