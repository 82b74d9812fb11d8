"""The Docker-free local target: a real control plane and the real Argo Rollouts controller.

``LocalTarget`` puts together what runs under ``<state_dir>/local/`` (``down`` removes all of
it): the kwok control plane (``control_plane``), the processes beside it (``servers``: the
Rollouts controller, Prometheus, the analysis server, the data plane), Argo CD when asked for
(``argocd``), and the data plane's client (``dataplane_client``), which says where gateway A's
Services are and keeps the pods' logs. The ports ``up`` picked are kept in ``state.json``.
``up`` starts at once what does not depend on each other (README, "The local target").
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from harness import builds
from harness.argocd import ArgoCD
from harness.delivery import ArgoCDDelivery
from harness.errors import ConfigError, TargetError, log_tail
from harness.gitops import GitOps
from harness.kubectl import Kubectl
from harness.probes import Gateway
from harness.release import next_root_version
from harness.settings import Settings
from harness.target import ComponentStatus, TargetDefaults
from harness.targets.local.argocd import LocalArgoCD
from harness.targets.local.control_plane import ROLLOUTS_NAMESPACE, ControlPlane
from harness.targets.local.crds import CRDs
from harness.targets.local.dataplane_client import DataPlaneClient, LocalServices
from harness.targets.local.servers import Servers
from harness.targets.local.state import State, StateLock
from harness.targets.processes import Process, debian_command, stop_running_from, together

Report = Callable[[str], None]


class LocalTarget(TargetDefaults):
    """Bring the local cluster up, report on it, and take it down again."""

    name: Literal["local"] = "local"
    chart_flavour = "default"
    owns_cluster = True

    def __init__(self, settings: Settings, *, report: Report = lambda _line: None) -> None:
        self.settings = settings
        self.report = report
        self.root = settings.state_dir / "local"
        self.state = State(self.root / "state.json")
        # Beside the root, not in it: `down` removes the root while holding the lock.
        self.lock = StateLock(self.root.parent / "local.lock")
        self.control_plane = ControlPlane(self.root, settings, self.state, report)
        self.kubeconfig = self.control_plane.kubeconfig
        self.servers = Servers(self.root, settings, self.state, self.kubeconfig, report)
        self.dataplane = DataPlaneClient(
            lambda: f"http://127.0.0.1:{self.state.port('dataplane_port')}",
            log=self.servers.dataplane.log,
            run_dir=self.servers.dataplane_dir,
        )
        self.argocd = LocalArgoCD(
            self.root, settings, self.control_plane, self.state, self.kube, report
        )

    @property
    def rollouts_controller(self) -> Process:
        return self.servers.rollouts_controller

    @property
    def dataplane_dir(self) -> Path:
        return self.servers.dataplane_dir

    @property
    def prometheus_url(self) -> str:
        """Base URL of the target's Prometheus (the one its analysis server reads), from the
        ports ``up`` recorded."""
        return f"http://127.0.0.1:{self.state.port('prometheus_port')}"

    @property
    def analysis_url(self) -> str:
        """Base URL of the target's analysis server (``/judge``, ``/healthz``)."""
        return f"http://127.0.0.1:{self.state.port('analysis_port')}"

    # -- where things are (the Target protocol) ----------------------------------------------

    def chart_values(self) -> dict[str, str]:
        """The charts call this target's own analysis server and Prometheus, on the ports ``up``
        picked (gitops/envs/qa_version.yaml names 18090 and 19090, which only a target told
        to use them listens on)."""
        return {
            **super().chart_values(),
            "analysis.judgeUrl": self.analysis_url,
            "analysis.prometheusUrl": self.prometheus_url,
        }

    def name_analysis_urls(self, gitops_dir: Path, env: str) -> None:
        """Write this target's analysis server and Prometheus URLs into ``env``'s version file
        under ``gitops_dir``, as a long-lived cluster's own version file names its in-cluster
        ones (runbooks on the existing-target path render that file as it stands)."""
        urls = {k: v for k, v in self.chart_values().items() if k.startswith("analysis.")}
        GitOps(gitops_dir).set_values(env, urls)

    def kubectl(self) -> Kubectl:
        """The kubectl built with the control plane."""
        binary = builds.KUBERNETES.install_dir(self.settings.cache_dir) / "kubectl"
        if not binary.is_file():
            raise ConfigError(
                f"kubectl of the local target is not built ({binary}); run `bgh up` first"
            )
        return Kubectl(
            binary,
            self.kubeconfig_in_use(),
            self.settings.context,
            impersonate=self.settings.impersonate,
        )

    def gateway(self, namespace: str | None = None) -> Gateway:
        """Gateway A where the data plane serves its Services on loopback."""
        services = LocalServices(self.dataplane, namespace or self.settings.namespace)
        return Gateway(services.locate, timeout=self.settings.deadlines.probe)

    def pod_logs(self, namespace: str, pod: str) -> str | None:
        return self.dataplane.pod_logs(namespace, pod)

    crashes_pods = True

    def crash_pod(self, namespace: str, pod: str) -> int:
        return self.dataplane.crash_pod(namespace, pod)

    def kubeconfig_in_use(self) -> Path:
        """``BGH_KUBECONFIG`` when set, else the one ``up`` wrote (the target's own processes
        always use that one)."""
        return self.settings.kubeconfig or self.kubeconfig

    def gitops_argocd(self) -> ArgoCD:
        self.start_argocd()
        return self.argocd_client()

    # -- the data plane ---------------------------------------------------------------------

    def read_dataplane(self) -> dict[str, Any]:
        return self.dataplane.read()

    def wait_for_dataplane(
        self, ok: Callable[[dict[str, Any]], bool], *, what: str, within: float
    ) -> dict[str, Any]:
        return self.dataplane.wait_for(ok, what=what, within=within)

    def service_url(self, namespace: str, name: str, port: int) -> str:
        return self.dataplane.service_url(namespace, name, port)

    # -- Argo CD ----------------------------------------------------------------------------

    def argocd_client(self) -> ArgoCD:
        """Argo CD's Applications on this target (namespace ``argocd``)."""
        return self.argocd.client()

    def start_argocd(self) -> None:
        """Start Argo CD beside a running target (what ``up`` does with ``local.argocd`` on)."""
        built = self.build()
        ports = self.state.read()
        if not self.control_plane.apiserver_ready(built):
            raise TargetError("the local target is not up; run `bgh up` first")
        self.argocd.up(built, ports)
        self.state.write(ports)

    def establish_argocd_crds(self) -> None:
        """Argo CD's CRDs without Argo CD: ``up`` leaves them out (``start_argocd`` puts them in),
        and a server-side dry run of Applications needs their schema."""
        built = self.build()
        self.control_plane.establish(self.control_plane.read_argocd_crds(built))

    def bootstrap_argocd(self) -> None:
        """Seed the local Git repository from ``gitops/`` (once: later bumps live there) and
        apply its root Application, as a person bootstraps an app of apps; wait until the root
        is synced and report each child Application."""
        step = time.monotonic()
        repository = self.argocd.repository
        if not repository.exists():
            repository.seed(self.settings.gitops_dir.resolve(), parameters=self.chart_values())
            self.report(f"Git repository {repository.url} seeded from {self.settings.gitops_dir}")
        delivery = ArgoCDDelivery(
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

    # -- up, down, status -------------------------------------------------------------------

    def build(self) -> dict[str, builds.Built]:
        """Every component's binaries, built where the cache lacks them."""
        return self.control_plane.build()

    def up(self) -> float:
        """Make the cluster ready; returns the seconds it took. Safe to call when already up."""
        with self.lock.held("bgh up"):
            return self._up()

    def _up(self) -> float:
        started = time.monotonic()
        prometheus = debian_command(
            "prometheus",
            "prometheus",
            "the local target runs Debian's Prometheus beside the analysis server",
        )
        built = self.build()
        self.root.mkdir(parents=True, exist_ok=True)
        # Keys, the admin kubeconfig, Redis's password and every log live below: owner only.
        self.root.chmod(0o700)
        ports = self.state.read()
        self.servers.assign_ports(ports)

        crds: dict[str, CRDs] = {}

        def cluster(services: Future[Path]) -> None:
            # The CRDs' YAML is read while the control plane starts.
            together(
                lambda: self.control_plane.up(built, ports),
                lambda: crds.update(self.control_plane.read_crds(built)),
            )
            # Each controller starts as soon as the kinds it watches are served: the Rollouts
            # controller waits for all of its informers (crds.py), the data plane lists
            # VirtualServices. Nodes are for the pods, which come later.
            together(
                lambda: self.control_plane.nodes(built),
                rollouts,
                lambda: dataplane(services),
            )

        def rollouts() -> None:
            together(
                lambda: self.control_plane.ensure_namespace(built, ROLLOUTS_NAMESPACE),
                lambda: self.control_plane.establish(crds["argo-rollouts"]),
            )
            self.servers.rollouts(built, ports)

        def dataplane(services: Future[Path]) -> None:
            self.control_plane.establish(crds["istio"])
            self.servers.dataplane_server(ports, services.result())

        try:
            # The demo services build (only the data plane waits for them), Prometheus and the
            # analysis server start: none of them needs the cluster.
            with ThreadPoolExecutor(max_workers=1) as pool:
                services = pool.submit(self.servers.build_demo_services)
                together(
                    lambda: cluster(services),
                    lambda: self.servers.prometheus_server(prometheus, ports),
                    lambda: self.servers.analysis(ports),
                )
            if self.settings.local.argocd:
                self.argocd.up(built, ports)
                self.state.write(ports)
                self.bootstrap_argocd()
        except BaseException:
            # Leave nothing running after a failed start; keep the files, the error names logs.
            self.stop(built)
            raise
        self.state.write(ports)
        seconds = time.monotonic() - started
        self.report(f"local target ready in {seconds:.1f}s; kubeconfig: {self.kubeconfig}")
        return seconds

    def down(self) -> float:
        """Stop every process and remove every file the local target made."""
        with self.lock.held("bgh down"):
            return self._down()

    def _down(self) -> float:
        started = time.monotonic()
        for process in self._own_processes():
            if process.stop(grace=15.0):
                self.report(f"{process.name}: stopped")
        self._stop_orphaned_pods()
        self.control_plane.delete()
        shutil.rmtree(self.root, ignore_errors=True)
        seconds = time.monotonic() - started
        self.report(f"local target down in {seconds:.1f}s")
        return seconds

    def restart_control_plane(self) -> float:
        """Restart the control plane, then the controllers that watch it.

        client-go's informers back off while the API server is away, and the back-off grows
        with each outage that comes within two minutes of the last (0.8 s, then doubling up to
        30 s): after a few restarts the Rollouts controller would sit idle for half a minute. A
        controller pod would be restarted with its control plane too; so is this one.
        """
        started = time.monotonic()
        built = self.build()
        self.control_plane.restart(built)
        self.servers.restart_rollouts(built)
        if self.argocd.controller.is_running():
            self.argocd.controller.stop()
            ports = self.state.read()
            self.argocd.up(built, ports)
        return time.monotonic() - started

    def stop(self, built: dict[str, builds.Built]) -> None:
        """Stop every process but keep the cluster's files (logs, kubeconfig) for a post-mortem."""
        for process in self._own_processes():
            process.stop(grace=15.0)
        self._stop_orphaned_pods()
        self.control_plane.stop(built)
        self.report(f"stopped every component; logs kept under {self.root}")

    def status(self) -> list[ComponentStatus]:
        lines = self.control_plane.status()
        ports = self.state.read()
        own: list[tuple[Process, str | None]] = [
            (self.servers.rollouts_controller, None),
            (self.servers.prometheus, "prometheus_port"),
            (self.servers.analysis_server, "analysis_port"),
            (self.servers.dataplane, "dataplane_port"),
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
            if running and key in ports:
                scheme = "redis" if process is self.argocd.redis else "http"
                detail += f", {scheme}://127.0.0.1:{ports[key]}"
            if not running and process.log.exists():
                detail += f"; log: {process.log}\n{log_tail(process.log, lines=5)}"
            if running and process is self.servers.dataplane:
                detail += "; " + self.dataplane.summary()
            lines.append(ComponentStatus(process.name, running, detail))
        return lines

    def _stop_orphaned_pods(self) -> None:
        """Pod processes a crashed data plane left behind (they die with it unless setpriv was
        missing), found by the binaries they run."""
        pids = stop_running_from(self.servers.dataplane_dir / "bin", grace=5.0)
        if pids:
            self.report(f"pod processes left by the data plane: stopped {pids}")

    def processes(self) -> tuple[Process, ...]:
        """Every process this target starts: kwok's components, then the ones beside them."""
        return (*self.control_plane.processes(), *self._own_processes())

    def _own_processes(self) -> tuple[Process, ...]:
        """What ``up`` starts beside kwok's components, in the order to stop them."""
        return (*self.argocd.processes(), *self.servers.processes())
