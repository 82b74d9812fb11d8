"""The processes the local target runs beside its control plane, each started through ``supervise``.

The Argo Rollouts controller runs out of cluster against the same API server, with leader
election off and its ports moved off the defaults. Beside it run Debian's ``prometheus`` and the
analysis server (``python -m analysis.server``, the Argo Rollouts web provider) on fixed loopback
ports from the settings, so AnalysisTemplates can name them, and the data plane
(``python -m harness.dataplane``). Prometheus finds its scrape targets in a file
(``file_sd_configs``), ``prometheus/targets.json``, which starts empty; the data plane writes the
pods' processes there with the labels ``pod``, ``rollouts_pod_template_hash`` and
``root_version``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from harness import builds
from harness.settings import Settings
from harness.targets import scrape
from harness.targets.local.state import State
from harness.targets.processes import Process, free_port, supervise

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICES_DIR = REPO_ROOT / "services"
ROLLOUTS_NAMESPACE = "argo-rollouts"

Report = Callable[[str], None]


class Servers:
    """The Rollouts controller, Prometheus, the analysis server and the data plane."""

    def __init__(
        self, root: Path, settings: Settings, state: State, kubeconfig: Path, report: Report
    ) -> None:
        self.settings = settings
        self.state = state
        self.kubeconfig = kubeconfig
        self.report = report
        self.rollouts_controller = Process("rollouts-controller", root)
        self.prometheus = Process("prometheus", root)
        self.analysis_server = Process("analysis-server", root)
        self.dataplane = Process("dataplane", root)
        self.dataplane_dir = root / "dataplane"
        self.prometheus_dir = root / "prometheus"
        self.scrape_targets_file = self.prometheus_dir / "targets.json"

    def processes(self) -> tuple[Process, ...]:
        """In the order to stop them."""
        return (self.dataplane, self.analysis_server, self.prometheus, self.rollouts_controller)

    def assign_ports(self, ports: dict[str, int]) -> None:
        """Every port the servers listen on, chosen before any of them starts: they start at
        once, and two free-port picks made at the same moment could choose the same port."""
        ports.setdefault("rollouts_metrics_port", free_port())
        ports.setdefault("rollouts_healthz_port", free_port())
        self._port(ports, "prometheus_port", self.settings.local.prometheus_port)
        self._port(ports, "analysis_port", self.settings.local.analysis_port)
        self._port(ports, "dataplane_port", self.settings.local.dataplane_port)

    def rollouts(self, built: dict[str, builds.Built], ports: dict[str, int]) -> None:
        step = time.monotonic()
        metrics = ports.setdefault("rollouts_metrics_port", free_port())
        healthz = ports.setdefault("rollouts_healthz_port", free_port())
        argv = [
            str(built["argo-rollouts"].path("rollouts-controller")),
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            f"--metricsPort={metrics}",
            f"--healthzPort={healthz}",
            "--loglevel=info",
        ]
        if supervise(
            self.rollouts_controller,
            argv,
            ready=f"http://127.0.0.1:{healthz}/healthz",
            ports={"metrics": metrics, "healthz": healthz},
            busy_advice=f"run `bgh down` to forget the old ports ({self.state.file})",
            within=self.settings.deadlines.up,
            report=self.report,
            env={"POD_NAMESPACE": ROLLOUTS_NAMESPACE},
        ):
            self.report(
                f"rollouts-controller {self.settings.rollouts_version}: healthy in "
                f"{time.monotonic() - step:.1f}s (metrics :{metrics}, healthz :{healthz})"
            )

    def restart_rollouts(self, built: dict[str, builds.Built]) -> None:
        """Restart the Rollouts controller if it runs (after its API server came back)."""
        if self.rollouts_controller.is_running():
            self.rollouts_controller.stop()
            ports = self.state.read()
            self.rollouts(built, ports)

    def prometheus_server(self, binary: str, ports: dict[str, int]) -> None:
        step = time.monotonic()
        port = self._port(ports, "prometheus_port", self.settings.local.prometheus_port)
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
        if self._start(self.prometheus, argv, f"{url}/-/ready", {"web": port}, "prometheus_port"):
            self.report(
                f"prometheus: ready in {time.monotonic() - step:.1f}s on {url} "
                f"(scrape targets: {self.scrape_targets_file})"
            )

    def analysis(self, ports: dict[str, int]) -> None:
        step = time.monotonic()
        port = self._port(ports, "analysis_port", self.settings.local.analysis_port)
        prometheus = f"http://127.0.0.1:{ports['prometheus_port']}"
        argv = [
            sys.executable,
            "-m",
            "analysis.server",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--prometheus-url={prometheus}",
            # Changed analysis code restarts the server on the next `bgh up`.
            f"--revision={_sources_digest(REPO_ROOT / 'analysis')}",
        ]
        url = f"http://127.0.0.1:{port}"
        server = self.analysis_server
        if self._start(server, argv, f"{url}/healthz", {"http": port}, "analysis_port"):
            self.report(
                f"analysis server: healthy in {time.monotonic() - step:.1f}s on {url} "
                f"(Prometheus {prometheus})"
            )

    def build_demo_services(self) -> Path:
        """The demo services' binaries the data plane runs (Go's build cache makes it quick)."""
        return builds.build_demo_services(
            SERVICES_DIR, self.dataplane_dir / "bin", go=self.settings.local.go
        )

    def dataplane_server(self, ports: dict[str, int], binaries: Path | None = None) -> None:
        step = time.monotonic()
        binaries = binaries or self.build_demo_services()
        port = self._port(ports, "dataplane_port", self.settings.local.dataplane_port)
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
            f"--revision={_sources_digest(REPO_ROOT / 'harness' / 'dataplane', binaries)}",
        ]
        url = f"http://127.0.0.1:{port}"
        if self._start(self.dataplane, argv, f"{url}/healthz", {"http": port}, "dataplane_port"):
            self.report(
                f"data plane: watching Pods, Services and VirtualServices in "
                f"{time.monotonic() - step:.1f}s; state: {url}/state, pod logs under "
                f"{self.dataplane_dir / 'pods'}"
            )

    def _start(
        self, process: Process, argv: list[str], ready: str, ports: dict[str, int], key: str
    ) -> bool:
        """``supervise`` for a server on a port the settings choose (``BGH_LOCAL__<KEY>``)."""
        setting = f"BGH_LOCAL__{key.upper()}"
        return supervise(
            process,
            argv,
            ready=ready,
            ports=ports,
            busy_advice=f"choose another port with {setting} (e.g. {setting}=0 for a free one)",
            within=self.settings.deadlines.up,
            report=self.report,
            cwd=REPO_ROOT,
        )

    @staticmethod
    def _port(ports: dict[str, int], key: str, configured: int) -> int:
        """The configured port; 0 means a free one, picked once and kept in state.json."""
        if configured:
            ports[key] = configured
        elif key not in ports:
            ports[key] = free_port()
        return ports[key]


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
    # File-based discovery picks up a rewritten targets file without a reload.
    return {
        "global": scrape.global_config(),
        "scrape_configs": [
            {
                "job_name": "bgh",
                "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "5s"}],
            }
        ],
    }
