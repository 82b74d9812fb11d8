"""The kind target, for users with Docker: a kind cluster with the same pinned Argo Rollouts,
Istio (minimal profile, sidecar injection in the demo namespace), Argo CD and Prometheus, and the
demo service images and the analysis server's image (``analysis/Dockerfile``, the Argo Rollouts
web provider the chart runs in the cluster) loaded into the nodes.

The target is a plan: an ordered list of commands (``plan()``), each one taken from the upstream
project's own installation docs, then run one by one with progress (``up()``). The plan is pure,
so its commands are unit-tested on machines without Docker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import versions
from harness.errors import ConfigError, TargetError, indent_tail
from harness.kubectl import Kubectl, kubectl_on_path
from harness.probes import Gateway, Side
from harness.settings import Settings
from harness.target import ComponentStatus, TargetDefaults

CONFIG = Path(__file__).parent / "kind-config.yaml"
CLUSTER_NAME = "bgh"
SERVICES = ("gateway-a", "service-b", "service-c")
REPO_ROOT = Path(__file__).parents[3]
SERVICES_DIR = REPO_ROOT / "services"
ANALYSIS_DOCKERFILE = REPO_ROOT / "analysis" / "Dockerfile"

Report = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """One command of the plan; ``stdin`` is fed to it when set."""

    name: str
    argv: tuple[str, ...]
    stdin: str | None = None

    def __str__(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True)
class Image:
    """One demo service image to build and load into the kind nodes."""

    service: str
    reference: str


# Every version the QA version file and the runbooks in features/ deploy. kind has no registry
# to pull them from, so each is built (the same layers; only VERSION differs) and loaded;
# tests/unit/test_kind_target.py keeps this list in step with those files.
DEMO_VERSIONS = ("1.0.0", "1.1.0", "1.2.0")


class KindTarget(TargetDefaults):
    """Create, provision and delete the kind cluster."""

    name: Literal["kind"] = "kind"
    chart_flavour = "kind"  # gateway A on NodePorts, mapped to the host by kind-config.yaml
    owns_cluster = True

    def __init__(
        self,
        settings: Settings,
        *,
        versions: Sequence[str] = DEMO_VERSIONS,
        analysis_tag: str = "dev",
        registry: str = "ghcr.io/bluegreen-harness",
        report: Report = lambda _line: None,
    ) -> None:
        self.settings = settings
        self.report = report
        self.root = settings.state_dir.resolve() / "kind"
        self.kubeconfig = self.root / "kubeconfig"
        # One image per service and version, each reporting its version (build arg VERSION).
        self.images = tuple(
            Image(s, f"{registry}/{s}:{version}") for version in versions for s in SERVICES
        )
        # gitops/charts/analysis runs this image on kind (value analysis.server.image).
        self.analysis_image = f"{registry}/analysis:{analysis_tag}"

    def plan(self) -> list[Step]:
        """Every command ``up`` runs, in order."""
        kubectl = ("kubectl", f"--kubeconfig={self.kubeconfig}")
        namespace = self.settings.namespace
        wait = f"{self.settings.deadlines.up:.0f}s"
        steps = [
            Step(
                "kind cluster",
                (
                    "kind",
                    "create",
                    "cluster",
                    "--name",
                    CLUSTER_NAME,
                    "--config",
                    str(CONFIG),
                    "--image",
                    versions.KIND_NODE_IMAGE,
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--wait",
                    wait,
                ),
            ),
            _namespace(kubectl, "argo-rollouts"),
            Step(
                f"Argo Rollouts {versions.ARGO_ROLLOUTS}",
                (*kubectl, "apply", "-n", "argo-rollouts", "-f", versions.ARGO_ROLLOUTS_INSTALL),
            ),
            Step(
                "Argo Rollouts ready",
                (
                    *kubectl,
                    "-n",
                    "argo-rollouts",
                    "rollout",
                    "status",
                    "deployment/argo-rollouts",
                    f"--timeout={wait}",
                ),
            ),
            Step(
                f"Istio {versions.ISTIO} (minimal profile)",
                (
                    "istioctl",
                    "install",
                    f"--kubeconfig={self.kubeconfig}",
                    "--set",
                    "profile=minimal",
                    "-y",
                ),
            ),
            _namespace(kubectl, namespace),
            Step(
                f"sidecar injection in {namespace}",
                (
                    *kubectl,
                    "label",
                    "namespace",
                    namespace,
                    "istio-injection=enabled",
                    "--overwrite",
                ),
            ),
            _namespace(kubectl, "argocd"),
            Step(
                f"Argo CD {versions.ARGO_CD}",
                # Server-side: the ApplicationSet CRD is larger than a client-side apply's
                # last-applied annotation may be.
                (
                    *kubectl,
                    "apply",
                    "-n",
                    "argocd",
                    "--server-side",
                    "--force-conflicts",
                    "-f",
                    versions.ARGO_CD_INSTALL,
                ),
            ),
            Step(
                "Prometheus (Istio addon)",
                (*kubectl, "apply", "-n", "istio-system", "-f", versions.ISTIO_PROMETHEUS_ADDON),
            ),
            Step(
                "Prometheus on host port 9090",
                (
                    *kubectl,
                    "-n",
                    "istio-system",
                    "patch",
                    "service",
                    "prometheus",
                    "--type=merge",
                    "-p",
                    json.dumps(
                        {
                            "spec": {
                                "type": "NodePort",
                                "ports": [
                                    {
                                        "name": "http",
                                        "port": 9090,
                                        "targetPort": 9090,
                                        "nodePort": 30090,
                                    }
                                ],
                            }
                        }
                    ),
                ),
            ),
        ]
        for image in self.images:
            steps.append(
                Step(
                    f"image {image.reference}",
                    (
                        "docker",
                        "build",
                        "--build-arg",
                        f"SERVICE={image.service}",
                        "--build-arg",
                        f"VERSION={image.reference.rsplit(':', 1)[1]}",
                        "-t",
                        image.reference,
                        "-f",
                        str(SERVICES_DIR / "Dockerfile"),
                        str(SERVICES_DIR),
                    ),
                )
            )
        steps.append(
            Step(
                f"image {self.analysis_image}",
                # The context is the repository root: the image installs the whole package.
                (
                    "docker",
                    "build",
                    "-t",
                    self.analysis_image,
                    "-f",
                    str(ANALYSIS_DOCKERFILE),
                    str(REPO_ROOT),
                ),
            )
        )
        steps.append(
            Step(
                "load images into kind",
                (
                    "kind",
                    "load",
                    "docker-image",
                    *(i.reference for i in self.images),
                    self.analysis_image,
                    "--name",
                    CLUSTER_NAME,
                ),
            )
        )
        return steps

    def up(self) -> float:
        missing = [
            tool for tool in ("docker", "kind", "kubectl", "istioctl") if not shutil.which(tool)
        ]
        if missing:
            raise ConfigError(
                f"the kind target needs {', '.join(missing)} on PATH (kind {versions.KIND}, "
                f"istioctl {versions.ISTIO}); without Docker use the local target: --target local"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for step in self.plan():
            self._run(step)
        return time.monotonic() - started

    def down(self) -> float:
        started = time.monotonic()
        self._run(
            Step("delete kind cluster", ("kind", "delete", "cluster", "--name", CLUSTER_NAME))
        )
        shutil.rmtree(self.root, ignore_errors=True)
        return time.monotonic() - started

    def status(self) -> list[ComponentStatus]:
        if not shutil.which("kind"):
            return [ComponentStatus("kind cluster", False, "kind is not on PATH")]
        clusters = subprocess.run(
            ["kind", "get", "clusters"], capture_output=True, text=True, check=False
        ).stdout.split()
        if CLUSTER_NAME not in clusters:
            return [ComponentStatus("kind cluster", False, f"no cluster named {CLUSTER_NAME!r}")]
        ready = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            check=False,
        )
        detail = "API server ready" if ready.returncode == 0 else ready.stderr.strip()
        return [ComponentStatus("kind cluster", ready.returncode == 0, detail)]

    def collect_logs(self, directory: Path) -> None:
        """`kind export logs` into ``directory``, for artifacts on failure."""
        self._run(
            Step("export logs", ("kind", "export", "logs", str(directory), "--name", CLUSTER_NAME))
        )

    # -- where things are (the Target protocol) ----------------------------------------------

    def kubeconfig_in_use(self) -> Path:
        """``BGH_KUBECONFIG`` when set, else the one ``kind create cluster`` wrote."""
        return self.settings.kubeconfig or self.kubeconfig

    def kubectl(self) -> Kubectl:
        return kubectl_on_path(
            self.settings, needed_by="the kind target", kubeconfig=self.kubeconfig_in_use()
        )

    def gateway(self, namespace: str | None = None) -> Gateway:
        # kind-config.yaml maps gateway A's NodePorts 30300/30301 to these host ports.
        urls = {Side.ACTIVE: "http://127.0.0.1:3000", Side.PREVIEW: "http://127.0.0.1:3001"}
        return Gateway(urls.__getitem__, timeout=self.settings.deadlines.probe)

    def _run(self, step: Step) -> None:
        started = time.monotonic()
        result = subprocess.run(
            list(step.argv), input=step.stdin, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise TargetError(
                f"kind target: step {step.name!r} failed (exit {result.returncode})\n"
                f"  command: {step}\n{indent_tail(result.stderr or result.stdout)}"
            )
        self.report(f"{step.name}: done in {time.monotonic() - started:.1f}s")


def _namespace(kubectl: Sequence[str], name: str) -> Step:
    # Applying a Namespace object is idempotent where `kubectl create namespace` is not.
    manifest = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return Step(f"namespace {name}", (*kubectl, "apply", "-f", "-"), stdin=manifest)
