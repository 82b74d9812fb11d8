"""The demo services as real processes on loopback: built once with `go build`, started on free
ports, waited for through their /readyz, stopped by pid file.

Used by the component tests (tests/component/conftest.py) and by the cluster tests that need real
metrics beside simulated pods (kwok runs no containers).
"""

from __future__ import annotations

import itertools
import os
import select
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.errors import log_tail
from harness.targets.processes import Process, free_port, wait_http_ok

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
NAMES = ("gateway-a", "service-b", "service-c")
READY_WITHIN = 15.0
_serial = itertools.count()

# Every variable a service reads, blank: a developer's own VERSION or PORT must not leak in.
BLANK_ENV = dict.fromkeys(
    (
        "VERSION", "POD_NAME", "HOST", "PORT", "METRICS_PORT", "FAULT_ERROR_RATE",
        "FAULT_LATENCY_MS", "IDLE_TIMEOUT_MS", "SERVICE_B_URL", "SERVICE_C_ADDR",
        "UPSTREAM_TIMEOUT_MS", "GREETING", "IMAGE_GREETING", "LOG_LEVEL",
    ),
    "",
)  # fmt: skip


def build_services(bin_dir: Path) -> Path:
    """`go build` the three services into ``bin_dir``; fails the test run if that cannot be done."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("these tests build the demo services with Go; put `go` (1.26) on PATH")
    packages = [f"./{name}" for name in NAMES]
    result = subprocess.run(
        [go, "build", "-o", f"{bin_dir}{os.sep}", *packages],
        cwd=SERVICES_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"go build {' '.join(packages)} failed in {SERVICES_DIR}:\n{result.stderr}")
    return bin_dir


@dataclass(frozen=True)
class Service:
    """One running demo service: its process, its ports and the URL of its HTTP endpoints."""

    name: str
    process: Process
    pid: int
    port: int
    metrics_port: int
    env: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"

    @property
    def http(self) -> str:
        """A's and B's traffic port; C's traffic is its line protocol, so its ops port."""
        return self.ops if self.name == "service-c" else f"http://{self.host}:{self.port}"

    @property
    def ops(self) -> str:
        """Where /version, /healthz, /readyz and /metrics are served on every service."""
        return f"http://{self.host}:{self.metrics_port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        self.process.stop()

    def terminate(self, *, within: float = 30.0) -> int:
        """SIGTERM the service and return its exit code, waiting on the exit itself."""
        pidfd = os.pidfd_open(self.pid)
        try:
            os.kill(self.pid, signal.SIGTERM)
            if not select.select([pidfd], [], [], within)[0]:
                raise TimeoutError(
                    f"{self.name} still running {within:.0f}s after SIGTERM\n"
                    f"  log: {self.process.log}\n{log_tail(self.process.log)}"
                )
        finally:
            os.close(pidfd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


class Services:
    """Starts demo services from the built binaries and stops every one it started."""

    def __init__(self, bin_dir: Path, run_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.run_dir = run_dir
        self.started: list[Service] = []

    def start(
        self, name: str, *, probe: str = "/readyz", defaults_on: str | None = None, **env: str
    ) -> Service:
        """Start ``name`` on free loopback ports with ``env`` and wait until ``probe`` is 2xx on
        its ops port. ``defaults_on``: listen on that address with PORT and METRICS_PORT unset,
        so on the services' own defaults, as in a pod."""
        host = defaults_on or "127.0.0.1"
        port, metrics_port = (3000, 9090) if defaults_on else (free_port(), free_port())
        full_env = {
            **BLANK_ENV,
            "HOST": host,
            "PORT": "" if defaults_on else str(port),
            "METRICS_PORT": "" if defaults_on else str(metrics_port),
            **env,
        }
        process = Process(f"{name}-{next(_serial)}", self.run_dir)  # pid files must not clash
        pid = process.start([str(self.bin_dir / name)], env=full_env)
        service = Service(name, process, pid, port, metrics_port, full_env, host)
        self.started.append(service)
        wait_http_ok(process, f"{service.ops}{probe}", within=READY_WITHIN, command=name)
        return service

    def run(self, name: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``name`` to its exit (for configurations it must refuse)."""
        return subprocess.run(
            [str(self.bin_dir / name)],
            env={**os.environ, **BLANK_ENV, "HOST": "127.0.0.1", **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def stop_all(self) -> None:
        for service in self.started:
            service.stop()
