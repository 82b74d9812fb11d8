"""Real Prometheus scraping real demo services under generated traffic, shared by the session.

Six versions of the demo system (gateway A, service B, service C each) run on loopback, as
preview and active would during a release:

| version | pod-template hash | what is special                       | traffic        |
|---------|-------------------|---------------------------------------|----------------|
| 1.0.0   | 7d9f8c6b5         | the active version                    | steady         |
| 1.1.0   | 5c8f9d7b4         | a healthy preview                     | steady         |
| 1.2.0   | 6b7c8d9f2         | B fails 30% of requests               | steady         |
| 1.3.0   | 4f5g6h7j8         | B answers 300 ms late                 | steady         |
| 1.4.0   | 9k8l7m6n5         | healthy                               | one every 4 s  |
| 1.5.0   | 2p4q5r6s7         | healthy                               | none           |

Debian's Prometheus scrapes every process once a second and adds the target labels ``pod`` and
``rollouts_pod_template_hash``, as it does on the local target. The session waits (an eventual
query with capped backoff, not a sleep) until every target has been scraped for longer than a
judged window plus the rate window. Checks are the default ``analysis/checks.yaml`` with the
timing scaled down (4 s steps and rate window, 20 s windows) plus a few odd checks for the fault
matrix.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from analysis.checks import CheckSet, load_checks
from analysis.prometheus import Prometheus
from analysis.server import RunningServer, WebProvider
from harness.targets.processes import free_port
from tests.component.conftest import Services
from tests.support.metrics import (
    RATE_WINDOW,
    Spec,
    Stack,
    Traffic,
    eventually,
    scaled_checks,
    start_prometheus,
    start_stack,
    wait_for_scrapes,
)

__all__ = ["RATE_WINDOW", "WINDOW", "System", "eventually"]

WINDOW = 20.0  # seconds judged in these tests
DATA_WITHIN = 90.0  # how long the session may take to gather enough samples

SPECS = {
    "active": Spec("1.0.0", "7d9f8c6b5"),
    "healthy": Spec("1.1.0", "5c8f9d7b4"),
    "errors": Spec("1.2.0", "6b7c8d9f2", {"FAULT_ERROR_RATE": "0.3"}),
    "slow": Spec("1.3.0", "4f5g6h7j8", {"FAULT_LATENCY_MS": "300"}, workers=4),
    "quiet": Spec("1.4.0", "9k8l7m6n5", workers=1, pause=4.0),
    "idle": Spec("1.5.0", "2p4q5r6s7", workers=0),
}


@dataclass(frozen=True)
class System:
    """The running stacks, Prometheus and the checks files tuned to them."""

    stacks: dict[str, Stack]
    prometheus_url: str
    checks_file: Path
    fault_checks_file: Path
    traffic: dict[str, Traffic]

    def checks(self) -> CheckSet:
        return load_checks(self.checks_file)

    def fault_checks(self) -> CheckSet:
        return load_checks(self.fault_checks_file)


_TOTAL = "sum by (service) (increase(bgh_requests_total{ {selector} }[{rate_window}]))"

# Odd checks for the fault matrix, on top of the defaults.
FAULT_CHECKS = [
    {"name": "nan-value", "kind": "distribution", "condition": {"max": 1},
     "query": "(sum by (service) (rate(bgh_requests_total{ {selector} }[{rate_window}])) * 0) / 0"},
    {"name": "inf-value", "kind": "distribution", "condition": {"max": 1},
     "query": "(sum by (service) (rate(bgh_requests_total{ {selector} }[{rate_window}])) + 1) / 0"},
    {"name": "malformed", "kind": "distribution", "condition": {"max": 1},
     "query": "sum by (service) (rate(bgh_requests_total{ {selector} }[{rate_window}])"},
    {"name": "by-version", "kind": "volume", "condition": {"min": 1},
     "query": "sum by (version) (rate(bgh_requests_total{ {selector} }[{rate_window}]))"},
    {"name": "empty", "kind": "distribution", "condition": {"max": 1},
     "query": "sum by (service) (rate(bgh_no_such_metric_total{ {selector} }[{rate_window}]))"},
    {"name": "negative-value", "kind": "distribution", "condition": {"max": 1},
     "query": f"-1 * {_TOTAL}"},
    {"name": "overflow", "kind": "distribution", "condition": {"max": 1},
     "query": f"{_TOTAL} * 1e300"},
    {"name": "nan-errors", "kind": "ratio", "condition": {"max": 0.05},
     "errors": f"({_TOTAL} * 0) / 0", "total": _TOTAL},
    {"name": "inf-errors", "kind": "ratio", "condition": {"max": 0.05},
     "errors": f"({_TOTAL} + 1) / 0", "total": _TOTAL},
    {"name": "errors-by-code", "kind": "ratio", "condition": {"max": 0.05},
     "errors": "sum by (service, code) (increase(bgh_requests_total{ {selector}, code=~\"5..\" }"
               "[{rate_window}]))",
     "total": _TOTAL},
    {"name": "negative-total", "kind": "ratio", "condition": {"max": 0.05},
     "errors": f"0 * {_TOTAL}", "total": f"-1 * {_TOTAL}"},
    {"name": "errors-beyond-total", "kind": "ratio", "condition": {"max": 0.05},
     "errors": f"3 * {_TOTAL}", "total": _TOTAL},
    {"name": "quantile-without-le", "kind": "quantile", "quantile": 0.95, "condition": {"max": 1},
     "query": "sum by (service) (increase(bgh_request_duration_seconds_bucket{ {selector} }"
              "[{rate_window}]))"},
    {"name": "must-have-data", "kind": "distribution", "must_have_data": True,
     "condition": {"max": 1},
     "query": "sum by (service) (rate(bgh_no_such_metric_total{ {selector} }[{rate_window}]))"},
]


@pytest.fixture(scope="session")
def system(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    run_dir = tmp_path_factory.mktemp("analysis")
    stacks = {name: start_stack(services, spec) for name, spec in SPECS.items()}
    traffic = {name: Traffic.to(stack) for name, stack in stacks.items()}
    for t in traffic.values():
        t.start()
    process, url = start_prometheus(run_dir, list(stacks.values()))
    checks_file = scaled_checks(run_dir)
    fault_file = scaled_checks(run_dir, extra=FAULT_CHECKS, name="fault-checks.yaml")
    try:
        # The window, the rate window before it, and a margin.
        wait_for_scrapes(url, seconds=WINDOW + 5 + 3, within=DATA_WITHIN)
        yield System(stacks, url, checks_file, fault_file, traffic)
    finally:
        for t in traffic.values():
            t.stop()
        process.stop()


# The demo services' histogram buckets (services/internal/metrics).
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
           2.5, 5, 10, math.inf)


def _grid(query: dict[str, list[str]]) -> list[float]:
    start, end, step = (float(query[k][0]) for k in ("start", "end", "step"))
    return [start + i * step for i in range(int((end - start) // step) + 1)]


def _matrix(result: list[dict[str, Any]]) -> bytes:
    return json.dumps({"status": "success",
                       "data": {"resultType": "matrix", "result": result}}).encode()


def _tail_answer(query: dict[str, list[str]]) -> bytes:
    """Bucket counts per step for service-b: active steady, preview four times slower in every
    third step (a regression in a third of the window, each slow step still under 0.5 s)."""
    grid = _grid(query)
    preview = 'version="1.1.0"' in query["query"][0]
    rng = np.random.default_rng(1 if preview else 2)
    series: dict[float, list[list[Any]]] = {le: [] for le in BUCKETS}
    for i, ts in enumerate(grid):
        latencies = rng.lognormal(math.log(0.002), 0.4, 200)
        if preview and i % 3 == 0:
            latencies *= 4
        for le in BUCKETS:
            series[le].append([ts, str(int((latencies <= le).sum()))])
    return _matrix([{"metric": {"service": "service-b", "le": "+Inf" if math.isinf(le) else
                                f"{le:g}"}, "values": values} for le, values in series.items()])


class _FakePrometheus(BaseHTTPRequestHandler):
    """Answers every request the way ``server.behaviour`` says: a broken Prometheus, or a
    recorded answer a real one cannot be made to give on demand."""

    server: _FakeServer

    def do_GET(self) -> None:
        behaviour = self.server.behaviour
        if behaviour == "hang":
            self.server.released.wait(30)  # until the fixture's teardown, or 30 s
            return
        query = parse_qs(urlsplit(self.path).query)
        if behaviour == "not-a-number":
            grid = _grid(query)
            body = _matrix([{"metric": {"service": "service-b"},
                             "values": [[ts, "fast"] for ts in grid]}])
            status, kind = 200, "application/json"
        elif behaviour == "tail":
            status, body, kind = 200, _tail_answer(query), "application/json"
        else:
            status, body, kind = {
                "500": (500, b"internal server error\n", "text/plain"),
                "not-json": (200, b"<html><body>login required</body></html>", "text/html"),
            }[behaviour]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.released = threading.Event()
        super().__init__(("127.0.0.1", 0), _FakePrometheus)


@pytest.fixture(scope="session")
def broken_prometheus() -> Iterator[dict[str, str]]:
    """URLs of broken Prometheus servers: real loopback HTTP peers, since a real Prometheus
    cannot be made to hang, fail with 500, answer HTML or a value that is not a number, nor
    hold a latency regression in a third of the window (the demo services slow every request
    or none) on demand. ``down`` has no listener."""
    servers = {name: _FakeServer(name) for name in ("hang", "500", "not-json", "not-a-number",
                                                    "tail")}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    urls = {name: f"http://127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    urls["down"] = f"http://127.0.0.1:{free_port()}"
    yield urls
    for s in servers.values():
        s.released.set()
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def providers(system: System, broken_prometheus: dict[str, str]) -> Iterator[dict[str, str]]:
    """Web providers on loopback, one per Prometheus (the real one under "real")."""
    urls = {"real": system.prometheus_url, **broken_prometheus}
    checks = system.fault_checks()
    running: dict[str, RunningServer] = {}
    clients = []
    with contextlib.ExitStack() as stack:
        for name, url in urls.items():
            client = Prometheus(url, timeout=checks.query_timeout)
            clients.append(client)
            stack.callback(client.close)
            provider = WebProvider(client, checks, default_window=WINDOW)
            running[name] = stack.enter_context(RunningServer(provider))
        yield {name: server.url for name, server in running.items()}
