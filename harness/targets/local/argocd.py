"""Argo CD on the local target: the application controller, the repo server and Redis as processes.

Upstream runs its components for development the same way (its Procfile, behind `make
start-local`): one `argocd` binary per component, chosen by ``ARGOCD_BINARY_NAME``, with
``ARGOCD_FAKE_IN_CLUSTER=true`` so the controller's in-cluster destination
(``https://kubernetes.default.svc``) is the cluster of its kubeconfig, GPG off, and Redis
beside them; its install manifests are applied for the configuration alone (upstream scales the
Deployments to zero; here only the ConfigMaps and the Secret of ``manifests/base/config`` are
applied). No API server, UI or Dex: nothing here logs in. The ``default`` AppProject, which
argocd-server creates when it starts, is created here instead, with the same spec.

Redis listens on loopback and requires a password, generated once per target into an owner-only
configuration file; the controller and repo server get it as ``REDIS_PASSWORD``, as upstream's
manifests give it, never on a command line.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from harness import argocd, builds
from harness.git import GitRepository
from harness.kube import Kube
from harness.settings import Settings
from harness.targets.local.control_plane import ControlPlane
from harness.targets.local.state import State
from harness.targets.processes import Process, debian_command, free_port, supervise

# The spec argocd-server gives the default project it creates (server/server.go).
DEFAULT_PROJECT = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "AppProject",
    "metadata": {"name": "default"},
    "spec": {
        "sourceRepos": ["*"],
        "destinations": [{"server": "*", "namespace": "*"}],
        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
    },
}
# The application controller derives its shard from the ordinal of its StatefulSet pod name.
CONTROLLER_HOSTNAME = "argocd-application-controller-0"


class LocalArgoCD:
    """Argo CD's components beside a running local target, and the Git repository they read."""

    def __init__(
        self,
        run_dir: Path,
        settings: Settings,
        control_plane: ControlPlane,
        state: State,
        kube: Callable[[str], Kube],
        report: Callable[[str], None],
    ) -> None:
        self.run_dir = run_dir
        self.kube = kube
        self.settings = settings
        self.control_plane = control_plane
        self.state = state
        self.report = report
        self.root = run_dir / "argocd"
        self.redis = Process("argocd-redis", run_dir)
        self.repo_server = Process("argocd-repo-server", run_dir)
        self.controller = Process("argocd-application-controller", run_dir)
        self.repository = GitRepository(self.root / "repository")
        self.redis_config = self.root / "redis.conf"
        self.redis_password_file = self.root / "redis-password"

    def client(self) -> argocd.ArgoCD:
        """Argo CD's Applications on this target (namespace ``argocd``)."""
        return argocd.ArgoCD(
            self.kube(argocd.ARGOCD_NAMESPACE), timeout=self.settings.deadlines.sync
        )

    def processes(self) -> tuple[Process, ...]:
        """In the order to stop them."""
        return (self.controller, self.repo_server, self.redis)

    def running(self) -> bool:
        return any(p.is_running() for p in self.processes())

    def up(self, built: dict[str, builds.Built], state: dict[str, int]) -> None:
        """Start whatever is not running yet; idempotent, like the target's own ``up``."""
        step = time.monotonic()
        redis = debian_command(
            "redis-server", "redis-server", "Argo CD on the local target keeps its cache in Redis"
        )
        argo = builds.ensure_built(
            builds.ARGO_CD,
            cache_dir=self.settings.cache_dir,
            go=self.settings.local.go,
            timeout=self.settings.deadlines.build,
            report=self.report,
        )
        for directory in ("tls", "ssh", "gpg/source", "gpg/keys"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        (self.root / "gpg" / "keys").chmod(0o700)
        if not self.controller.is_running():
            # Its CRDs come with Argo CD, not with `bgh up`: only the GitOps path needs them.
            self.control_plane.establish(self.control_plane.read_argocd_crds(built))
        self._configure(built, argo)
        ports = {
            key: state.setdefault(key, free_port())
            for key in (
                "argocd_redis_port",
                "argocd_repo_server_port",
                "argocd_repo_server_metrics_port",
                "argocd_controller_metrics_port",
            )
        }
        started = self._redis(redis, ports["argocd_redis_port"])
        started |= self._repo_server(argo, ports)
        started |= self._controller(argo, ports)
        if started:
            self.report(
                f"Argo CD {builds.ARGO_CD.version}: application controller, repo server and "
                f"Redis ready in {time.monotonic() - step:.1f}s "
                f"(logs under {self.run_dir / 'logs'})"
            )
        else:
            self.report("argocd: already running")

    # -- configuration ----------------------------------------------------------------------

    def _configure(self, built: dict[str, builds.Built], argo: builds.Built) -> None:
        self.control_plane.ensure_namespace(built, argocd.ARGOCD_NAMESPACE)
        self.control_plane.kubectl(
            built,
            [
                "apply",
                "--server-side",
                "--force-conflicts",
                "-n",
                argocd.ARGOCD_NAMESPACE,
                "-f",
                str(argo.directory / "config"),
            ],
        )
        self.client().apply(DEFAULT_PROJECT)

    def _env(self, binary_name: str, argo: builds.Built) -> dict[str, str]:
        helm = builds.ensure_built(
            builds.HELM,
            cache_dir=self.settings.cache_dir,
            go=self.settings.local.go,
            timeout=self.settings.deadlines.build,
            report=self.report,
        )
        return {
            "ARGOCD_BINARY_NAME": binary_name,
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_TLS_DATA_PATH": str(self.root / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(self.root / "ssh"),
            "ARGOCD_GNUPGHOME": str(self.root / "gpg" / "keys"),
            "ARGOCD_GPG_DATA_PATH": str(self.root / "gpg" / "source"),
            "HOSTNAME": CONTROLLER_HOSTNAME,
            "KUBECONFIG": str(self.control_plane.kubeconfig),
            "REDIS_PASSWORD": self._redis_password(),
            # The repo server runs helm (the release Argo CD pins) and the image's scripts.
            "PATH": os.pathsep.join(
                [str(argo.directory / "bin"), str(helm.directory), os.environ.get("PATH", "")]
            ),
        }

    # -- processes --------------------------------------------------------------------------

    def _redis_password(self) -> str:
        """Redis's password: made once, kept owner-only beside the rest of Argo CD's files."""
        if not self.redis_password_file.is_file():
            self.redis_password_file.parent.mkdir(parents=True, exist_ok=True)
            self.redis_password_file.touch(mode=0o600)
            self.redis_password_file.write_text(secrets.token_urlsafe(24))
        return self.redis_password_file.read_text().strip()

    def _redis(self, binary: str, port: int) -> bool:
        password = self._redis_password()
        self.redis_config.touch(mode=0o600)
        self.redis_config.write_text(
            f'bind 127.0.0.1\nport {port}\nrequirepass {password}\nsave ""\nappendonly no\n'
        )
        argv = [binary, str(self.redis_config)]

        def answer() -> str | None:
            if _redis_answers(port, password):
                return None
            return f"no PONG to an authenticated PING on 127.0.0.1:{port}"

        return self._start(self.redis, argv, None, answer, {"redis": port})

    def _repo_server(self, argo: builds.Built, ports: dict[str, int]) -> bool:
        argv = [
            str(argo.path("argocd")),
            "--loglevel=info",
            "--address=127.0.0.1",
            f"--port={ports['argocd_repo_server_port']}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={ports['argocd_repo_server_metrics_port']}",
            f"--redis=127.0.0.1:{ports['argocd_redis_port']}",
        ]
        url = f"http://127.0.0.1:{ports['argocd_repo_server_metrics_port']}/metrics"
        return self._start(
            self.repo_server,
            argv,
            self._env("argocd-repo-server", argo),
            url,
            {
                "gRPC": ports["argocd_repo_server_port"],
                "metrics": ports["argocd_repo_server_metrics_port"],
            },
        )

    def _controller(self, argo: builds.Built, ports: dict[str, int]) -> bool:
        argv = [
            str(argo.path("argocd")),
            f"--kubeconfig={self.control_plane.kubeconfig}",
            f"--namespace={argocd.ARGOCD_NAMESPACE}",
            "--loglevel=info",
            f"--redis=127.0.0.1:{ports['argocd_redis_port']}",
            f"--repo-server=127.0.0.1:{ports['argocd_repo_server_port']}",
            f"--metrics-port={ports['argocd_controller_metrics_port']}",
        ]
        url = f"http://127.0.0.1:{ports['argocd_controller_metrics_port']}/healthz"
        return self._start(
            self.controller,
            argv,
            self._env("argocd-application-controller", argo),
            url,
            {"metrics": ports["argocd_controller_metrics_port"]},
        )

    def _start(
        self,
        process: Process,
        argv: list[str],
        env: dict[str, str] | None,
        ready: str | Callable[[], str | None],
        ports: dict[str, int],
    ) -> bool:
        return supervise(
            process,
            argv,
            ready=ready,
            ports=ports,
            busy_advice=f"run `bgh down` to forget the old ports ({self.state.file})",
            within=self.settings.deadlines.up,
            report=self.report,
            env=env,
            cwd=self.root,
        )


def _redis_answers(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2 and (chunk := sock.recv(64)):
                answer += chunk
            return answer.startswith(b"+OK\r\n+PONG\r\n")
    except OSError:
        return False
