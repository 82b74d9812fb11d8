"""The web provider's HTTP contract, on loopback against the session's real Prometheus.

An AnalysisTemplate reads ``{$.phase}`` from the body and compares it with "Successful" and
"Failed"; Argo counts a non-2xx answer as Error and a non-JSON body as Successful. So: judged
results are 200 JSON, the provider's own failures are non-2xx JSON, and nothing is ever HTML.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from analysis.prometheus import Prometheus
from analysis.server import RunningServer, WebProvider
from tests.component.analysis.conftest import System, eventually
from tests.component.analysis.test_fault_matrix import strict_json


def judge(url: str, **params: str) -> tuple[int, dict[str, object]]:
    response = httpx.get(f"{url}/judge", params=params, timeout=30)
    assert response.headers["content-type"] == "application/json"
    return response.status_code, strict_json(response.text)


def test_good_preview_by_hash_is_200_successful(system: System, providers: dict[str, str]) -> None:
    healthy, active = system.stacks["healthy"], system.stacks["active"]
    status, body = judge(providers["real"], preview=healthy.hash, active=active.hash,
                         service="service-b", checks="error-rate,p95-latency,request-volume")
    assert (status, body["phase"]) == (200, "Successful"), body["message"]
    assert body["service"] == "service-b"
    checks = body["checks"]
    assert isinstance(checks, list) and [c["name"] for c in checks] == [
        "error-rate", "p95-latency", "request-volume"]


def test_bad_preview_is_200_failed(system: System, providers: dict[str, str]) -> None:
    status, body = judge(providers["real"], preview="1.2.0", active="1.0.0",
                         checks="error-rate,p95-latency,request-volume")
    assert (status, body["phase"]) == (200, "Failed")
    assert 'critical check "error-rate" is Failed' in str(body["message"])


def test_unknown_path_method_and_check_are_json_errors(providers: dict[str, str]) -> None:
    url = providers["real"]
    response = httpx.get(f"{url}/nope", timeout=10)
    assert (response.status_code, strict_json(response.text)["phase"]) == (404, "Error")
    response = httpx.post(f"{url}/judge", json={"preview": "1.1.0"}, timeout=10)
    assert (response.status_code, strict_json(response.text)["phase"]) == (405, "Error")
    status, body = judge(url, preview="1.1.0", active="1.0.0", checks="no-such-check")
    assert status == 400 and "unknown check 'no-such-check'" in str(body["message"])
    status, body = judge(url, preview="1.1.0", active="1.0.0", colour="blue")
    assert status == 400 and "unknown parameter 'colour'" in str(body["message"])


def raw_exchange(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    return raw


def test_malformed_http_still_gets_json(providers: dict[str, str]) -> None:
    # An unreadable request line gets an HTTP/0.9-style answer: the body alone, still JSON.
    raw = raw_exchange(providers["real"], b"GARBAGE / HTTP/1.1 extra words\r\n\r\n")
    assert strict_json(raw.decode())["phase"] == "Error"
    huge = b"GET /judge HTTP/1.1\r\nX-Big: " + b"x" * 70_000 + b"\r\n\r\n"
    head, _, body = raw_exchange(providers["real"], huge).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431")
    assert b"Content-Type: application/json" in head
    assert strict_json(body.decode())["phase"] == "Error"


def test_server_runs_as_a_module_and_stops_on_sigterm(system: System, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "analysis.server", "--port", "0", "--prometheus-url",
             system.prometheus_url, "--checks", str(system.checks_file), "--window", "20s"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        line = eventually(lambda: log.read_text(), lambda text: "listening on" in text,
                          within=30, describe="the server logs its address")
        url = line.split("listening on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        status, body = judge(url, preview="1.1.0", active="1.0.0")
        assert (status, body["phase"]) == (200, "Successful"), body["message"]
        started = time.monotonic()
        process.terminate()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_client_that_sends_nothing_is_disconnected_after_the_request_timeout(
    system: System,
) -> None:
    with Prometheus(system.prometheus_url, timeout=2) as prometheus, RunningServer(
        WebProvider(prometheus, system.checks()), request_timeout=1.0
    ) as server, socket.create_connection((server.host, server.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server, not by our 10 s timeout
        assert time.monotonic() - started < 5
