"""Real Prometheus scraping real demo services under generated traffic, on loopback.

A ``Stack`` is gateway A, service B and service C of one version, labelled as a Rollout's pods
would be (``pod``, ``rollouts_pod_template_hash``); ``Traffic`` calls gateway A until stopped;
``start_prometheus`` runs Debian's ``prometheus`` over file-based service discovery with a
one-second scrape interval; ``eventually`` is the one permitted loop (capped backoff, a deadline,
the last value in the error). ``scaled_checks`` writes the default checks with their timing
scaled down to seconds (4 s steps and rate window), so a judged window fills in well under a
minute.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from analysis.checks import DEFAULT_CHECKS
from analysis.prometheus import Prometheus
from harness.targets.processes import Process, free_port, wait_http_ok
from tests.support.services import Service, Services

SCRAPE_INTERVAL = 1.0
RATE_WINDOW = "4s"  # four scrapes; the step is the same, so samples do not overlap
QUERY_TIMEOUT = 2.0

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """One version of the demo system: its pod-template hash, B's faults and its traffic."""

    version: str
    hash: str
    b_env: dict[str, str] = field(default_factory=dict)
    workers: int = 2
    pause: float = 0.05  # between two requests of one worker


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


def start_stack(services: Services, spec: Spec) -> Stack:
    env = {"VERSION": spec.version}
    b = services.start("service-b", POD_NAME=f"service-b-{spec.hash}-x", **env, **spec.b_env)
    c = services.start("service-c", POD_NAME=f"service-c-{spec.hash}-x", **env)
    a = services.start(
        "gateway-a", POD_NAME=f"gateway-a-{spec.hash}-x", SERVICE_B_URL=f"http://{b.address}",
        SERVICE_C_ADDR=c.address, **env,
    )
    return Stack(spec, a, b, c)


class Traffic:
    """Workers calling gateway A's /versions until stopped; counts the answers by status."""

    def __init__(self, url: str, *, workers: int, pause: float) -> None:
        self.url, self.pause = url, pause
        self.codes: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    @classmethod
    def to(cls, stack: Stack) -> Traffic:
        return cls(f"{stack.a.http}/versions", workers=stack.spec.workers, pause=stack.spec.pause)

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


def start_prometheus(run_dir: Path, stacks: Sequence[Stack]) -> tuple[Process, str]:
    """Prometheus scraping every process of ``stacks`` each second; returns it and its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install -y prometheus)")
    targets = run_dir / "targets.json"
    targets.write_text(json.dumps([t for s in stacks for t in s.scrape_targets()]))
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


def wait_for_scrapes(prometheus_url: str, *, seconds: float, within: float) -> None:
    """Wait until every target has been scraped for ``seconds`` (an eventual query, no sleep)."""
    with Prometheus(prometheus_url, timeout=5) as prometheus:
        eventually(
            lambda: prometheus.query(f'min(count_over_time(up{{job="bgh"}}[{seconds:g}s]))'),
            lambda r: bool(r) and r[0].values[0] >= seconds - 2,
            within=within,
            describe=f"every target scraped for {seconds:g}s",
        )


def scaled_checks(directory: Path, *, extra: Sequence[dict[str, Any]] = (),
                  name: str = "checks.yaml") -> Path:
    """The default checks with 4 s steps and rate window, plus ``extra`` checks."""
    raw = yaml.safe_load(DEFAULT_CHECKS.read_text())
    raw.update(step=RATE_WINDOW, rate_window=RATE_WINDOW, query_timeout=f"{QUERY_TIMEOUT:g}s")
    raw["checks"] = [*raw["checks"], *extra]
    path = directory / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
