"""Judge time and web-provider latency, against Debian's Prometheus holding real TSDB blocks.

    .venv/bin/python benchmarks/bench_analysis.py [--runs 30] [--requests 300]

Data: 25 minutes of the demo services' metrics (5 s scrapes; 20 minutes before the run starts
and 5 after, so that the provider, which judges the window ending at each request, always has a
full window) for an active version 1.0.0 and a preview 1.1.0, for gateway-a, service-b and
service-c, written as OpenMetrics, turned into TSDB blocks with ``promtool tsdb
create-blocks-from openmetrics`` and served by a Prometheus started on a free loopback port.
Nothing scrapes, so every judge run reads the same samples.

Measured:
- judge time, 10 checks (the 5 defaults and 5 more) over a 10-minute window at the default 20 s
  steps, both versions: end to end (range queries, 8 at a time; statistics; verdict), and the
  statistics alone over the same series answered from memory;
- the web provider's latency per ``GET /judge`` (same 10 checks), sequential requests from one
  client over keep-alive, p50/p99/max.
Results go to benchmarks/RESULTS.md, section "Analysis (issue: Analysis)".
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.checks import DEFAULT_CHECKS, CheckSet, Side, parse_checks  # noqa: E402
from analysis.errors import QueryError  # noqa: E402
from analysis.judge import judge  # noqa: E402
from analysis.prometheus import Prometheus, Series  # noqa: E402
from analysis.server import RunningServer, WebProvider  # noqa: E402
from benchmarks.results import write_section  # noqa: E402

HEADING = "Analysis (issue: Analysis)"
SCRAPE = 5  # seconds between samples in the generated data
SPAN = 15 * 60  # seconds of data
WINDOW = 600.0
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
           2.5, 5, 10)
SERVICES = ("gateway-a", "service-b", "service-c")
RATE = 200.0  # requests per second per service and version

EXTRA_CHECKS = [
    {"name": "p99-latency", "kind": "distribution", "unit": "s", "weight": 1,
     "condition": {"max": 1, "max_increase": 0.1},
     "query": "histogram_quantile(0.99, sum by (service, le) "
              "(rate(bgh_request_duration_seconds_bucket{ {selector} }[{rate_window}])))"},
    {"name": "mean-latency", "kind": "distribution", "unit": "s", "weight": 1,
     "condition": {"max_increase": 0.02},
     "query": "sum by (service) (rate(bgh_request_duration_seconds_sum{ {selector} }"
              "[{rate_window}])) / sum by (service) (rate(bgh_request_duration_seconds_count"
              "{ {selector} }[{rate_window}]))"},
    {"name": "client-error-rate", "kind": "ratio", "weight": 1, "min_total": 50,
     "condition": {"max": 0.1, "max_increase": 0.02},
     "errors": 'sum by (service) (increase(bgh_requests_total{ {selector}, code=~"4.." }'
               "[{rate_window}]))",
     "total": "sum by (service) (increase(bgh_requests_total{ {selector} }[{rate_window}]))"},
    {"name": "upstream-p95-latency", "kind": "distribution", "unit": "s", "weight": 1,
     "condition": {"max": 0.5, "max_increase": 0.05},
     "query": "histogram_quantile(0.95, sum by (service, le) (rate("
              "bgh_upstream_request_duration_seconds_bucket{ {selector} }[{rate_window}])))"},
    {"name": "throughput", "kind": "distribution", "unit": "/s", "weight": 1,
     "condition": {"max_decrease": 50},
     "query": "sum by (service) (rate(bgh_requests_total{ {selector} }[{rate_window}]))"},
]


def bench_checks() -> CheckSet:
    raw = yaml.safe_load(DEFAULT_CHECKS.read_text())
    raw["checks"] = [*raw["checks"], *EXTRA_CHECKS]
    checks = parse_checks(raw, source="default checks + 5 more")
    if len(checks.checks) != 10:
        raise SystemExit(f"expected 10 checks, have {len(checks.checks)}")
    return checks


def openmetrics(end: int) -> str:
    """Counters and histograms for both versions, one sample every SCRAPE s up to ``end``."""
    rng = np.random.default_rng(8)
    times = np.arange(end - SPAN - 300, end + 1, SCRAPE)
    lines: list[str] = [
        "# TYPE bgh_requests counter",
        "# TYPE bgh_request_duration_seconds histogram",
        "# TYPE bgh_upstream_errors counter",
        "# TYPE bgh_upstream_request_duration_seconds histogram",
    ]

    def counter(name: str, labels: str, increments: np.ndarray) -> None:
        for ts, value in zip(times, np.cumsum(increments), strict=True):
            lines.append(f"{name}{{{labels}}} {value:g} {ts}")

    def histogram(name: str, labels: str, n: np.ndarray, median: float) -> None:
        observed = [rng.lognormal(math.log(median), 0.5, int(k)) for k in n]
        for le in (*BUCKETS, math.inf):
            per_step = np.array([(o <= le).sum() for o in observed])
            le_text = "+Inf" if le == math.inf else f"{le:g}"
            counter(f"{name}_bucket", f'{labels},le="{le_text}"', per_step)
        counter(f"{name}_count", labels, n)
        counter(f"{name}_sum", labels, np.array([o.sum() for o in observed]))

    for version, slower in (("1.0.0", 1.0), ("1.1.0", 1.05)):
        for service in SERVICES:
            labels = f'service="{service}",version="{version}"'
            n = rng.poisson(RATE * SCRAPE, times.size)
            errors = rng.binomial(n, 0.002)
            counter("bgh_requests_total", f'{labels},code="200"', n - errors)
            counter("bgh_requests_total", f'{labels},code="500"', errors)
            histogram("bgh_request_duration_seconds", labels, n, 0.002 * slower)
            if service == "gateway-a":
                for upstream in ("b", "c"):
                    up = f'{labels},upstream="{upstream}"'
                    histogram("bgh_upstream_request_duration_seconds", up, n, 0.001 * slower)
                    counter("bgh_upstream_errors_total", f'{up},reason="timeout"',
                            rng.binomial(n, 0.001))
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class Memory:
    """Answers the same range queries from series fetched once: the judge without I/O."""

    def __init__(self, answers: dict[str, list[Series] | QueryError]) -> None:
        self.answers = answers

    def query_ranges(self, queries: Sequence[str], *, start: float, end: float,
                     step: float) -> list[list[Series] | QueryError]:
        return [self.answers[q] for q in queries]


class Recorder:
    def __init__(self, prometheus: Prometheus) -> None:
        self.prometheus = prometheus
        self.answers: dict[str, list[Series] | QueryError] = {}
        self.asked = 0

    def query_ranges(self, queries: Sequence[str], *, start: float, end: float,
                     step: float) -> list[list[Series] | QueryError]:
        answers = self.prometheus.query_ranges(queries, start=start, end=end, step=step)
        self.asked += len(queries)
        self.answers.update(zip(queries, answers, strict=True))
        return answers


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def start_prometheus(work: Path, end: int) -> tuple[subprocess.Popen[bytes], str]:
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        raise SystemExit("needs Debian's prometheus (apt-get install -y prometheus)")
    source = work / "data.om"
    source.write_text(openmetrics(end))
    tsdb = work / "tsdb"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source),
                    str(tsdb)], check=True)
    (work / "prometheus.yml").write_text("global: {scrape_interval: 1m}\nscrape_configs: []\n")
    port = free_port()
    log = (work / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={tsdb}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
         "--storage.tsdb.retention.time=30d"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline, delay = time.monotonic() + 60, 0.05
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"prometheus exited: see {work / 'prometheus.log'}")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    raise SystemExit("prometheus did not become ready within 60 s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    checks = bench_checks()
    preview, active = Side.parse("preview", "1.1.0"), Side.parse("active", "1.0.0")
    # The data runs 5 minutes past now, so that the provider, which judges the window ending at
    # the moment of each request, sees a full window for the whole run.
    load = os.getloadavg()[0]
    now = int(time.time()) // SCRAPE * SCRAPE
    end = now
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as tmp:
        process, url = start_prometheus(Path(tmp), now + 300)
        try:
            with Prometheus(url, timeout=checks.query_timeout) as prometheus:
                recorder = Recorder(prometheus)
                first = judge(recorder, checks, preview=preview, active=active, window=WINDOW,
                              end=end)
                samples = sum(c.preview.values.size + c.active.values.size
                              for m in first.measurements for c in m.comparisons)
                queries = recorder.asked
                end_to_end = []
                for _ in range(args.runs):
                    verdict = judge(prometheus, checks, preview=preview, active=active,
                                    window=WINDOW, end=end)
                    end_to_end.append(verdict.elapsed)
                memory = Memory(recorder.answers)
                pure = [judge(memory, checks, preview=preview, active=active, window=WINDOW,
                              end=end).elapsed for _ in range(args.runs)]

                provider = WebProvider(prometheus, checks, default_window=WINDOW)
                with RunningServer(provider) as server, httpx.Client(timeout=30) as client:
                    params = {"preview": "1.1.0", "active": "1.0.0", "window": "10m"}
                    latencies, phases = [], set()
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        response = client.get(f"{server.url}/judge", params=params)
                        latencies.append(time.perf_counter() - started)
                        phases.add(f"{response.status_code} {response.json()['phase']}")
        finally:
            process.terminate()
            process.wait(timeout=30)

    phase_counts = ", ".join(sorted(phases))
    goal = "met" if percentile(end_to_end, 95) <= 0.5 else "**missed**"
    rows = [
        (f"judge, 10 checks, 10 min window at {checks.step:g} s steps, both versions, end to end "
         f"({queries} range queries, {samples:,} samples)", end_to_end, f"≤ 500 ms (p95): {goal}"),
        ("judge statistics alone (same series answered from memory)", pure, ""),
    ]
    table = "\n".join(
        f"| {name} | {ms(statistics.median(v))} | {ms(percentile(v, 95))} | {ms(max(v))} | {g} |"
        for name, v, g in rows
    )
    server_row = (
        f"| `GET /judge`, 10 checks, 10 min window, {args.requests} sequential requests over "
        f"keep-alive | {ms(statistics.median(latencies))} | {ms(percentile(latencies, 99))} | "
        f"{ms(max(latencies))} |"
    )
    body = f"""
Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by
`python benchmarks/bench_analysis.py --runs {args.runs} --requests {args.requests}` on
{os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()},
Prometheus {_prometheus_version()} from Debian. Data: the demo metrics for 1.0.0 and 1.1.0
(3 services, 5 s scrapes, {RATE:g} rps each, preview 5% slower), 20 min before the run and
5 min after, loaded as TSDB blocks with promtool; the verdict on it: **{first.phase}**
({first.message[:100]}). Load average (1 min) when the run began: {load:.2f}; the machine is
shared, so other work competes for the same CPUs.

| judge time | p50 | p95 | max | goal |
|---|---|---|---|---|
{table}

| web provider latency per request (client side) | p50 | p99 | max |
|---|---|---|---|
{server_row}

Answers seen: {phase_counts}. The end-to-end time is mostly Prometheus answering the range
queries (8 in flight at once); the statistics (validation, outlier fences, Mann-Whitney U with
the Hodges-Lehmann shift, Fisher's exact test on counts and on the whole window's buckets) are
the second row.
"""
    print(body)
    write_section(HEADING, body)


def _prometheus_version() -> str:
    binary = shutil.which("prometheus") or "prometheus"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].split(" (")[0].removeprefix("prometheus, ")


if __name__ == "__main__":
    main()
