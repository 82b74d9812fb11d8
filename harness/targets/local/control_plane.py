"""The local target's control plane: etcd, kube-apiserver, controller manager, scheduler and kwok.

They run as local processes through ``kwokctl create cluster --runtime binary``, with binaries
built from the Go module proxy (``harness.builds``); kwok simulates nodes and pods. Every
``kwokctl`` and ``kubectl`` command run here is appended to ``logs/<command>.log``, and a failed
one becomes a ``TargetError`` naming that log and the components' own logs.

kwokctl binds every component to all interfaces unless its configuration says otherwise
(``options.bindAddress``, default ``0.0.0.0``); the cluster is created with a configuration file
that says ``127.0.0.1``, so etcd (plaintext, no auth), kube-apiserver, the controller manager,
the scheduler and kwok listen on loopback only. Its private keys and the kubeconfig holding the
``system:masters`` client key are made readable by their owner alone.

Left to itself kwokctl gives its components the first unused ports counting down from 32767
(pkg/utils/net ``GetUnusedPort``): two clusters created at the same moment on one machine pick
the same ones. So every port is picked here, free and at random (``free_port``), written into
the configuration and kept in ``state.json`` with the others.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness import builds
from harness.errors import TargetError, indent_tail
from harness.kube import Kube
from harness.kubectl import Kubectl
from harness.settings import Settings
from harness.target import ComponentStatus
from harness.targets.local import crds
from harness.targets.local.state import State
from harness.targets.processes import Process, free_port, port_in_use, wait_gone, wait_port_bindable
from harness.waits import poll

CLUSTER_NAME = "bgh"
ROLLOUTS_NAMESPACE = "argo-rollouts"
KWOK_COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
)

# kwokctl's own configuration kind; only what differs from its defaults.
KWOKCTL_CONFIGURATION: dict[str, Any] = {
    "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
    "kind": "KwokctlConfiguration",
    "options": {"bindAddress": "127.0.0.1"},
}
# state.json key -> the KwokctlConfiguration option that sets the port (the API server's own is
# a flag, --kube-apiserver-port).
COMPONENT_PORTS = {
    "etcd_port": "etcdPort",
    "etcd_peer_port": "etcdPeerPort",
    "kube_controller_manager_port": "kubeControllerManagerPort",
    "kube_scheduler_port": "kubeSchedulerPort",
    "kwok_controller_port": "kwokControllerPort",
}

Built = dict[str, builds.Built]
Report = Callable[[str], None]


class ControlPlane:
    """kwok's cluster under ``<root>/kwok``, its kubeconfig at ``<root>/kubeconfig``."""

    def __init__(self, root: Path, settings: Settings, state: State, report: Report) -> None:
        self.root = root
        self.settings = settings
        self.state = state
        self.report = report
        self.kwok_workdir = root / "kwok"
        self.kubeconfig = root / "kubeconfig"
        self.kwokctl_config = root / "kwokctl.yaml"

    # -- building -------------------------------------------------------------------------

    def build(self) -> Built:
        """Every component's binaries, built where the cache lacks them."""
        built = {}
        for component in builds.components(self.settings.rollouts_version):
            if not builds.is_built(component, self.settings.cache_dir):
                self.report(f"{component.name} {component.version}: not in the cache, building")
            built[component.name] = builds.ensure_built(
                component,
                cache_dir=self.settings.cache_dir,
                go=self.settings.local.go,
                timeout=self.settings.deadlines.build,
                report=self.report,
            )
        return built

    # -- up -------------------------------------------------------------------------------

    def up(self, built: Built, ports: dict[str, int]) -> None:
        """Create (or restart) the cluster; its nodes and CRDs come next (``nodes``,
        ``establish``), at once."""
        self._cluster(built, ports)
        self.protect_keys()

    def _cluster(self, built: Built, ports: dict[str, int]) -> None:
        step = time.monotonic()
        if self.exists():
            if self.apiserver_ready(built):
                self.report("control plane: already running")
                return
            self.kwokctl(built, ["start", "cluster", "--wait", self._wait()])
            self.report(f"control plane: restarted in {time.monotonic() - step:.1f}s")
            return
        port = ports.setdefault("kube_apiserver_port", free_port())
        options = {
            option: ports.setdefault(key, free_port()) for key, option in COMPONENT_PORTS.items()
        }
        for key in ("kube_apiserver_port", *COMPONENT_PORTS):
            if port_in_use(ports[key]):
                raise TargetError(
                    f"{key.removesuffix('_port').replace('_', '-')}: port {ports[key]} (from "
                    f"{self.state.file}) is in use by another process; stop it, or run "
                    "`bgh down` to forget the old ports"
                )
        kubernetes = built["kubernetes"]
        configuration = {
            **KWOKCTL_CONFIGURATION,
            "options": {**KWOKCTL_CONFIGURATION["options"], **options},
        }
        self.kwokctl_config.write_text(yaml.safe_dump(configuration))
        argv = [
            "--config",
            str(self.kwokctl_config),
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
        self.kwokctl(built, argv)
        self.report(
            f"control plane ({', '.join(KWOK_COMPONENTS)}): "
            f"ready in {time.monotonic() - step:.1f}s on https://127.0.0.1:{port}"
        )

    def protect_keys(self) -> None:
        """Private keys and the admin kubeconfig: owner-only (kwokctl writes them 0644)."""
        secrets = [self.kubeconfig, *self.cluster_dir().rglob("*.key")]
        secrets += list(self.cluster_dir().glob("kubeconfig*"))
        for path in secrets:
            if path.is_file():
                path.chmod(stat.S_IRUSR | stat.S_IWUSR)

    def nodes(self, built: Built) -> None:
        step = time.monotonic()
        replicas = str(self.settings.local.nodes)
        self.kwokctl(built, ["scale", "node", "--replicas", replicas])
        self.kubectl(
            built,
            ["wait", "--for=condition=Ready", "node", "--all", f"--timeout={self._wait()}"],
        )
        self.report(f"nodes: {replicas} kwok nodes Ready in {time.monotonic() - step:.1f}s")

    def read_crds(self, built: Built) -> dict[str, crds.CRDs]:
        """The CRDs ``up`` puts in, by component, read from the builds (no cluster needed)."""
        return {
            "argo-rollouts": crds.read(
                f"Argo Rollouts {self.settings.rollouts_version}",
                built["argo-rollouts"].directory / "crds",
            ),
            "istio": crds.read(
                f"Istio {builds.ISTIO.version}",
                built["istio"].directory / "crds",
                only=crds.ISTIO_NEEDED,
            ),
        }

    def read_argocd_crds(self, built: Built) -> crds.CRDs:
        return crds.read(
            f"Argo CD {builds.ARGO_CD_CRDS.version}", built["argo-cd-crds"].directory / "crds"
        )

    def establish(self, these: crds.CRDs) -> None:
        """Put ``these`` CRDs in (created, or replaced when present) and wait until each is
        Established."""
        crds.establish(self._kube(), these, within=self.settings.deadlines.up, report=self.report)

    def _kube(self) -> Kube:
        # The admin kubeconfig, never an impersonated user: CRDs are cluster-wide.
        return Kube(
            kubeconfig=self.kubeconfig,
            context=None,
            namespace="default",
            connect_timeout=self.settings.deadlines.api_connect,
            read_timeout=self.settings.deadlines.api_read,
        )

    def ensure_namespace(self, built: Built, namespace: str) -> None:
        manifest = self.kubectl(
            built, ["create", "namespace", namespace, "--dry-run=client", "-o", "yaml"]
        )
        self.kubectl(built, ["apply", "-f", "-"], stdin=manifest)

    # -- restart, stop, delete ------------------------------------------------------------

    def restart(self, built: Built) -> None:
        """Stop the control plane, wait until its processes are gone, start it again; returns
        once ``/readyz`` answers, after up to three attempts.

        kwokctl's stop does not wait, and a kube-apiserver still shutting down holds its port; a
        start issued at once would fail to bind.
        """
        attempts = 3
        for attempt in range(1, attempts + 1):
            running = [p.pid() for p in self.processes() if p.is_running()]
            self.kwokctl(built, ["stop", "cluster"])
            for pid in running:
                if pid is not None:
                    wait_gone(pid, within=10.0)
            port = self.state.read().get("kube_apiserver_port")
            if port is not None and not wait_port_bindable(port, within=60.0):
                # A kube-apiserver started now would fail to bind and kwokctl would wait two
                # minutes for it; keep the evidence of who holds the port instead.
                kept = self.root / "logs" / f"restart-{int(time.time())}-port-{port}-busy"
                kept.mkdir(parents=True, exist_ok=True)
                _keep_sockets(kept / "sockets.txt")
                self.report(f"kube-apiserver port {port} still taken 60 s after stop; see {kept}")
            # kwokctl's own wait ends with exit 0 even when the API server never answered.
            self.kwokctl(built, ["start", "cluster", "--wait", "30s"])
            if self.apiserver_ready(built, within=30.0):
                return
            # Seen in a few full runs: the new kube-apiserver could not bind its port ("address
            # already in use"). Keep the logs (the next start truncates them) and the sockets on
            # that port, then start again.
            kept = self.root / "logs" / f"restart-{int(time.time())}-attempt-{attempt}"
            shutil.copytree(self.cluster_dir() / "logs", kept, dirs_exist_ok=True)
            _keep_sockets(kept / "sockets.txt")
            self.report(
                f"control plane: not ready 30 s after restart attempt {attempt}; logs kept in "
                f"{kept}" + ("; restarting again" if attempt < attempts else "")
            )
        raise TargetError(
            f"the control plane did not come back after {attempts} restarts; logs under "
            f"{self.root / 'logs'}"
        )

    def stop(self, built: Built) -> None:
        """Stop every component, keeping the cluster's files."""
        if self.exists():
            # The kill below still stops whatever kwokctl could not.
            with contextlib.suppress(TargetError):
                self.kwokctl(built, ["stop", "cluster"])
        self.kill_processes()

    def delete(self) -> None:
        """Delete the cluster, with the cached kwokctl when there is one; kill what is left."""
        if self.exists():
            if builds.is_built(builds.KWOK, self.settings.cache_dir):
                kwokctl = builds.KWOK.install_dir(self.settings.cache_dir) / "kwokctl"
                self.run(
                    "kwokctl",
                    [str(kwokctl), "--name", CLUSTER_NAME, "delete", "cluster"],
                    env=self._kwok_env(None),
                )
            else:
                self.kill_processes()
            self.report("control plane: deleted")
        self.kill_processes()

    def processes(self) -> tuple[Process, ...]:
        """kwok's components, by the pid files kwokctl writes."""
        pids = self.cluster_dir() / "pids"
        # kwokctl's pid files hold the pid alone; every component's command line names a file
        # of this cluster (its kubeconfig, certificates, data or configuration).
        mark = str(self.cluster_dir())
        return tuple(Process(name, pids, mark=mark) for name in KWOK_COMPONENTS)

    def kill_processes(self) -> None:
        for process in self.processes():
            process.stop(grace=5.0)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        lines = []
        logs = self.cluster_dir() / "logs"
        for process in self.processes():
            name = process.name
            running = process.is_running()
            detail = f"pid {process.pid()}" if running else "not running"
            if not running and (logs / f"{name}.log").exists():
                detail += f"; log: {logs / f'{name}.log'}"
            lines.append(ComponentStatus(name, running, detail))
        return lines

    def cluster_dir(self) -> Path:
        return self.kwok_workdir / "clusters" / CLUSTER_NAME

    def exists(self) -> bool:
        return (self.cluster_dir() / "kwok.yaml").is_file()

    def apiserver_ready(self, built: Built, *, within: float = 0.0) -> bool:
        """Whether ``/readyz`` answers ok within ``within`` seconds (0: one try). kwokctl's
        "ready" can come before the API server's post-start hooks have all passed."""
        if not self.kubeconfig.is_file():
            return False
        kubectl = Kubectl(built["kubernetes"].path("kubectl"), self.kubeconfig, None)
        (ready, said), _ = poll(kubectl.is_ready, lambda answer: answer[0], within=within, cap=0.5)
        if not ready and within:
            self.report(f"kube-apiserver /readyz: {said[-400:]}")
        return ready

    # -- commands -------------------------------------------------------------------------

    def kwokctl(self, built: Built, argv: Sequence[str]) -> str:
        binary = built["kwok"].path("kwokctl")
        return self.run(
            "kwokctl", [str(binary), "--name", CLUSTER_NAME, *argv], env=self._kwok_env(built)
        )

    def kubectl(self, built: Built, argv: Sequence[str], *, stdin: str | None = None) -> str:
        """The control plane's own kubectl, logged to ``logs/kubectl.log``."""
        binary = built["kubernetes"].path("kubectl")
        log = self.root / "logs" / "kubectl.log"
        return Kubectl(binary, self.kubeconfig, None, log=log).run(*argv, stdin=stdin)

    def run(
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
            logs = self.cluster_dir() / "logs"
            hint = f"\n  component logs: {logs}" if logs.is_dir() else ""
            raise TargetError(
                f"{name} failed (exit {result.returncode})\n  command: {' '.join(argv)}\n"
                f"  log: {log}\n{indent_tail(result.stderr or result.stdout)}{hint}"
            )
        return result.stdout

    def _kwok_env(self, built: Built | None) -> dict[str, str]:
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

    def _wait(self) -> str:
        return f"{self.settings.deadlines.up:.0f}s"


def _keep_sockets(path: Path) -> None:
    """Every TCP socket on the machine with its owner, as evidence for a port that would not bind
    (``ss`` when installed, the kernel's tables otherwise)."""
    ss = shutil.which("ss")
    if ss is not None:
        result = subprocess.run([ss, "-tanp"], capture_output=True, text=True, check=False)
        path.write_text(result.stdout + result.stderr)
        return
    path.write_text("".join(Path(f"/proc/net/{t}").read_text() for t in ("tcp", "tcp6")))
