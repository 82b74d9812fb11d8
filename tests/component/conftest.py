"""The demo services as real processes on loopback, for the component tests.

The session builds the three Go binaries once with `go build`, then starts gateway A, service B
and service C on free loopback ports and waits for each one's /readyz. Tests that need a broken
neighbour (B stopped, C hanging) start their own gateway through ``launch`` and get it stopped
after the test. Nothing is mocked: the "hanging C" is a real TCP listener that accepts and never
answers.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
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
        "UPSTREAM_TIMEOUT_MS", "GREETING",
    ),
    "",
)  # fmt: skip


@dataclass(frozen=True)
class Service:
    """One running demo service: its process, its ports and the URL of its HTTP endpoints."""

    name: str
    process: Process
    pid: int
    port: int
    metrics_port: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def http(self) -> str:
        """Where /version, /healthz, /readyz and /metrics are served (C: its metrics port)."""
        return f"http://127.0.0.1:{self.metrics_port or self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

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

    def start(self, name: str, *, probe: str = "/readyz", **env: str) -> Service:
        """Start ``name`` on free loopback ports with ``env`` and wait until ``probe`` is 2xx."""
        port = free_port()
        metrics_port = free_port() if name == "service-c" else None
        full_env = {**BLANK_ENV, "HOST": "127.0.0.1", "PORT": str(port), **env}
        if metrics_port is not None:
            full_env["METRICS_PORT"] = str(metrics_port)
        process = Process(f"{name}-{next(_serial)}", self.run_dir)  # pid files must not clash
        pid = process.start([str(self.bin_dir / name)], env=full_env)
        service = Service(name, process, pid, port, metrics_port, full_env)
        self.started.append(service)
        wait_http_ok(process, f"{service.http}{probe}", within=READY_WITHIN, command=name)
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


@dataclass(frozen=True)
class Demo:
    """The healthy demo system: A wired to B and C."""

    a: Service
    b: Service
    c: Service

    def __getitem__(self, name: str) -> Service:
        return {"gateway-a": self.a, "service-b": self.b, "service-c": self.c}[name]


@pytest.fixture(scope="session")
def service_binaries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three binaries, built once per session."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("the component tests build the services with Go; put `go` (1.26) on PATH")
    bin_dir = tmp_path_factory.mktemp("bin")
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


@pytest.fixture(scope="session")
def services(
    service_binaries: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    started = Services(service_binaries, tmp_path_factory.mktemp("run"))
    yield started
    started.stop_all()


@pytest.fixture
def launch(services: Services) -> Iterator[Services]:
    """Like ``services``, but what a test starts through it is stopped after the test."""
    own = Services(services.bin_dir, services.run_dir)
    yield own
    own.stop_all()


@pytest.fixture(scope="session")
def demo(services: Services) -> Demo:
    b = services.start("service-b", VERSION="1.1.0", POD_NAME="service-b-6c4b-blue")
    c = services.start("service-c", VERSION="1.2.0", POD_NAME="service-c-7d9f-blue")
    a = services.start(
        "gateway-a",
        VERSION="1.0.0",
        POD_NAME="gateway-a-5f6d-blue",
        SERVICE_B_URL=f"http://{b.address}",
        SERVICE_C_ADDR=c.address,
        GREETING="Hello <blue> 👋",
    )
    return Demo(a, b, c)


@pytest.fixture
def hanging_peer() -> Iterator[str]:
    """A real TCP peer that accepts connections and never answers; yields its host:port."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed at teardown
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    host, port = server.getsockname()
    yield f"{host}:{port}"
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
    server.close()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
