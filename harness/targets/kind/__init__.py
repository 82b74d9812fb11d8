"""The kind target, for users with Docker: a kind cluster with the pinned Argo Rollouts,
Prometheus scraping the demo pods (``prometheus``), where its images can be had Istio's minimal
profile, and the demo service and analysis server images loaded into the nodes.

``up`` goes in this order, reporting each step as the local target does:
1. Docker: a daemon that answers is used as it is; on a machine without one it is set up
   behind the egress guard (``docker_host``), and where bgh set it up, ``up`` refuses to go on
   without the guard (``egress_guard.require``).
2. The pinned tools: kind and kubectl are built from the Go module proxy and cached, so their
   versions are the pinned ones; an istioctl on PATH must be the pinned Istio release.
3. Images (``settings.kind.images``): ``pull`` uses the pinned upstream node image and the
   upstream images the manifests name; ``build`` makes them here (``node_image``, ``images``).
   The demo services are always built from ``services/Dockerfile``.
4. The plan (``plan()``): an ordered list of commands, pure data, unit-tested without Docker.
5. ``kubectl proxy`` on a loopback port: probes reach gateway A's Services, and the harness
   Prometheus, through the API server's Service proxy, so no NodePort is needed (two scenarios'
   namespaces would fight for the same one).
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

import yaml

from harness import builds, versions
from harness.errors import ConfigError, NotFound, TargetError, indent_tail
from harness.images import Builds
from harness.kube import POD, pod_from
from harness.kubectl import Kubectl
from harness.probes import Gateway, Side
from harness.settings import Settings
from harness.target import ComponentStatus, TargetDefaults
from harness.targets import scrape
from harness.targets.kind import binaries, docker_host, egress_guard, node_image, prometheus
from harness.targets.kind.docker import Docker
from harness.targets.kind.images import Image, LocalImages, rollouts_install_manifest
from harness.targets.processes import Process, port_in_use, wait_http_ok

CONFIG = Path(__file__).parent / "kind-config.yaml"
CLUSTER_NAME = "bgh"
SERVICES = ("gateway-a", "service-b", "service-c")
REPO_ROOT = Path(__file__).parents[3]
SERVICES_DIR = REPO_ROOT / "services"
ANALYSIS_DOCKERFILE = REPO_ROOT / "analysis" / "Dockerfile"
# Every namespace the harness creates gets this label, so Istio injects its sidecars there.
INJECTION_LABEL = ("istio-injection", "enabled")

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
class Addons:
    """What the plan installs beside Argo Rollouts (each needs images it may not be able to get)."""

    istio: bool
    prometheus: bool
    argocd: bool


# Every version the QA version file and the runbooks in features/ deploy. kind has no registry
# to pull them from, so each is built (the same layers; only VERSION differs) and loaded;
# tests/unit/test_kind_target.py keeps this list in step with those files.
DEMO_VERSIONS = ("1.0.0", "1.1.0", "1.2.0")


class KindTarget(TargetDefaults):
    """Create, provision and delete the kind cluster."""

    name: Literal["kind"] = "kind"
    chart_flavour = "kind"  # the analysis server runs in the cluster
    owns_cluster = True

    def __init__(
        self,
        settings: Settings,
        *,
        versions: Sequence[str] | None = None,
        analysis_tag: str = "dev",
        registry: str = "ghcr.io/bluegreen-harness",
        report: Report = lambda _line: None,
    ) -> None:
        self.settings = settings
        self.report = report
        self.root = settings.state_dir.resolve() / "kind"
        self.kubeconfig = self.root / "kubeconfig"
        self.config_file = self.root / "kind-config.yaml"
        self.rollouts_manifest = self.root / "argo-rollouts-install.yaml"
        self.prometheus_manifest = self.root / "prometheus.yaml"
        self.cache_dir = settings.cache_dir
        # One image per service and version, each reporting its version (build arg VERSION):
        # the runbooks' versions and every one a version file names (a release's QA bump). Each
        # is built with the arguments services/builds.yaml lists (gateway A's greeting), as the
        # release workflow builds it.
        if versions is None:
            versions = sorted({*DEMO_VERSIONS, *versions_named(settings.gitops_dir)}, key=_semver)
        table = Builds.load()
        self.images = tuple(
            Image(f"{registry}/{s}:{version}", table.build_args(s, version))
            for version in versions
            for s in SERVICES
        )
        # gitops/charts/analysis runs this image on kind (value analysis.server.image).
        self.analysis_image = f"{registry}/analysis:{analysis_tag}"
        self.proxy = Process("kubectl-proxy", self.root)

    # -- the plan: pure data -----------------------------------------------------------------

    def cluster_config(self, *, built_node_image: bool) -> dict[str, object]:
        """The kind config: ``kind-config.yaml``, plus, for a node image built here, one node
        with no default CNI (kindnetd cannot be built; the image carries a bridge config) and
        the local target's etcd release under its own tag."""
        config: dict[str, object] = yaml.safe_load(CONFIG.read_text())
        if built_node_image:
            config["nodes"] = [{"role": "control-plane"}]
            config["networking"] = {
                **(config.get("networking") or {}),  # type: ignore[dict-item]
                "disableDefaultCNI": True,
            }
            config["kubeadmConfigPatches"] = [
                yaml.safe_dump(
                    {
                        "kind": "ClusterConfiguration",
                        "etcd": {"local": {"imageTag": node_image.ETCD_TAG}},
                    }
                )
            ]
        return config

    def plan(
        self,
        *,
        kind: str = "kind",
        kubectl_binary: str = "kubectl",
        node_image_reference: str = versions.KIND_NODE_IMAGE,
        addons: Addons = Addons(istio=True, prometheus=True, argocd=True),
        loaded: Sequence[str] = (),
        istio_crds: Path | None = None,
    ) -> list[Step]:
        """Every command ``up`` runs after the images exist, in order."""
        kubectl = (kubectl_binary, f"--kubeconfig={self.kubeconfig}")
        namespace = self.settings.namespace
        wait = f"{self.settings.deadlines.up:.0f}s"
        steps = [
            Step(
                "kind cluster",
                (
                    kind,
                    "create",
                    "cluster",
                    "--name",
                    CLUSTER_NAME,
                    "--config",
                    str(self.config_file),
                    "--image",
                    node_image_reference,
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "--wait",
                    wait,
                ),
            ),
        ]
        if loaded:
            steps.append(
                Step(
                    "load images into kind",
                    (kind, "load", "docker-image", *loaded, "--name", CLUSTER_NAME),
                )
            )
        steps += [
            _namespace(kubectl, "argo-rollouts", labels={}),
            # Server-side: its CRDs are larger than the 262,144-byte last-applied annotation a
            # client-side apply writes (upstream switched for this, argo-rollouts#4687).
            _server_side_apply(
                kubectl,
                f"Argo Rollouts {versions.ARGO_ROLLOUTS}",
                str(self.rollouts_manifest),
                namespace="argo-rollouts",
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
        ]
        if addons.istio:
            steps.append(
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
                )
            )
        elif istio_crds is not None:
            # Without the control plane the chart's VirtualServices still apply (and read back).
            steps.append(
                _server_side_apply(
                    kubectl, f"Istio {versions.ISTIO} CRDs (no control plane)", str(istio_crds)
                )
            )
        steps.append(_namespace(kubectl, namespace, labels=dict([INJECTION_LABEL])))
        if addons.argocd:
            steps += [
                _namespace(kubectl, "argocd", labels={}),
                # Server-side: the ApplicationSet CRD is larger than a client-side apply's
                # last-applied annotation may be.
                _server_side_apply(
                    kubectl,
                    f"Argo CD {versions.ARGO_CD}",
                    versions.ARGO_CD_INSTALL,
                    namespace="argocd",
                ),
            ]
        if addons.prometheus:
            steps += [
                _server_side_apply(kubectl, "Prometheus", str(self.prometheus_manifest)),
                Step(
                    "Prometheus ready",
                    (
                        *kubectl,
                        "-n",
                        prometheus.NAMESPACE,
                        "rollout",
                        "status",
                        f"deployment/{prometheus.NAME}",
                        f"--timeout={wait}",
                    ),
                ),
            ]
        return steps

    # -- running it --------------------------------------------------------------------------

    def up(self) -> float:
        started = time.monotonic()
        host = docker_host.ensure(cache_dir=self.cache_dir, report=self.report)
        if host.set_up_here:
            states = egress_guard.require()
            self.report(
                "egress guard: in place ("
                + ", ".join(f"{s.family} rejected {s.rejected_packets} packets" for s in states)
                + ")"
            )
        docker = Docker(host.client, log_dir=self.cache_dir / "kind" / "logs")
        build = self._builds_images(host)
        kind = self._kind()
        kubectl = self.kubectl_binary()
        istioctl = self._istioctl() if not build else None
        self.root.mkdir(parents=True, exist_ok=True)
        nodes = node_image.NodeImageBuilder(
            docker, cache_dir=self.cache_dir, report=self.report, go=self.settings.local.go
        )
        local = LocalImages(nodes, services_dir=SERVICES_DIR, report=self.report)
        step = time.monotonic()
        reference = versions.KIND_NODE_IMAGE
        loaded: list[str] = []
        if build:
            built = nodes.ensure()
            reference = built.reference
            self.report(
                f"node image {reference}: "
                + ("cached" if built.cached else f"built in {built.seconds:.0f}s")
            )
            loaded.append(local.rollouts_image())
        step = time.monotonic()
        prometheus_image = local.prometheus_image() if build else versions.PROMETHEUS_IMAGE
        if build:
            loaded.append(prometheus_image)
        loaded += local.service_images(self.images, local_bases=build)
        loaded.append(local.analysis_image(self.analysis_image, local_base=build))
        self.report(f"images: {len(loaded)} ready in {time.monotonic() - step:.1f}s")
        self.config_file.write_text(yaml.safe_dump(self.cluster_config(built_node_image=build)))
        self.rollouts_manifest.write_text(rollouts_install_manifest(nodes, loaded_image=build))
        self.prometheus_manifest.write_text(
            prometheus.manifest_text(
                prometheus_image, pull_policy="IfNotPresent" if build else "Always"
            )
        )
        addons = Addons(istio=istioctl is not None, prometheus=True, argocd=not build)
        istio_crds: Path | None = None
        if not addons.istio:
            istio = builds.ensure_built(
                builds.ISTIO,
                cache_dir=self.cache_dir,
                go=self.settings.local.go,
                report=self.report,
            )
            istio_crds = istio.directory / "crds" / "customresourcedefinitions.gen.yaml"
        if not addons.istio:
            self.report(
                "Istio: not installed ("
                + (
                    "its proxy, Envoy, cannot be built or pulled on this machine"
                    if build
                    else "istioctl is not on PATH"
                )
                + "); scenarios that need mesh routing will be skipped"
            )
        if build:
            self.report(
                "Argo CD: not installed (its images cannot be pulled here); "
                "@gitops scenarios will be skipped on kind"
            )
        plan = self.plan(
            kind=kind,
            kubectl_binary=str(kubectl),
            node_image_reference=reference,
            addons=addons,
            loaded=loaded,
            istio_crds=istio_crds,
        )
        if self._cluster_exists(kind):
            self.report(f"kind cluster {CLUSTER_NAME}: already exists")
            plan = plan[1:]
        for each in plan:
            self._run(each)
        self._start_proxy(kubectl)
        seconds = time.monotonic() - started
        self.report(f"kind target ready in {seconds:.1f}s; kubeconfig: {self.kubeconfig}")
        return seconds

    def down(self) -> float:
        started = time.monotonic()
        self.proxy.stop()
        if shutil.which("docker") or docker_host.DEBIAN_CLIENT.exists():
            kind = self._kind()
            self._run(
                Step("delete kind cluster", (kind, "delete", "cluster", "--name", CLUSTER_NAME))
            )
        shutil.rmtree(self.root, ignore_errors=True)
        return time.monotonic() - started

    def status(self) -> list[ComponentStatus]:
        kind = binaries.KIND_CLI.install_dir(self._kind_cache()) / "kind"
        if not kind.is_file():
            return [ComponentStatus("kind cluster", False, "kind is not built yet; run bgh up")]
        clusters = subprocess.run(
            [str(kind), "get", "clusters"], capture_output=True, text=True, check=False, timeout=60
        ).stdout.split()
        if CLUSTER_NAME not in clusters:
            return [ComponentStatus("kind cluster", False, f"no cluster named {CLUSTER_NAME!r}")]
        ready = subprocess.run(
            [
                str(self.kubectl_path()),
                f"--kubeconfig={self.kubeconfig}",
                "get",
                "--raw",
                "/readyz",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        detail = "API server ready" if ready.returncode == 0 else ready.stderr.strip()
        lines = [ComponentStatus("kind cluster", ready.returncode == 0, detail)]
        lines.append(
            ComponentStatus(
                "kubectl proxy",
                self.proxy.is_running(),
                f"127.0.0.1:{self.settings.kind.proxy_port}",
            )
        )
        if docker_host.set_up_here():
            states = egress_guard.read_all()
            lines.append(
                ComponentStatus(
                    "egress guard",
                    all(s.complete for s in states),
                    ", ".join(f"{s.family}: {s.rejected_packets} rejected" for s in states),
                )
            )
        return lines

    def collect_logs(self, directory: Path) -> None:
        """`kind export logs` into ``directory``, for artifacts on failure."""
        self._run(
            Step(
                "export logs",
                (self._kind(), "export", "logs", str(directory), "--name", CLUSTER_NAME),
            )
        )

    def gateway_url(self, namespace: str, service: str) -> str:
        """A Service of ``namespace`` through the API server's Service proxy (``kubectl proxy``)."""
        return (
            f"http://127.0.0.1:{self.settings.kind.proxy_port}/api/v1/namespaces/{namespace}"
            f"/services/{service}:http/proxy"
        )

    def missing_addon(self, addon: str) -> str | None:
        """Why ``addon`` ("istio" or "prometheus") is not usable on this cluster, or None when
        it runs: read from the cluster (a Deployment with ready replicas), not assumed."""
        where = {
            "istio": ("istio-system", "istiod"),
            "prometheus": (prometheus.NAMESPACE, prometheus.NAME),
        }
        namespace, name = where[addon]
        result = subprocess.run(
            [
                str(self.kubectl_path()),
                f"--kubeconfig={self.kubeconfig}",
                "-n",
                namespace,
                "get",
                "deployment",
                name,
                "-o",
                "jsonpath={.status.readyReplicas}",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode == 0 and result.stdout.strip() not in ("", "0"):
            return None
        seen = (result.stderr.strip() or "no ready replicas").splitlines()[0]
        return f"this kind cluster has no running {name} in {namespace} ({seen})"

    @property
    def prometheus_url(self) -> str | None:
        """``BGH_PROMETHEUS_URL`` when set, else the cluster's Prometheus through ``kubectl
        proxy`` on loopback (the API server's Service proxy, as for gateway A)."""
        if self.settings.prometheus_url is not None:
            return self.settings.prometheus_url
        return (
            f"http://127.0.0.1:{self.settings.kind.proxy_port}/api/v1/namespaces/"
            f"{prometheus.NAMESPACE}/services/{prometheus.NAME}:{prometheus.PORT_NAME}/proxy"
        )

    @property
    def analysis_prometheus_url(self) -> str | None:
        """The Rollouts controller runs in the cluster: it reaches Prometheus by its Service."""
        return prometheus.IN_CLUSTER_URL

    def chart_values(self) -> dict[str, str]:
        """The analysis chart's server reads the cluster's Prometheus, whose scrape interval
        fits the judge's window (``analysis.window`` in gitops/charts/analysis)."""
        return {
            **super().chart_values(),
            "kind.prometheusUrl": prometheus.IN_CLUSTER_URL,
            "kind.scrapeInterval": f"{scrape.SCRAPE_INTERVAL_SECONDS}s",
        }

    crashes_pods = True

    def crash_pod(self, namespace: str, pod: str) -> int:
        """SIGKILL the process of ``pod``'s running container inside its kind node (``docker
        exec`` the node; crictl finds the container by the kubelet's pod labels), as a crash
        would; the kubelet restarts it. The pid killed, in the node's pid namespace."""
        found = pod_from(self.kube(namespace).get(POD, pod))
        if not found.node:
            raise TargetError(f'cannot crash pod "{pod}" in namespace "{namespace}": not scheduled')
        docker = docker_host.client()

        def in_node(*argv: str) -> str:
            result = subprocess.run(
                [docker, "exec", found.node, *argv],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            if result.returncode != 0:
                raise TargetError(
                    f'crashing pod "{pod}" in namespace "{namespace}" on node {found.node}: '
                    f"`{' '.join(argv)}` failed\n{indent_tail(result.stderr or result.stdout)}"
                )
            return result.stdout.strip()

        containers = in_node(
            "crictl", "ps", "--state", "running", "--quiet",
            "--label", f"io.kubernetes.pod.namespace={namespace}",
            "--label", f"io.kubernetes.pod.name={pod}",
        ).split()  # fmt: skip
        if not containers:
            raise NotFound(
                f'pod "{pod}" in namespace "{namespace}" has no running container on node '
                f"{found.node}"
            )
        pid = in_node(
            "crictl", "inspect", "--output", "go-template", "--template", "{{.info.pid}}",
            containers[0],
        )  # fmt: skip
        in_node("kill", "-KILL", pid)
        return int(pid)

    def kubectl_path(self) -> Path:
        return binaries.KUBERNETES_NODE.install_dir(self._kind_cache()) / "kubectl"

    def kubectl_binary(self) -> Path:
        """The pinned kubectl (the node image's), built on first use."""
        built = builds.ensure_built(
            binaries.KUBERNETES_NODE,
            cache_dir=self._kind_cache(),
            go=self.settings.local.go,
            report=self.report,
        )
        return built.path("kubectl")

    # -- helpers -----------------------------------------------------------------------------

    def _kind_cache(self) -> Path:
        return self.cache_dir / "kind"

    def _builds_images(self, host: docker_host.DockerHost) -> bool:
        mode = self.settings.kind.images
        build = host.set_up_here if mode == "auto" else mode == "build"
        self.report(
            f"images: {'built on this machine' if build else 'pinned upstream images'} "
            f"(BGH_KIND__IMAGES={mode}"
            + (", Docker was set up by bgh here" if mode == "auto" and build else "")
            + ")"
        )
        return build

    def _kind(self) -> str:
        built = builds.ensure_built(
            binaries.KIND_CLI,
            cache_dir=self._kind_cache(),
            go=self.settings.local.go,
            report=self.report,
        )
        kind = str(built.path("kind"))
        check_version(kind, ("version",), versions.KIND)
        return kind

    def _istioctl(self) -> str | None:
        istioctl = shutil.which("istioctl")
        if istioctl is None:
            return None
        check_version(istioctl, ("version", "--remote=false", "--short"), versions.ISTIO)
        return istioctl

    def _cluster_exists(self, kind: str) -> bool:
        clusters = subprocess.run(
            [kind, "get", "clusters"], capture_output=True, text=True, check=False, timeout=60
        ).stdout.split()
        return CLUSTER_NAME in clusters and self.kubeconfig.exists()

    def _start_proxy(self, kubectl: Path) -> None:
        port = self.settings.kind.proxy_port
        if self.proxy.is_running():
            self.report(f"kubectl proxy: already running on 127.0.0.1:{port}")
            return
        if port_in_use(port):
            raise TargetError(
                f"kubectl proxy: loopback port {port} is in use by another process; free it or "
                f"choose another with BGH_KIND__PROXY_PORT (e.g. BGH_KIND__PROXY_PORT=18002)"
            )
        argv = [
            str(kubectl),
            f"--kubeconfig={self.kubeconfig}",
            "proxy",
            "--address=127.0.0.1",
            f"--port={port}",
        ]
        self.proxy.start(argv)
        seconds = wait_http_ok(
            self.proxy, f"http://127.0.0.1:{port}/readyz", within=30, command=" ".join(argv)
        )
        self.report(f"kubectl proxy: 127.0.0.1:{port} ready in {seconds:.1f}s")

    # -- where things are (the Target protocol) ----------------------------------------------

    def kubeconfig_in_use(self) -> Path:
        """``BGH_KUBECONFIG`` when set, else the one ``kind create cluster`` wrote."""
        return self.settings.kubeconfig or self.kubeconfig

    def kubectl(self) -> Kubectl:
        """The pinned kubectl the kind target built (the node image's)."""
        if not self.kubectl_path().is_file():
            raise ConfigError(
                f"kubectl of the kind target is not built ({self.kubectl_path()}); "
                "run `bgh up --target kind` first"
            )
        return Kubectl(self.kubectl_path(), self.kubeconfig_in_use(), self.settings.context)

    def gateway(self, namespace: str | None = None) -> Gateway:
        """Gateway A's Services through ``kubectl proxy`` and the API server's Service proxy:
        no NodePort per scenario."""
        namespace = namespace or self.settings.namespace
        urls = {
            Side.ACTIVE: self.gateway_url(namespace, "gateway-a"),
            Side.PREVIEW: self.gateway_url(namespace, "gateway-a-preview"),
        }
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


def versions_named(gitops_dir: Path) -> set[str]:
    """Every service version the environments' version files name (``envs/*_version.yaml``)."""
    named: set[str] = set()
    for file in sorted((gitops_dir / "envs").glob("*_version.yaml")):
        services = (yaml.safe_load(file.read_text()) or {}).get("services") or {}
        named |= {str(entry["version"]) for entry in services.values() if entry.get("version")}
    return named


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def check_version(tool: str, argv: Sequence[str], pinned: str) -> None:
    """Refuse a tool whose version is not the pinned one (the images and manifests are only
    right for that release)."""
    result = subprocess.run([tool, *argv], capture_output=True, text=True, check=False, timeout=60)
    said = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or pinned.removeprefix("v") not in said:
        raise ConfigError(
            f"{tool} must be version {pinned}; `{tool} {' '.join(argv)}` says: "
            f"{said.splitlines()[0] if said else f'(exit {result.returncode})'}"
        )


def _server_side_apply(
    kubectl: Sequence[str], name: str, manifest: str, *, namespace: str | None = None
) -> Step:
    scope = ("-n", namespace) if namespace else ()
    return Step(
        name, (*kubectl, "apply", *scope, "--server-side", "--force-conflicts", "-f", manifest)
    )


def _namespace(kubectl: Sequence[str], name: str, *, labels: dict[str, str]) -> Step:
    # Applying a Namespace object is idempotent where `kubectl create namespace` is not.
    metadata: dict[str, object] = {"name": name}
    if labels:
        metadata["labels"] = labels
    manifest = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    return Step(f"namespace {name}", (*kubectl, "apply", "-f", "-"), stdin=manifest)
