"""``DataPlaneClient.crash_pod`` against a real process and a real HTTP ``/state``.

The data plane itself needs an API server to learn of pods, so here a small HTTP server on
loopback serves the ``/state`` document it would serve (the boundary faked), naming a real child
process, which the client really kills."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.errors import NotFound
from harness.targets.local.dataplane_client import DataPlaneClient


@pytest.fixture
def pod() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait(timeout=5)


@pytest.fixture
def client(pod: subprocess.Popen[bytes], tmp_path: Path) -> Iterator[DataPlaneClient]:
    state: dict[str, Any] = {
        "pods": [
            {"namespace": "bg-1", "name": "web-2-a", "pid": pod.pid},
            {"namespace": "bg-1", "name": "web-2-b", "pid": None},  # between exit and restart
        ],
        "services": [],
        "problems": [],
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(state).encode()
            self.send_response(200 if self.path == "/state" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield DataPlaneClient(lambda: url, log=tmp_path / "dataplane.log", run_dir=tmp_path)
    server.shutdown()


def test_crash_pod_kills_the_pods_process_with_sigkill(
    client: DataPlaneClient, pod: subprocess.Popen[bytes]
) -> None:
    assert client.crash_pod("bg-1", "web-2-a") == pod.pid
    assert pod.wait(timeout=5) == -signal.SIGKILL


def test_crash_pod_names_the_running_pods_when_the_pod_has_no_process(
    client: DataPlaneClient,
) -> None:
    with pytest.raises(NotFound, match=r'no process for pod "web-2-b".*running there: web-2-a'):
        client.crash_pod("bg-1", "web-2-b")
