"""Fake API servers at the transport boundary, for what a real kube-apiserver cannot be made to do.

A real kube-apiserver cannot be made to accept a connection and then never answer; these are real
TCP listeners on loopback, so the client, its timeouts and the waits above it run unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import yaml

from harness.kube import ROLLOUT, Kube, Resource, Rollout, rollout_from
from harness.waits import Waited, wait_for


def kubeconfig_for(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "kubeconfig"
    cluster = {"server": f"http://127.0.0.1:{port}"}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": cluster}],
                "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    return path


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers, as a wedged API server does."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for sock in held:
            sock.close()
        listener.close()


def wait_for_rollout(kube: Kube, *, within: float) -> Waited[Rollout]:
    """The harness's wait for Rollout ``service-b`` to exist, as a runbook's wait would run."""
    return wait_for(
        Resource(kube, ROLLOUT, rollout_from),
        "service-b",
        lambda _rollout: True,
        what="Rollout demo/service-b: phase Paused",
        describe=lambda rollout: rollout.status_phase,
        within=within,
    )
