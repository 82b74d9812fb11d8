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
timing scaled down (1 s steps, 5 s rate window, 20 s windows) plus a few odd checks for the fault
matrix.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from analysis.checks import DEFAULT_CHECKS, CheckSet, load_checks
from analysis.prometheus import Prometheus
from analysis.server import RunningServer, WebProvider
from harness.targets.processes import Process, free_port, wait_http_ok
from tests.component.conftest import Service, Services

WINDOW = 20.0  # seconds judged in these tests
RATE_WINDOW = "5s"
SCRAPE_INTERVAL = 1.0
QUERY_TIMEOUT = 2.0
DATA_WITHIN = 90.0  # how long the session may take to gather enough samples

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    version: str
    hash: str
    b_env: dict[str, str] = field(default_factory=dict)
    workers: int = 2
    pause: float = 0.05  # between two requests of one worker


SPECS = {
    "active": Spec("1.0.0", "7d9f8c6b5"),
    "healthy": Spec("1.1.0", "5c8f9d7b4"),
    "errors": Spec("1.2.0", "6b7c8d9f2", {"FAULT_ERROR_RATE": "0.3"}),
    "slow": Spec("1.3.0", "4f5g6h7j8", {"FAULT_LATENCY_MS": "300"}, workers=4),
    "quiet": Spec("1.4.0", "9k8l7m6n5", workers=1, pause=4.0),
    "idle": Spec("1.5.0", "2p4q5r6s7", workers=0),
}


@dataclass(frozen=True)
class Stack:
    """Gateway A, service B and service C of one version."""

    spec: Spec
    a: Service
    b: Service
    c: Service

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def hash(self) -> str:
        return self.spec.hash

    def scrape_targets(self) -> list[dict[str, Any]]:
        return [
            {
                "targets": [f"127.0.0.1:{s.metrics_port or s.port}"],
                "labels": {
                    "pod": f"{s.name}-{self.hash}-x",
                    "rollouts_pod_template_hash": self.hash,
                },
            }
            for s in (self.a, self.b, self.c)
        ]


class Traffic:
    """Workers calling gateway A's /versions until stopped; counts the answers by status."""

    def __init__(self, url: str, *, workers: int, pause: float) -> None:
        self.url, self.pause = url, pause
        self.codes: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def _run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set():
                try:
                    self.codes[client.get(self.url).status_code] += 1
                except httpx.HTTPError:
                    self.codes[0] += 1
                self._stop.wait(self.pause)  # pacing, not waiting for an event

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def eventually(read: Callable[[], T], ok: Callable[[T], bool], *, within: float,
               describe: str) -> T:
    """Read until ``ok`` holds; capped backoff, a deadline, and the last value in the error."""
    deadline = time.monotonic() + within
    delay, last = 0.1, "nothing yet"
    while True:
        try:
            value = read()
            if ok(value):
                return value
            last = repr(value)
        except Exception as exc:  # whatever the last attempt saw goes into the message
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"{describe}: not met within {within:.0f}s; last seen: {last}")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


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
]


def _write_checks(directory: Path) -> tuple[Path, Path]:
    raw = yaml.safe_load(DEFAULT_CHECKS.read_text())
    raw.update(step="1s", rate_window=RATE_WINDOW, query_timeout=f"{QUERY_TIMEOUT:g}s")
    checks_file = directory / "checks.yaml"
    checks_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    faults = dict(raw, checks=[*raw["checks"], *FAULT_CHECKS])
    fault_file = directory / "fault-checks.yaml"
    fault_file.write_text(yaml.safe_dump(faults, sort_keys=False))
    return checks_file, fault_file


def _start_stack(services: Services, spec: Spec) -> Stack:
    env = {"VERSION": spec.version}
    b = services.start("service-b", POD_NAME=f"service-b-{spec.hash}-x", **env, **spec.b_env)
    c = services.start("service-c", POD_NAME=f"service-c-{spec.hash}-x", **env)
    a = services.start(
        "gateway-a", POD_NAME=f"gateway-a-{spec.hash}-x", SERVICE_B_URL=f"http://{b.address}",
        SERVICE_C_ADDR=c.address, **env,
    )
    return Stack(spec, a, b, c)


def _start_prometheus(run_dir: Path, stacks: dict[str, Stack]) -> tuple[Process, str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install -y prometheus)")
    targets = run_dir / "targets.json"
    targets.write_text(json.dumps([t for s in stacks.values() for t in s.scrape_targets()]))
    config = run_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL:g}s", "scrape_timeout": "900ms",
                   "evaluation_interval": "15s"},
        "scrape_configs": [{"job_name": "bgh",
                            "file_sd_configs": [{"files": [str(targets)]}]}],
    }))
    port = free_port()
    process = Process("prometheus", run_dir)
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={run_dir / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
               "--storage.tsdb.retention.time=1h"]
    process.start(command)
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(process, f"{url}/-/ready", within=30, command=" ".join(command))
    return process, url


@pytest.fixture(scope="session")
def system(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    run_dir = tmp_path_factory.mktemp("analysis")
    stacks = {name: _start_stack(services, spec) for name, spec in SPECS.items()}
    traffic = {
        name: Traffic(f"{stack.a.http}/versions", workers=stack.spec.workers,
                      pause=stack.spec.pause)
        for name, stack in stacks.items()
    }
    for t in traffic.values():
        t.start()
    process, url = _start_prometheus(run_dir, stacks)
    checks_file, fault_file = _write_checks(run_dir)
    try:
        enough = WINDOW + 5 + 3  # the window, the rate window before it, and a margin
        with Prometheus(url, timeout=5) as prometheus:
            eventually(
                lambda: prometheus.query(f'min(count_over_time(up{{job="bgh"}}[{enough:g}s]))'),
                lambda r: bool(r) and r[0].values[0] >= enough - 2,
                within=DATA_WITHIN,
                describe=f"every target scraped for {enough:g}s",
            )
        yield System(stacks, url, checks_file, fault_file, traffic)
    finally:
        for t in traffic.values():
            t.stop()
        process.stop()


class _FakePrometheus(BaseHTTPRequestHandler):
    """Answers every request the way ``server.behaviour`` says: a broken Prometheus."""

    server: _FakeServer

    def do_GET(self) -> None:
        behaviour = self.server.behaviour
        if behaviour == "hang":
            self.server.released.wait(30)  # until the fixture's teardown, or 30 s
            return
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
    cannot be made to hang, fail with 500 or answer HTML on demand. ``down`` has no listener."""
    servers = {name: _FakeServer(name) for name in ("hang", "500", "not-json")}
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
