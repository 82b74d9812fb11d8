"""Deadlines and retries of ``harness.kube`` against API servers that misbehave on purpose.

Each server here is a fake at the transport boundary: a real kube-apiserver cannot be made to
accept a connection and then never answer, nor to answer 503 exactly once, so these behaviours
cannot otherwise be produced. The fakes are real TCP listeners on loopback; the client, its
timeouts and the wait primitive run unchanged.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.errors import Unreachable, WaitTimeout
from harness.kube import JSON_PATCH, ROLLOUT, ApiError, Kube
from tests.support.fake_api import kubeconfig_for, silent_server, wait_for_rollout


@contextlib.contextmanager
def _scripted_server(statuses: list[int]) -> Iterator[tuple[int, list[str]]]:
    """Answers each request with the next status of ``statuses`` (then 200), recording them."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append(self.command)
            status = statuses.pop(0) if statuses else 200
            body = json.dumps(
                {"kind": "Status", "code": status, "message": f"scripted {status}"}
                if status >= 400
                else {"metadata": {"name": "service-b", "resourceVersion": "7"}}
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_wait_fails_at_its_deadline_against_an_api_server_that_never_answers(
    tmp_path: Path,
) -> None:
    """The fake: an API server that accepts and never answers (see the module docstring)."""
    with silent_server() as port:
        kube = Kube(kubeconfig=kubeconfig_for(tmp_path, port), context=None, namespace="demo")
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as caught:
            wait_for_rollout(kube, within=2.0)
        took = time.monotonic() - started
    assert 2.0 <= took <= 3.0
    message = str(caught.value)
    assert "not met within 2s" in message
    assert "timed out" in message


def test_every_request_has_a_read_timeout(tmp_path: Path) -> None:
    """The fake: an API server that accepts and never answers (see the module docstring)."""
    with silent_server() as port:
        kube = Kube(
            kubeconfig=kubeconfig_for(tmp_path, port),
            context=None,
            namespace="demo",
            read_timeout=0.5,
        )
        started = time.monotonic()
        with pytest.raises(Unreachable, match=r"GET /apis/argoproj.io/.*timed out"):
            kube.get(ROLLOUT, "service-b")
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_an_idempotent_write_is_retried_on_a_transient_status(tmp_path: Path, status: int) -> None:
    """The fake: an API server that answers ``status`` once (see the module docstring)."""
    slept: list[float] = []
    with _scripted_server([status, status]) as (port, seen):
        kube = Kube(
            kubeconfig=kubeconfig_for(tmp_path, port),
            context=None,
            namespace="demo",
            sleep=slept.append,
        )
        result = kube.patch(ROLLOUT, "service-b", {"spec": {"paused": False}})
    assert result["metadata"]["name"] == "service-b"
    assert seen == ["PATCH", "PATCH", "PATCH"]
    assert slept == [0.25, 0.5]


def test_retries_are_bounded(tmp_path: Path) -> None:
    """The fake: an API server that answers 503 for ever (see the module docstring)."""
    slept: list[float] = []
    with _scripted_server([503] * 10) as (port, seen):
        kube = Kube(
            kubeconfig=kubeconfig_for(tmp_path, port),
            context=None,
            namespace="demo",
            sleep=slept.append,
        )
        with pytest.raises(Unreachable, match=r"PATCH .*service-b: API server busy \(503\)"):
            kube.patch(ROLLOUT, "service-b", {"spec": {"paused": False}})
    assert len(seen) == 4
    assert slept == [0.25, 0.5, 1.0]


@pytest.mark.parametrize("status", [400, 403, 409, 422])
def test_other_client_errors_are_never_retried(tmp_path: Path, status: int) -> None:
    """The fake: an API server that answers ``status`` (see the module docstring)."""
    with _scripted_server([status]) as (port, seen):
        kube = Kube(kubeconfig=kubeconfig_for(tmp_path, port), context=None, namespace="demo")
        with pytest.raises(ApiError, match=f"scripted {status}"):
            kube.patch(ROLLOUT, "service-b", {"spec": {"paused": False}})
    assert seen == ["PATCH"]


def test_a_json_patch_is_not_retried(tmp_path: Path) -> None:
    """The fake: an API server that answers 503 once (see the module docstring). A JSON patch
    may not be idempotent (an "add" to a list lands twice), so it gets one try."""
    with _scripted_server([503]) as (port, seen):
        kube = Kube(kubeconfig=kubeconfig_for(tmp_path, port), context=None, namespace="demo")
        with pytest.raises(Unreachable):
            kube.patch(
                ROLLOUT,
                "service-b",
                [{"op": "add", "path": "/metadata/labels/x", "value": "y"}],
                content_type=JSON_PATCH,
            )
    assert seen == ["PATCH"]
