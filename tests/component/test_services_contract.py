"""The contract of the three demo services, checked against the real binaries on loopback.

What the harness and the analysis rely on: the same ports everywhere (traffic on 3000, ops on
9090), version answers that name the pod, the same metric names and labels on the same port,
health endpoints, gateway A's 200/502 answers naming the failed dependency, C's version line as
soon as it accepts, its line protocol refusing garbage, exit code 2 for a bad setting, and a
clean exit 0 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time

import httpx
import pytest

from tests.component.conftest import NAMES, Demo, Services

VERSIONS = {"gateway-a": "1.0.0", "service-b": "1.1.0", "service-c": "1.2.0"}
PODS = {
    "gateway-a": "gateway-a-5f6d-blue",
    "service-b": "service-b-6c4b-blue",
    "service-c": "service-c-7d9f-blue",
}
SHORT = {"gateway-a": "a", "service-b": "b", "service-c": "c"}

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


Sample = tuple[str, dict[str, str], float]


def read_samples(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition: (name, labels, value)."""
    samples: list[Sample] = []
    for line in text.splitlines():
        if match := SAMPLE.match(line):
            labels = dict(LABEL.findall(match["labels"] or ""))
            samples.append((match["name"], labels, float(match["value"])))
    return samples


def sample_value(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the one sample named ``name`` whose labels include ``labels``."""
    found = [v for n, ls, v in samples if n == name and labels.items() <= ls.items()]
    assert len(found) == 1, f"want one {name}{labels}, found {len(found)} among {len(samples)}"
    return found[0]


def ask_c(address: str, payload: bytes) -> bytes:
    """Send ``payload`` to C and read until C closes the connection (the greeting included)."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(payload)
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("name", NAMES)
def test_every_service_listens_on_3000_and_9090_by_default(launch: Services, name: str) -> None:
    """Unset PORT and METRICS_PORT: each service on its own loopback address, as in a pod."""
    host = f"127.3.{os.getpid() % 250 + 1}.{NAMES.index(name) + 1}"  # concurrent runs differ
    service = launch.start(name, defaults_on=host, probe="/healthz", VERSION="1.0.0")
    assert httpx.get(f"{service.ops}/version", timeout=5).json()["version"] == "1.0.0"
    assert service.ops == f"http://{host}:9090"
    with socket.create_connection((host, 3000), timeout=5) as conn:
        if name == "service-c":
            assert conn.makefile("rb").readline() == b"c 1.0.0\n"
        else:
            conn.sendall(b"GET /version HTTP/1.0\r\n\r\n")
            assert conn.makefile("rb").readline().startswith(b"HTTP/1.0 200")


@pytest.mark.parametrize("name", NAMES)
def test_version_answer_names_service_version_and_pod(demo: Demo, name: str) -> None:
    for base in {demo[name].http, demo[name].ops}:
        response = httpx.get(f"{base}/version")
        assert response.status_code == 200
        expected = {"service": SHORT[name], "version": VERSIONS[name], "pod": PODS[name]}
        assert response.json() == expected


def test_c_writes_its_version_line_as_soon_as_it_accepts(demo: Demo) -> None:
    """As `nc service-c 3000` does: connect, send nothing, read one line."""
    host, port = demo.c.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        assert conn.makefile("rb").readline() == b"c 1.2.0 service-c-7d9f-blue\n"


def test_c_answers_version_line_with_pod_and_keeps_the_connection(demo: Demo) -> None:
    host, port = demo.c.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        reader = conn.makefile("rb")
        assert reader.readline() == b"c 1.2.0 service-c-7d9f-blue\n"  # the greeting
        for _ in range(2):
            conn.sendall(b"VERSION\n")
            assert reader.readline() == b"c 1.2.0 service-c-7d9f-blue\n"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("name", NAMES)
def test_health_endpoints_answer_200(demo: Demo, name: str, path: str) -> None:
    response = httpx.get(f"{demo[name].ops}{path}")
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")


@pytest.mark.parametrize("name", NAMES)
def test_metrics_carry_service_and_version_labels(demo: Demo, name: str) -> None:
    assert httpx.get(f"{demo.a.http}/versions").status_code == 200  # traffic through all three
    samples = read_samples(httpx.get(f"{demo[name].ops}/metrics").text)
    labels = {"service": name, "version": VERSIONS[name]}

    assert sample_value(samples, "bgh_requests_total", code="200", **labels) >= 1
    assert sample_value(samples, "bgh_request_duration_seconds_count", **labels) >= 1
    assert sample_value(samples, "bgh_request_duration_seconds_bucket", le="0.0001", **labels) >= 0
    assert sample_value(samples, "go_goroutines") > 0
    assert sample_value(samples, "process_resident_memory_bytes") > 0
    # Prometheus adds pod as a target label; the services must not export one.
    assert not [ls for n, ls, _ in samples if n.startswith("bgh_") and "pod" in ls]


def test_gateway_times_each_upstream(demo: Demo) -> None:
    assert httpx.get(f"{demo.a.http}/versions").status_code == 200
    samples = read_samples(httpx.get(f"{demo.a.ops}/metrics").text)
    labels = {"service": "gateway-a", "version": "1.0.0"}
    for upstream in ("b", "c"):
        name = "bgh_upstream_request_duration_seconds_count"
        assert sample_value(samples, name, upstream=upstream, **labels) >= 1


def test_gateway_collects_every_version_pod_and_connection(demo: Demo) -> None:
    before = time.time()
    response = httpx.get(f"{demo.a.http}/versions")
    assert response.status_code == 200
    body = response.json()
    conns = body.pop("conns")
    assert body == {
        "a": "1.0.0",
        "b": "1.1.0",
        "c": "1.2.0",
        "pods": {"a": PODS["gateway-a"], "b": PODS["service-b"], "c": PODS["service-c"]},
    }
    # Each upstream's connection: A's end of it (on loopback) and when A dialled it, at the
    # latest during this request (A may have kept it from an earlier one, for about a second).
    assert sorted(conns) == ["b", "c"]
    for conn in conns.values():
        assert conn["id"].startswith("127.")
        assert before - 2.0 < conn["opened"] <= time.time()


def test_gateway_page_shows_versions_and_the_escaped_greeting(demo: Demo) -> None:
    response = httpx.get(f"{demo.a.http}/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Hello &lt;blue&gt; 👋" in response.text
    assert "<td>service-c</td><td>1.2.0</td><td>service-c-7d9f-blue</td>" in response.text


def test_gateway_names_b_when_b_is_stopped(launch: Services, demo: Demo) -> None:
    b = launch.start("service-b", VERSION="1.1.0")
    a = launch.start(
        "gateway-a", SERVICE_B_URL=f"http://{b.address}", SERVICE_C_ADDR=demo.c.address
    )
    assert httpx.get(f"{a.http}/versions").status_code == 200

    b.stop()
    response = httpx.get(f"{a.http}/versions")
    body = response.json()
    assert response.status_code == 502
    assert body["b"]["error"].startswith("cannot connect: dial tcp"), body
    assert body["c"] == "1.2.0"


def test_gateway_reports_timeout_when_c_hangs(
    launch: Services, demo: Demo, hanging_peer: str
) -> None:
    a = launch.start(
        "gateway-a",
        SERVICE_B_URL=f"http://{demo.b.address}",
        SERVICE_C_ADDR=hanging_peer,
        UPSTREAM_TIMEOUT_MS="200",
    )
    response = httpx.get(f"{a.http}/versions")
    assert response.status_code == 502
    assert response.json()["c"] == {"error": "timeout after 200ms"}
    assert response.json()["b"] == "1.1.0"


def test_injected_fault_in_c_reaches_the_gateway_as_502(launch: Services, demo: Demo) -> None:
    c = launch.start("service-c", VERSION="1.3.0", FAULT_ERROR_RATE="1")
    a = launch.start(
        "gateway-a", SERVICE_B_URL=f"http://{demo.b.address}", SERVICE_C_ADDR=c.address
    )
    response = httpx.get(f"{a.http}/versions")
    assert (response.status_code, response.json()["c"]) == (
        502,
        {"error": "answered ERR injected fault"},
    )
    assert '"msg":"fault injection on"' in c.process.log.read_text()


def test_gateway_is_not_ready_without_upstream_addresses(launch: Services) -> None:
    a = launch.start("gateway-a", probe="/healthz", SERVICE_C_ADDR="service-c")
    response = httpx.get(f"{a.ops}/readyz")
    assert response.status_code == 503
    reason = response.json()["reason"]
    assert "SERVICE_B_URL is not set" in reason
    assert 'SERVICE_C_ADDR="service-c" is not host:port' in reason


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (b"HELLO\n", b'ERR unknown command "HELLO"\n'),
        (b"GET / HTTP/1.1\r\nHost: c\r\n\r\n", b'ERR unknown command "GET / HTTP/1.1"\n'),
        (b"\x00\xff\n", b'ERR unknown command "\\x00\\xff"\n'),
        (b"\n", b"ERR empty command\n"),
        (b"x" * 300 + b"\n", b"ERR line too long: over 256 bytes\n"),
        (b"VERSION\nNOPE\n", b'c 1.2.0 service-c-7d9f-blue\nERR unknown command "NOPE"\n'),
    ],
    ids=["word", "http", "binary", "empty", "oversize", "good-then-bad"],
)
def test_c_refuses_garbage_with_one_err_line_then_closes(
    demo: Demo, payload: bytes, answer: bytes
) -> None:
    assert ask_c(demo.c.address, payload) == b"c 1.2.0 service-c-7d9f-blue\n" + answer
    assert httpx.get(f"{demo.c.ops}/healthz").status_code == 200  # and C is still up


def test_c_ends_a_silent_connection(launch: Services) -> None:
    c = launch.start("service-c", IDLE_TIMEOUT_MS="100")
    assert ask_c(c.address, b"") == b"c dev\nERR idle timeout: no command within 100ms\n"


@pytest.mark.parametrize(
    ("name", "variable", "value"),
    [
        ("gateway-a", "PORT", "abc"),
        ("gateway-a", "UPSTREAM_TIMEOUT_MS", "0"),
        ("service-b", "FAULT_ERROR_RATE", "2"),
        ("service-b", "VERSION", "1.0 beta"),
        ("service-c", "METRICS_PORT", "70000"),
        ("gateway-a", "LOG_LEVEL", "loud"),
        ("service-c", "IDLE_TIMEOUT_MS", "soon"),
        ("service-c", "FAULT_LATENCY_MS", "-5"),
    ],
)
def test_bad_environment_value_exits_2_naming_it(
    services: Services, name: str, variable: str, value: str
) -> None:
    result = services.run(name, **{variable: value})
    assert result.returncode == 2, result.stderr
    assert f"invalid {variable}={json.dumps(value)}: want " in result.stderr
    assert f", e.g. {variable}=" in result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_sigterm_exits_0(launch: Services, demo: Demo, name: str) -> None:
    env = {"SERVICE_B_URL": f"http://{demo.b.address}", "SERVICE_C_ADDR": demo.c.address}
    service = launch.start(name, **(env if name == "gateway-a" else {}))
    assert service.terminate() == 0
    assert '"msg":"stopped"' in service.process.log.read_text()
