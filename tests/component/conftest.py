"""The demo services as real processes on loopback, for the component tests.

The processes themselves are tests/support/services.py's. The session builds the three Go
binaries once with `go build`, then starts gateway A, service B and service C on free loopback
ports and waits for each one's /readyz. Tests that need a broken neighbour (B stopped, C hanging)
start their own gateway through ``launch`` and get it stopped after the test. Nothing is mocked:
the "hanging C" is a real TCP listener that accepts and never answers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import NAMES, Service, Services, build_services

__all__ = ["NAMES", "Demo", "Service", "Services"]


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
    return build_services(tmp_path_factory.mktemp("bin"))


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
        IMAGE_GREETING="Merry Christmas 🎄",
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
