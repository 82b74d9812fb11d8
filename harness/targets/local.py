"""The Docker-free local target: a real control plane and the real Argo Rollouts controller.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kwok controller run as
local processes through ``kwokctl create cluster --runtime binary`` with binaries built from the
Go module proxy (``builds.py``); kwok simulates nodes and pods. The Argo Rollouts controller runs
out of cluster against the same API server, with leader election off and its ports moved off the
defaults. Beside them run Debian's ``prometheus`` and the analysis server
(``python -m analysis.server``, the Argo Rollouts web provider) on fixed loopback ports from the
settings, so AnalysisTemplates can name them. Prometheus finds its scrape targets in a file
(``file_sd_configs``), ``prometheus/targets.json``, which starts empty; whoever runs pods'
processes writes them there with the labels ``pod``, ``rollouts_pod_template_hash`` and
``root_version``. Everything lives under ``<state_dir>/local/``; ``down`` removes all of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.argocd import ARGOCD_NAMESPACE, ArgoCD, GitOpsDelivery
from harness.errors import NotFound, TargetError, indent_tail, log_tail
from harness.gitops import GitOps
from harness.kube import Kube
from harness.release import next_root_version
from harness.settings import Settings
from harness.targets import ComponentStatus, builds
from harness.targets.local_argocd import LocalArgoCD
from harness.targets.processes import (
    Process,
    debian_command,
    free_port,
    port_in_use,
    wait_gone,
    wait_http_ok,
    wait_port_bindable,
)
from harness.waits import poll

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
CLUSTER_NAME = "bgh"
ROLLOUTS_NAMESPACE = "argo-rollouts"
KWOK_COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
)

Report = Callable[[str], None]


class LocalTarget:
    """Bring the local cluster up, report on it, and take it down again."""

    def __init__(self, settings: Settings, *, report: Report = lambda _line: None) -> None:
        self.settings = settings
        self.report = report
        self.root = settings.state_dir.resolve() / "local"
        self.kwok_workdir = self.root / "kwok"
        self.kubeconfig = self.root / "kubeconfig"
        self.state_file = self.root / "state.json"
        self.rollouts_controller = Process("rollouts-controller", self.root)
        self.prometheus = Process("prometheus", self.root)
        self.analysis_server = Process("analysis-server", self.root)
        self.dataplane = Process("dataplane", self.root)
        self.dataplane_dir = self.root / "dataplane"
        self.prometheus_dir = self.root / "prometheus"
        self.scrape_targets_file = self.prometheus_dir / "targets.json"
        self.argocd = LocalArgoCD(self, report)

    @property
    def prometheus_url(self) -> str:
        """Base URL of the target's Prometheus, from the ports ``up`` recorded."""
        return f"http://127.0.0.1:{self._recorded_port('prometheus_port')}"

    @property
    def analysis_url(self) -> str:
        """Base URL of the target's analysis server (``/judge``, ``/healthz``)."""
        return f"http://127.0.0.1:{self._recorded_port('analysis_port')}"

    def _recorded_port(self, key: str) -> int:
        port = self._read_state().get(key)
        if port is None:
            raise TargetError(
                f"the local target has no {key.replace('_', ' ')} recorded in {self.state_file}; "
                "run `bgh up` first"
            )
        return port

    # -- Argo CD ----------------------------------------------------------------------------

    def argocd_client(self) -> ArgoCD:
        """Argo CD's Applications on this target (namespace ``argocd``)."""
        kube_client = Kube(kubeconfig=self.kubeconfig, context=None, namespace=ARGOCD_NAMESPACE)
        return ArgoCD(kube_client, timeout=self.settings.timeout("sync"))

    def start_argocd(self) -> None:
        """Start Argo CD beside a running target (what ``up`` does with ``local.argocd`` on)."""
        built = self.build()
        state = self._read_state()
        if not self._apiserver_ready(built):
            raise TargetError("the local target is not up; run `bgh up` first")
        self.argocd.up(built, state)
        self._write_state(state)

    def bootstrap_argocd(self) -> None:
        """Seed the local Git repository from ``gitops/`` (once: later bumps live there) and
        apply its root Application, as a person bootstraps an app of apps; wait until the root
        is synced and report each child Application."""
        step = time.monotonic()
        repository = self.argocd.repository
        if not repository.exists():
            repository.seed(self.settings.gitops_dir.resolve())
            self.report(f"Git repository {repository.url} seeded from {self.settings.gitops_dir}")
        delivery = GitOpsDelivery(
            self.argocd_client(), repository, report=lambda line: self.report(f"Argo CD: {line}")
        )
        delivery.bootstrap()
        for app in delivery.argocd.applications():
            if not app.in_cluster:
                self.report(
                    f"  {app.name}: not synced here; its destination {app.destination!r} is "
                    "a cluster this Argo CD does not know"
                )
        self.report(f"Argo CD: QA delivered in {time.monotonic() - step:.1f}s")
        root_version = GitOps(repository.gitops_dir).read_versions("qa").root_version
        self.report(
            f"  release with: BGH_GITOPS_DIR={repository.gitops_dir} bgh bump --env qa "
            f"--service service-b --version 1.1.0 --root-version {next_root_version(root_version)} "
            "--push"
        )

    def refresh_argocd(self) -> list[str]:
        """Ask every Application of this target's Argo CD for a refresh (after a push: Argo CD
        would otherwise see it at its next poll, up to three minutes later); their names."""
        if not self.argocd.running():
            return []
        client = self.argocd_client()
        names = [app.name for app in client.applications()]
        for name in names:
            client.refresh(name)
        return names

    # -- building -------------------------------------------------------------------------

    def build(self) -> dict[str, builds.Built]:
        """Every component's binaries, built where the cache lacks them."""
        built = {}
        for component in builds.COMPONENTS:
            if not builds.is_built(component, self.settings.cache_dir):
                self.report(f"{component.name} {component.version}: not in the cache, building")
            built[component.name] = builds.ensure_built(
                component,
                cache_dir=self.settings.cache_dir,
                go=self.settings.local.go,
                timeout=self.settings.timeout("build"),
                report=self.report,
            )
        return built

    # -- up -------------------------------------------------------------------------------

    def up(self) -> float:
        """Make the cluster ready; returns the seconds it took. Safe to call when already up."""
        started = time.monotonic()
        prometheus = debian_command(
            "prometheus",
            "prometheus",
            "the local target runs Debian's Prometheus beside the analysis server",
        )
        built = self.build()
        self.root.mkdir(parents=True, exist_ok=True)
        state = self._read_state()
        try:
            self._control_plane(built, state)
            self._nodes(built)
            self._crds(built)
            self._controller(built, state)
            self._prometheus(prometheus, state)
            self._analysis_server(state)
            self._dataplane(state)
            if self.settings.local.argocd:
                self.argocd.up(built, state)
                self._write_state(state)
                self.bootstrap_argocd()
        except BaseException:
            # Leave nothing running after a failed start; keep the files, the error names logs.
            self.stop(built)
            raise
        self._write_state(state)
        seconds = time.monotonic() - started
        self.report(f"local target ready in {seconds:.1f}s; kubeconfig: {self.kubeconfig}")
        return seconds

    def _control_plane(self, built: dict[str, builds.Built], state: dict[str, int]) -> None:
        step = time.monotonic()
        if self._cluster_exists():
            if self._apiserver_ready(built):
                self.report("control plane: already running")
                return
            self._kwokctl(built, ["start", "cluster", "--wait", self._wait()])
            self.report(f"control plane: restarted in {time.monotonic() - step:.1f}s")
            return
        port = state.setdefault("kube_apiserver_port", free_port())
        if port_in_use(port):
            raise TargetError(
                f"kube-apiserver: port {port} (from {self.state_file}) is in use by another "
                "process; stop it, or run `bgh down` to forget the old ports"
            )
        kubernetes = built["kubernetes"]
        argv = [
            "create",
            "cluster",
            "--runtime",
            "binary",
            "--kube-apiserver-binary",
            str(kubernetes.path("kube-apiserver")),
            "--kube-controller-manager-binary",
            str(kubernetes.path("kube-controller-manager")),
            "--kube-scheduler-binary",
            str(kubernetes.path("kube-scheduler")),
            "--kwok-controller-binary",
            str(built["kwok"].path("kwok")),
            "--etcd-binary",
            str(built["etcd"].path("etcd")),
            "--kube-apiserver-port",
            str(port),
            "--kube-authorization=true",
            # One kwok controller owns every node: no node leases. With leases, a restarted kwok
            # (new holder identity) leaves pods on nodes whose lease the old one held Pending
            # until it expires (200 s).
            "--node-lease-duration-seconds=0",
            # One scheduler and one controller manager: leader election would only make a
            # restarted one wait for its predecessor's lease (15 s) before doing anything.
            "--extra-args=kube-scheduler=leader-elect=false",
            "--extra-args=kube-controller-manager=leader-elect=false",
            "--kubeconfig",
            str(self.kubeconfig),
            "--wait",
            self._wait(),
        ]
        self._kwokctl(built, argv)
        self.report(
            f"control plane ({', '.join(KWOK_COMPONENTS)}): "
            f"ready in {time.monotonic() - step:.1f}s on https://127.0.0.1:{port}"
        )

    def _nodes(self, built: dict[str, builds.Built]) -> None:
        step = time.monotonic()
        replicas = str(self.settings.local.nodes)
        self._kwokctl(built, ["scale", "node", "--replicas", replicas])
        self._kubectl(
            built,
            ["wait", "--for=condition=Ready", "node", "--all", f"--timeout={self._wait()}"],
        )
        self.report(f"nodes: {replicas} kwok nodes Ready in {time.monotonic() - step:.1f}s")

    def _crds(self, built: dict[str, builds.Built]) -> None:
        step = time.monotonic()
        # Argo Rollouts', Istio's and Argo CD's CRDs, each from its pinned upstream module, so a
        # server-side dry run of gitops/ is checked against the real schemas.
        files: list[str] = []
        for name in ("argo-rollouts", "istio", "argo-cd-crds"):
            files += ["-f", str(built[name].directory / "crds")]
        self._kubectl(built, ["apply", "--server-side", "--force-conflicts", *files])
        self._kubectl(
            built, ["wait", "--for=condition=Established", *files, f"--timeout={self._wait()}"]
        )
        namespace = self._kubectl(
            built, ["create", "namespace", ROLLOUTS_NAMESPACE, "--dry-run=client", "-o", "yaml"]
        )
        self._kubectl(built, ["apply", "-f", "-"], stdin=namespace)
        self.report(
            f"CRDs of Argo Rollouts {builds.ARGO_ROLLOUTS.version}, Istio "
            f"{builds.ISTIO.version} and Argo CD {builds.ARGO_CD_CRDS.version}: "
            f"established in {time.monotonic() - step:.1f}s"
        )

    def _controller(self, built: dict[str, builds.Built], state: dict[str, int]) -> None:
        step = time.monotonic()
        metrics = state.setdefault("rollouts_metrics_port", free_port())
        healthz = state.setdefault("rollouts_healthz_port", free_port())
        url = f"http://127.0.0.1:{healthz}/healthz"
        binary = built["argo-rollouts"].path("rollouts-controller")
        argv = [
            str(binary),
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            f"--metricsPort={metrics}",
            f"--healthzPort={healthz}",
            "--loglevel=info",
        ]
        process = self.rollouts_controller
        if process.is_running() and process.command() != argv:
            self.report("rollouts-controller: running with other flags or binary; restarting")
            process.stop()
        if process.is_running():
            wait_http_ok(process, url, within=self.settings.timeout("up"), command=" ".join(argv))
            self.report("rollouts-controller: already running")
            return
        for name, port in (("metrics", metrics), ("healthz", healthz)):
            if port_in_use(port):
                raise TargetError(
                    f"rollouts-controller: {name} port {port} is in use by another process; "
                    f"stop it, or run `bgh down` to forget the old ports ({self.state_file})"
                )
        process.start(argv, env={"POD_NAMESPACE": ROLLOUTS_NAMESPACE})
        wait_http_ok(process, url, within=self.settings.timeout("up"), command=" ".join(argv))
        self.report(
            f"rollouts-controller {builds.ARGO_ROLLOUTS.version}: "
            f"healthy in {time.monotonic() - step:.1f}s (metrics :{metrics}, healthz :{healthz})"
        )

    def _prometheus(self, binary: str, state: dict[str, int]) -> None:
        step = time.monotonic()
        port = self._port(state, "prometheus_port", self.settings.local.prometheus_port)
        self.prometheus_dir.mkdir(parents=True, exist_ok=True)
        if not self.scrape_targets_file.exists():
            self.scrape_targets_file.write_text("[]\n")
        config = self.prometheus_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(_prometheus_config(self.scrape_targets_file)))
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.prometheus_dir / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        url = f"http://127.0.0.1:{port}"
        if self._supervise(
            self.prometheus, argv, f"{url}/-/ready", {"web": port}, "prometheus_port"
        ):
            self.report(
                f"prometheus: ready in {time.monotonic() - step:.1f}s on {url} "
                f"(scrape targets: {self.scrape_targets_file})"
            )

    def _analysis_server(self, state: dict[str, int]) -> None:
        step = time.monotonic()
        port = self._port(state, "analysis_port", self.settings.local.analysis_port)
        prometheus = f"http://127.0.0.1:{state['prometheus_port']}"
        argv = [
            sys.executable,
            "-m",
            "analysis.server",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--prometheus-url={prometheus}",
            # Changed analysis code restarts the server on the next `bgh up`.
            f"--revision={_sources_digest(Path(__file__).parents[2] / 'analysis')}",
        ]
        url = f"http://127.0.0.1:{port}"
        if self._supervise(
            self.analysis_server, argv, f"{url}/healthz", {"http": port}, "analysis_port"
        ):
            self.report(
                f"analysis server: healthy in {time.monotonic() - step:.1f}s on {url} "
                f"(Prometheus {prometheus})"
            )

    def _dataplane(self, state: dict[str, int]) -> None:
        step = time.monotonic()
        binaries = builds.build_demo_services(
            SERVICES_DIR, self.dataplane_dir / "bin", go=self.settings.local.go
        )
        port = self._port(state, "dataplane_port", self.settings.local.dataplane_port)
        argv = [
            sys.executable,
            "-m",
            "harness.dataplane",
            f"--kubeconfig={self.kubeconfig}",
            f"--binaries={binaries}",
            f"--run-dir={self.dataplane_dir}",
            f"--targets-file={self.scrape_targets_file}",
            f"--port={port}",
            # A changed data plane (or demo service) restarts on the next `bgh up`.
            f"--revision={_sources_digest(Path(__file__).parents[1] / 'dataplane', binaries)}",
        ]
        url = f"http://127.0.0.1:{port}"
        if self._supervise(
            self.dataplane, argv, f"{url}/healthz", {"http": port}, "dataplane_port"
        ):
            self.report(
                f"data plane: watching Pods, Services and VirtualServices in "
                f"{time.monotonic() - step:.1f}s; state: {url}/state, pod logs under "
                f"{self.dataplane_dir / 'pods'}"
            )

    @property
    def dataplane_url(self) -> str:
        """Base URL of the data plane's ``/healthz`` and ``/state``."""
        return f"http://127.0.0.1:{self._recorded_port('dataplane_port')}"

    def _dataplane_summary(self) -> str:
        try:
            state = self.read_dataplane()
        except TargetError as exc:
            return str(exc).split(";")[0]
        pods = state["pods"]
        ready = sum(1 for p in pods if p["ready"])
        restarts = sum(p["restarts"] for p in pods)
        problems = len(state["problems"])
        return (
            f"{len(pods)} pod processes ({ready} ready, {restarts} restarts), "
            f"{len(state['services'])} Services, {problems} problems"
        )

    def read_dataplane(self) -> dict[str, Any]:
        """The data plane's ``/state``: pods, their addresses and logs, Service listeners."""
        url = f"{self.dataplane_url}/state"
        try:
            response = httpx.get(url, timeout=5.0, trust_env=False)
            response.raise_for_status()
            state: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TargetError(
                f"the data plane does not answer at {url}: {exc}; `bgh status` shows whether it "
                f"runs, its log is {self.dataplane.log}"
            ) from exc
        return state

    def pod_log(self, namespace: str, name: str) -> str | None:
        """The log of a pod's process (the last 200 kB), or None if the data plane ran none."""
        path = self.dataplane_dir / "pods" / namespace / f"{name}.log"
        try:
            return path.read_text(errors="replace")[-200_000:]
        except OSError:
            return None

    def wait_for_dataplane(
        self, ok: Callable[[dict[str, Any]], bool], *, what: str, within: float
    ) -> dict[str, Any]:
        """Read ``/state`` until ``ok`` holds; HTTP has no watch, so a short capped backoff."""
        state, met = poll(self.read_dataplane, ok, within=within, cap=0.5)
        if not met:
            raise TargetError(
                f"the data plane did not reach {what} within {within:.0f}s; last state:\n"
                + indent_tail(json.dumps(state, indent=2), lines=60)
            )
        return state

    def service_url(self, namespace: str, name: str, port: int) -> str:
        """``http://address:port`` where the data plane serves a Service."""
        state = self.read_dataplane()
        served = [s for s in state["services"] if s["namespace"] == namespace]
        for service in served:
            if service["name"] == name and port in service["ports"]:
                return f"http://{service['address']}:{port}"
        listing = ", ".join(f"{s['name']} {s['ports']}" for s in served) or "none"
        raise NotFound(
            f'the data plane serves no Service "{name}" port {port} in namespace "{namespace}"; '
            f"served there: {listing}. Problems: {state['problems'] or 'none'}"
        )

    def _port(self, state: dict[str, int], key: str, configured: int) -> int:
        """The configured port; 0 means a free one, picked once and kept in state.json."""
        if configured:
            state[key] = configured
        elif key not in state:
            state[key] = free_port()
        return state[key]

    def _supervise(
        self, process: Process, argv: list[str], ready_url: str, ports: dict[str, int], key: str
    ) -> bool:
        """Start ``process`` unless it already runs ``argv``; True if it was started here."""
        command = " ".join(argv)
        within = self.settings.timeout("up")
        if process.is_running() and process.command() != argv:
            self.report(f"{process.name}: running with other flags or binary; restarting")
            process.stop()
        if process.is_running():
            wait_http_ok(process, ready_url, within=within, command=command)
            self.report(f"{process.name}: already running")
            return False
        for name, port in ports.items():
            if port_in_use(port):
                setting = f"BGH_LOCAL__{key.upper()}"
                raise TargetError(
                    f"{process.name}: {name} port {port} is in use by another process; stop it, "
                    f"or choose another port with {setting} (e.g. {setting}=0 for a free one)"
                )
        process.start(argv, cwd=Path(__file__).resolve().parents[2])
        wait_http_ok(process, ready_url, within=within, command=command)
        return True

    # -- down and status ------------------------------------------------------------------

    def down(self) -> float:
        """Stop every process and remove every file the local target made."""
        started = time.monotonic()
        for process in self._own_processes():
            if process.stop(grace=15.0):
                self.report(f"{process.name}: stopped")
        if self._cluster_exists():
            kwokctl = self._cached_binary(builds.KWOK, "kwokctl")
            if kwokctl is None:
                self._kill_kwok_processes()
            else:
                self._run(
                    "kwokctl",
                    [str(kwokctl), "--name", CLUSTER_NAME, "delete", "cluster"],
                    env=self._kwok_env(None),
                )
            self.report("control plane: deleted")
        self._kill_kwok_processes()
        shutil.rmtree(self.root, ignore_errors=True)
        seconds = time.monotonic() - started
        self.report(f"local target down in {seconds:.1f}s")
        return seconds

    def restart_control_plane(self) -> float:
        """Stop the control plane, wait until its processes are gone, start it again.

        kwokctl's stop does not wait, and a kube-apiserver still shutting down holds its port; a
        start issued at once would fail to bind.
        """
        started = time.monotonic()
        built = self.build()
        pids = self._cluster_dir() / "pids"
        attempts = 3
        for attempt in range(1, attempts + 1):
            running = [
                p.pid() for p in (Process(n, pids) for n in KWOK_COMPONENTS) if p.is_running()
            ]
            self._kwokctl(built, ["stop", "cluster"])
            for pid in running:
                if pid is not None:
                    wait_gone(pid, within=10.0)
            port = self._read_state().get("kube_apiserver_port")
            if port is not None and not wait_port_bindable(port, within=60.0):
                # A kube-apiserver started now would fail to bind and kwokctl would wait two
                # minutes for it; keep the evidence of who holds the port instead.
                kept = self.root / "logs" / f"restart-{int(time.time())}-port-{port}-busy"
                kept.mkdir(parents=True, exist_ok=True)
                _keep_sockets(kept / "sockets.txt")
                self.report(f"kube-apiserver port {port} still taken 60 s after stop; see {kept}")
            # kwokctl's own wait ends with exit 0 even when the API server never answered.
            self._kwokctl(built, ["start", "cluster", "--wait", "30s"])
            if self._apiserver_ready(built, within=30.0):
                # client-go's informers back off while the API server is away, and the back-off
                # grows with each outage that comes within two minutes of the last (0.8 s, then
                # doubling up to 30 s): after a few restarts the Rollouts controller would sit
                # idle for half a minute. A controller pod would be restarted with its control
                # plane too; so is this one.
                if self.rollouts_controller.is_running():
                    self.rollouts_controller.stop()
                    self._controller(built, self._read_state())
                if self.argocd.controller.is_running():
                    self.argocd.controller.stop()
                    self.argocd.up(built, self._read_state())
                return time.monotonic() - started
            # Seen in a few full runs: the new kube-apiserver could not bind its port ("address
            # already in use"). Keep the logs (the next start truncates them) and the sockets on
            # that port, then start again.
            kept = self.root / "logs" / f"restart-{int(time.time())}-attempt-{attempt}"
            shutil.copytree(self._cluster_dir() / "logs", kept, dirs_exist_ok=True)
            _keep_sockets(kept / "sockets.txt")
            self.report(
                f"control plane: not ready 30 s after restart attempt {attempt}; logs kept in "
                f"{kept}" + ("; restarting again" if attempt < attempts else "")
            )
        raise TargetError(
            f"the control plane did not come back after {attempts} restarts; logs under "
            f"{self.root / 'logs'}"
        )

    def stop(self, built: dict[str, builds.Built]) -> None:
        """Stop every process but keep the cluster's files (logs, kubeconfig) for a post-mortem."""
        for process in self._own_processes():
            process.stop(grace=15.0)
        if self._cluster_exists():
            # The kill below still stops whatever kwokctl could not.
            with contextlib.suppress(TargetError):
                self._kwokctl(built, ["stop", "cluster"])
        self._kill_kwok_processes()
        self.report(f"stopped every component; logs kept under {self.root}")

    def status(self) -> list[ComponentStatus]:
        lines = []
        pids = self._cluster_dir() / "pids"
        logs = self._cluster_dir() / "logs"
        for name in KWOK_COMPONENTS:
            process = Process(name, pids)
            running = process.is_running()
            detail = f"pid {process.pid()}" if running else "not running"
            if not running and (logs / f"{name}.log").exists():
                detail += f"; log: {logs / f'{name}.log'}"
            lines.append(ComponentStatus(name, running, detail))
        state = self._read_state()
        own: list[tuple[Process, str | None]] = [
            (self.rollouts_controller, None),
            (self.prometheus, "prometheus_port"),
            (self.analysis_server, "analysis_port"),
            (self.dataplane, "dataplane_port"),
        ]
        if self.settings.local.argocd or self.argocd.running():
            own += [
                (self.argocd.redis, "argocd_redis_port"),
                (self.argocd.repo_server, "argocd_repo_server_metrics_port"),
                (self.argocd.controller, "argocd_controller_metrics_port"),
            ]
        for process, key in own:
            running = process.is_running()
            detail = f"pid {process.pid()}" if running else "not running"
            if running and key in state:
                scheme = "redis" if process is self.argocd.redis else "http"
                detail += f", {scheme}://127.0.0.1:{state[key]}"
            if not running and process.log.exists():
                detail += f"; log: {process.log}\n{log_tail(process.log, lines=5)}"
            if running and process is self.dataplane:
                detail += "; " + self._dataplane_summary()
            lines.append(ComponentStatus(process.name, running, detail))
        return lines

    # -- helpers --------------------------------------------------------------------------

    def _own_processes(self) -> tuple[Process, ...]:
        """What ``up`` starts beside kwok's components, in the order to stop them."""
        return (
            *self.argocd.processes(),
            self.dataplane,
            self.analysis_server,
            self.prometheus,
            self.rollouts_controller,
        )

    def _wait(self) -> str:
        return f"{self.settings.timeout('up'):.0f}s"

    def _cluster_dir(self) -> Path:
        return self.kwok_workdir / "clusters" / CLUSTER_NAME

    def _cluster_exists(self) -> bool:
        return (self._cluster_dir() / "kwok.yaml").is_file()

    def _apiserver_ready(self, built: dict[str, builds.Built], *, within: float = 0.0) -> bool:
        """Whether ``/readyz`` answers ok within ``within`` seconds (0: one try). kwokctl's
        "ready" can come before the API server's post-start hooks have all passed."""
        if not self.kubeconfig.is_file():
            return False
        argv = [
            str(built["kubernetes"].path("kubectl")),
            f"--kubeconfig={self.kubeconfig}",
            "get",
            "--raw",
            "/readyz",
            "--request-timeout=2s",
        ]
        last, ready = poll(
            lambda: subprocess.run(argv, capture_output=True, text=True, check=False),
            lambda result: result.returncode == 0,
            within=within,
            cap=0.5,
        )
        if not ready and within:
            self.report(f"kube-apiserver /readyz: {(last.stdout + last.stderr).strip()[-400:]}")
        return ready

    def _kwok_env(self, built: dict[str, builds.Built] | None) -> dict[str, str]:
        env = {
            "KWOK_WORKDIR": str(self.kwok_workdir),
            "KWOK_KUBE_VERSION": builds.KUBERNETES.version,
            "KWOK_ETCD_VERSION": builds.ETCD.version.removeprefix("v"),
        }
        if built is not None:
            kube_bin = built["kubernetes"].directory
            # kwokctl runs `kubectl` by name: put the one built with the control plane first.
            env["PATH"] = f"{kube_bin}{os.pathsep}{os.environ.get('PATH', '')}"
            env["KWOK_KUBECTL_BINARY"] = str(kube_bin / "kubectl")
        return env

    def _kwokctl(self, built: dict[str, builds.Built], argv: Sequence[str]) -> str:
        binary = built["kwok"].path("kwokctl")
        return self._run(
            "kwokctl", [str(binary), "--name", CLUSTER_NAME, *argv], env=self._kwok_env(built)
        )

    def _kubectl(
        self, built: dict[str, builds.Built], argv: Sequence[str], *, stdin: str | None = None
    ) -> str:
        binary = built["kubernetes"].path("kubectl")
        return self._run(
            "kubectl", [str(binary), f"--kubeconfig={self.kubeconfig}", *argv], stdin=stdin
        )

    def _run(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> str:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=False,
        )
        with log.open("a") as out:
            out.write(
                f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}(exit {result.returncode})\n"
            )
        if result.returncode != 0:
            raise TargetError(
                f"{name} failed (exit {result.returncode})\n  command: {' '.join(argv)}\n"
                f"  log: {log}\n{indent_tail(result.stderr or result.stdout)}"
                + self._component_logs_hint()
            )
        return result.stdout

    def _component_logs_hint(self) -> str:
        logs = self._cluster_dir() / "logs"
        if not logs.is_dir():
            return ""
        return f"\n  component logs: {logs}"

    def _cached_binary(self, component: builds.Component, binary: str) -> Path | None:
        if not builds.is_built(component, self.settings.cache_dir):
            return None
        return component.install_dir(self.settings.cache_dir) / binary

    def _kill_kwok_processes(self) -> None:
        pids = self._cluster_dir() / "pids"
        for name in KWOK_COMPONENTS:
            Process(name, pids).stop(grace=5.0)

    def _read_state(self) -> dict[str, int]:
        try:
            state: dict[str, int] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state

    def _write_state(self, state: dict[str, int]) -> None:
        self.state_file.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


def _sources_digest(*directories: Path) -> str:
    digest = hashlib.sha256()
    for directory in directories:
        for file in sorted(
            p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def _prometheus_config(targets: Path) -> dict[str, object]:
    # 5s scrapes keep analysis/checks.yaml's 1m rate window at 12 samples; file-based discovery
    # picks up a rewritten targets file without a reload.
    return {
        "global": {"scrape_interval": "5s", "scrape_timeout": "4s", "evaluation_interval": "15s"},
        "scrape_configs": [
            {
                "job_name": "bgh",
                "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "5s"}],
            }
        ],
    }


def _keep_sockets(path: Path) -> None:
    """Every TCP socket on the machine with its owner, as evidence for a port that would not bind
    (``ss`` when installed, the kernel's tables otherwise)."""
    ss = shutil.which("ss")
    if ss is not None:
        result = subprocess.run([ss, "-tanp"], capture_output=True, text=True, check=False)
        path.write_text(result.stdout + result.stderr)
        return
    path.write_text("".join(Path(f"/proc/net/{t}").read_text() for t in ("tcp", "tcp6")))
