"""Argo CD on the local target: the application controller, the repo server and Redis as processes.

Upstream runs its components for development the same way (its Procfile, behind `make
start-local`): one `argocd` binary per component, chosen by ``ARGOCD_BINARY_NAME``, with
``ARGOCD_FAKE_IN_CLUSTER=true`` so the controller's in-cluster destination
(``https://kubernetes.default.svc``) is the cluster of its kubeconfig, GPG off, and Redis
beside them; its install manifests are applied for the configuration alone (upstream scales the
Deployments to zero; here only the ConfigMaps and the Secret of ``manifests/base/config`` are
applied). No API server, UI or Dex: nothing here logs in. The ``default`` AppProject, which
argocd-server creates when it starts, is created here instead, with the same spec.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness import argocd
from harness.errors import TargetError
from harness.targets import builds
from harness.targets.processes import (
    Process,
    debian_command,
    free_port,
    port_in_use,
    wait_http_ok,
)
from harness.waits import poll

if TYPE_CHECKING:
    from harness.targets.local import LocalTarget

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

    def __init__(self, target: LocalTarget, report: Callable[[str], None]) -> None:
        self.target = target
        self.report = report
        self.root = target.root / "argocd"
        self.redis = Process("argocd-redis", target.root)
        self.repo_server = Process("argocd-repo-server", target.root)
        self.controller = Process("argocd-application-controller", target.root)
        self.repository = argocd.GitRepository(self.root / "repository")

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
            cache_dir=self.target.settings.cache_dir,
            go=self.target.settings.local.go,
            timeout=self.target.settings.timeout("build"),
            report=self.report,
        )
        for directory in ("tls", "ssh", "gpg/source", "gpg/keys"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        (self.root / "gpg" / "keys").chmod(0o700)
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
                f"(logs under {self.target.root / 'logs'})"
            )
        else:
            self.report("argocd: already running")

    def stop(self) -> None:
        for process in self.processes():
            if process.stop(grace=15.0):
                self.report(f"{process.name}: stopped")

    # -- configuration ----------------------------------------------------------------------

    def _configure(self, built: dict[str, builds.Built], argo: builds.Built) -> None:
        kubectl = self.target._kubectl
        namespace = kubectl(
            built,
            ["create", "namespace", argocd.ARGOCD_NAMESPACE, "--dry-run=client", "-o", "yaml"],
        )
        kubectl(built, ["apply", "-f", "-"], stdin=namespace)
        kubectl(
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
        self.target.argocd_client().apply(DEFAULT_PROJECT)

    def _env(self, binary_name: str, argo: builds.Built) -> dict[str, str]:
        helm = builds.ensure_built(
            builds.HELM,
            cache_dir=self.target.settings.cache_dir,
            go=self.target.settings.local.go,
            timeout=self.target.settings.timeout("build"),
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
            "KUBECONFIG": str(self.target.kubeconfig),
            # The repo server runs helm (the release Argo CD pins) and the image's scripts.
            "PATH": os.pathsep.join(
                [str(argo.directory / "bin"), str(helm.directory), os.environ.get("PATH", "")]
            ),
        }

    # -- processes --------------------------------------------------------------------------

    def _redis(self, binary: str, port: int) -> bool:
        argv = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        process = self.redis
        if process.is_running() and process.command()[:5] == argv[:5]:
            return False
        process.stop()
        self._refuse_busy(process, {"redis": port})
        process.start(argv, cwd=self.root)
        _, ready = poll(lambda: _redis_answers(port), bool, within=self._within())
        if not ready:
            raise TargetError(f"Redis did not answer PING on 127.0.0.1:{port}; log: {process.log}")
        return True

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
            f"--kubeconfig={self.target.kubeconfig}",
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
        env: dict[str, str],
        ready_url: str,
        ports: dict[str, int],
    ) -> bool:
        command = " ".join(argv)
        if process.is_running() and process.command() == argv:
            wait_http_ok(process, ready_url, within=self._within(), command=command)
            return False
        process.stop()
        self._refuse_busy(process, ports)
        process.start(argv, env=env, cwd=self.root)
        wait_http_ok(process, ready_url, within=self._within(), command=command)
        return True

    def _refuse_busy(self, process: Process, ports: dict[str, int]) -> None:
        for name, port in ports.items():
            if port_in_use(port):
                raise TargetError(
                    f"{process.name}: {name} port {port} is in use by another process; stop it, "
                    f"or run `bgh down` to forget the old ports ({self.target.state_file})"
                )

    def _within(self) -> float:
        return self.target.settings.timeout("up")


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
