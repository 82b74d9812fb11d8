"""Calibration of the default checks: false Failed rate on A/A data, detection of injected shifts.

    .venv/bin/python benchmarks/bench_calibration.py [--trials 1000] [--seed 15]

Each trial judges one preview against one active with the default ``analysis/checks.yaml`` (its
step, rate window, alpha and conditions unchanged) over a 5-minute window, through
``analysis.judge.judge`` itself; only Prometheus is replaced, by series computed here the way
Prometheus computes them from the services' counters and histogram (per step: ``increase()``
of the request counters and buckets, ``histogram_quantile`` over the buckets' rate), for
``service="service-b"`` (so ``upstream-error-rate``, gateway A's only, is left out).

Traffic: 20 requests per second per side, Poisson per step; 1 % of requests fail; latency is
log-normal (median 20 ms, sigma 0.5) scaled per step by a load factor both sides share (an
AR(1) on the log, so neighbouring steps are alike, as they are under real load).

Scenarios:
- A/A, same load: preview and active are two identical services under the same load;
- A/A, other window: active against itself in another window (its own load, drawn apart);
- 2x error rate: the preview fails 2 % of requests;
- +50% p95: every preview request is 1.5 times slower;
- tail in 30% of steps: the preview is 3 times slower in a random 30 % of the steps.

With ``--real MINUTES`` it also replays real A/A data: two identical demo systems (gateway A,
B and C built from services/, versions 1.0.0 and 1.1.0) under the same generated load, scraped
each second by Debian's Prometheus for MINUTES, then judged over every non-overlapping window
of the scaled checks the component tests use (4 s steps and rate window), each way round
(1.1.0 against 1.0.0 and 1.0.0 against 1.1.0).

Results go to benchmarks/RESULTS.md, section "Analysis calibration (issue #15)".
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.checks import CheckSet, Side, load_checks  # noqa: E402
from analysis.judge import Phase, bucket_quantile, judge  # noqa: E402
from analysis.prometheus import Series  # noqa: E402
from benchmarks.results import write_section  # noqa: E402

HEADING = "Analysis calibration (issue #15)"
WINDOW = 300.0
END = 1_800_000_000.0
RPS = 20.0
ERROR_RATE = 0.01
MEDIAN = 0.02
SIGMA = 0.5
BUCKETS = np.array([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1, 2.5, 5, 10, math.inf])


@dataclass(frozen=True)
class SideData:
    """One side's series over the grid: requests, errors and cumulative bucket counts per step."""

    requests: np.ndarray  # steps
    errors: np.ndarray  # steps
    buckets: np.ndarray  # buckets x steps, cumulative


def load_factors(rng: np.random.Generator, steps: int) -> np.ndarray:
    log = np.empty(steps)
    log[0] = rng.normal(0, 0.15)
    for i in range(1, steps):
        log[i] = 0.7 * log[i - 1] + rng.normal(0, 0.15 * math.sqrt(1 - 0.49))
    return np.exp(log)


def side(rng: np.random.Generator, load: np.ndarray, step: float, *, error_rate: float = ERROR_RATE,
         slower: np.ndarray | float = 1.0) -> SideData:
    steps = load.size
    slow = np.broadcast_to(np.asarray(slower, dtype=np.float64), (steps,))
    requests = rng.poisson(RPS * step, steps).astype(np.float64)
    errors = rng.binomial(requests.astype(np.int64), error_rate).astype(np.float64)
    buckets = np.empty((BUCKETS.size, steps))
    for i in range(steps):
        latency = rng.lognormal(math.log(MEDIAN * load[i] * slow[i]), SIGMA, int(requests[i]))
        buckets[:, i] = (latency[None, :] <= BUCKETS[:, None]).sum(axis=1)
    return SideData(requests, errors, buckets)


class Synthetic:
    """Answers the default checks' range queries from two ``SideData``, as Prometheus would."""

    def __init__(self, preview: SideData, active: SideData) -> None:
        self.sides = {"preview": preview, "active": active}

    def query_ranges(self, queries: Sequence[str], *, start: float, end: float,
                     step: float) -> list[list[Series]]:
        grid = start + step * np.arange(int((end - start) // step) + 1, dtype=np.float64)
        return [self._answer(q, grid, step) for q in queries]

    def _answer(self, query: str, grid: np.ndarray, step: float) -> list[Series]:
        data = self.sides["preview" if 'version="1.1.0"' in query else "active"]
        labels = {"service": "service-b"}
        if "histogram_quantile(0.95" in query:
            p95 = np.array([bucket_quantile(0.95, BUCKETS, data.buckets[:, i])
                            for i in range(grid.size)])
            return [Series(labels, grid, p95)]
        if "_bucket" in query:
            return [Series({**labels, "le": "+Inf" if math.isinf(le) else f"{le:g}"}, grid,
                           data.buckets[i]) for i, le in enumerate(BUCKETS)]
        if 'code=~"5.."' in query:
            return [Series(labels, grid, data.errors)]
        if "bgh_requests_total" in query:
            return [Series(labels, grid, data.requests)]
        raise SystemExit(f"no synthetic answer for {query}")


Scenario = Callable[[np.random.Generator, int, float], tuple[SideData, SideData]]


def aa_same_load(rng: np.random.Generator, steps: int, step: float) -> tuple[SideData, SideData]:
    load = load_factors(rng, steps)
    return side(rng, load, step), side(rng, load, step)


def aa_other_window(rng: np.random.Generator, steps: int,
                    step: float) -> tuple[SideData, SideData]:
    return side(rng, load_factors(rng, steps), step), side(rng, load_factors(rng, steps), step)


def errors_doubled(rng: np.random.Generator, steps: int, step: float) -> tuple[SideData, SideData]:
    load = load_factors(rng, steps)
    return side(rng, load, step, error_rate=2 * ERROR_RATE), side(rng, load, step)


def p95_up_half(rng: np.random.Generator, steps: int, step: float) -> tuple[SideData, SideData]:
    load = load_factors(rng, steps)
    return side(rng, load, step, slower=1.5), side(rng, load, step)


def tail_30(rng: np.random.Generator, steps: int, step: float) -> tuple[SideData, SideData]:
    load = load_factors(rng, steps)
    slow = np.ones(steps)
    slow[rng.choice(steps, size=round(0.3 * steps), replace=False)] = 3.0
    return side(rng, load, step, slower=slow), side(rng, load, step)


SCENARIOS: dict[str, tuple[Scenario, bool]] = {
    "A/A, same load": (aa_same_load, False),
    "A/A, other window": (aa_other_window, False),
    "2x error rate": (errors_doubled, True),
    "+50% p95": (p95_up_half, True),
    "tail in 30% of steps": (tail_30, True),
}


def run(checks: CheckSet, trials: int,
        seed: int) -> tuple[dict[str, dict[str, float]], list[float]]:
    preview, active = Side.parse("preview", "1.1.0"), Side.parse("active", "1.0.0")
    steps = int(WINDOW // checks.step) + 1
    rates: dict[str, dict[str, float]] = {}
    elapsed: list[float] = []
    for name, (scenario, _) in SCENARIOS.items():
        rng = np.random.default_rng(seed)
        failed = {c.name: 0 for c in checks.checks if c.applies_to("service-b")}
        significant = {c.name: 0 for c in checks.checks if c.applies_to("service-b")}
        failed["verdict"] = 0
        inconclusive = 0
        for _ in range(trials):
            source = Synthetic(*scenario(rng, steps, checks.step))
            verdict = judge(source, checks, preview=preview, active=active, window=WINDOW,
                            service="service-b", end=END)
            elapsed.append(verdict.elapsed)
            for m in verdict.measurements:
                failed[m.check.name] += m.phase is Phase.FAILED
                p = None if m.worst is None else m.worst.assessment.p_value
                significant[m.check.name] += p is not None and p < checks.alpha
            failed["verdict"] += verdict.phase is Phase.FAILED
            inconclusive += verdict.phase is Phase.INCONCLUSIVE
        rates[name] = {k: v / trials for k, v in failed.items()}
        rates[name]["inconclusive"] = inconclusive / trials
        rates[name].update({f"p:{k}": v / trials for k, v in significant.items()})
    return rates, elapsed


REAL_WINDOW = 40.0  # seconds: ten 4 s steps


def real_aa(minutes: float) -> tuple[dict[str, int], int, str]:
    """Judge real A/A data: phase counts over every window, the window count, the setup."""
    import tempfile

    from analysis.prometheus import Prometheus
    from tests.support.metrics import (
        Spec,
        Traffic,
        scaled_checks,
        start_prometheus,
        start_stack,
        wait_for_scrapes,
    )
    from tests.support.services import Services, build_services

    counts: dict[str, int] = {str(p): 0 for p in Phase}
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        run_dir = Path(tmp)
        (run_dir / "bin").mkdir()
        services = Services(build_services(run_dir / "bin"), run_dir)
        specs = (Spec("1.0.0", "7d9f8c6b5"), Spec("1.1.0", "5c8f9d7b4"))
        stacks = [start_stack(services, spec) for spec in specs]
        traffic = [Traffic.to(stack) for stack in stacks]
        for t in traffic:
            t.start()
        prometheus, url = start_prometheus(run_dir, stacks)
        try:
            checks = load_checks(scaled_checks(run_dir))
            wait_for_scrapes(url, seconds=30, within=120)
            began = time.time()
            # Accumulating data for the replay: the one wait here that is time itself.
            time.sleep(minutes * 60)
            ends = np.arange(began + REAL_WINDOW, time.time() - 5, REAL_WINDOW)
            new, old = Side.parse("preview", "1.1.0"), Side.parse("active", "1.0.0")
            ways = [(new, old), (Side("preview", old.label, old.value),
                                 Side("active", new.label, new.value))]
            with Prometheus(url, timeout=10) as source:
                for end in ends:
                    for preview, active in ways:
                        verdict = judge(source, checks, preview=preview, active=active,
                                        window=REAL_WINDOW, end=float(end))
                        counts[str(verdict.phase)] += 1
            requests = sum(sum(t.codes.values()) for t in traffic)
        finally:
            for t in traffic:
                t.stop()
            prometheus.stop()
            services.stop_all()
    setup = (f"{len(ends)} windows of {REAL_WINDOW:g} s over {minutes:g} min, judged both ways; "
             f"{requests:,} requests to the two gateways")
    return counts, 2 * len(ends), setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--real", type=float, default=0.0, metavar="MINUTES",
                        help="also replay real A/A data gathered for MINUTES")
    args = parser.parse_args()
    checks = load_checks()
    started = time.monotonic()
    rates, elapsed = run(checks, args.trials, args.seed)
    took = time.monotonic() - started
    names = [c.name for c in checks.checks if c.applies_to("service-b")]
    header = "| scenario | " + " | ".join(f"`{n}` Failed" for n in names) + \
        " | verdict Failed | verdict Inconclusive | goal |"
    lines = [header, "|" + "---|" * (len(names) + 4)]
    for scenario, (_, shifted) in SCENARIOS.items():
        r = rates[scenario]
        if shifted:
            goal = f"detection ≥ 90%: {'met' if r['verdict'] >= 0.9 else '**missed**'}"
        else:
            goal = f"false Failed ≤ 6%: {'met' if r['verdict'] <= 0.06 else '**missed**'}"
        cells = " | ".join(f"{r[n]:.1%}" for n in names)
        lines.append(f"| {scenario} | {cells} | {r['verdict']:.1%} | {r['inconclusive']:.1%} "
                     f"| {goal} |")
    tested = [n for n in names if n != "request-volume"]
    p_lines = ["| scenario | " + " | ".join(f"`{n}` p < alpha" for n in tested) + " |",
               "|" + "---|" * (len(tested) + 1)]
    for scenario in SCENARIOS:
        p_lines.append(f"| {scenario} | "
                       + " | ".join(f"{rates[scenario]['p:' + n]:.1%}" for n in tested) + " |")
    p95 = float(np.percentile(elapsed, 95))
    real = ""
    real_arg = f" --real {args.real:g}" if args.real else ""
    if args.real > 0:
        counts, judged, setup = real_aa(args.real)
        failed = counts["Failed"] / judged
        real = (
            f"\nReal A/A data (`--real {args.real:g}`): two identical demo systems under the "
            f"same load, Debian's Prometheus scraping each second, the scaled checks (4 s steps "
            f"and rate window) over {setup}: "
            + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            + f" of {judged}; false Failed {failed:.1%} "
            f"(goal ≤ 6%: {'met' if failed <= 0.06 else '**missed**'}).\n"
        )
    body = f"""
Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by
`python benchmarks/bench_calibration.py --trials {args.trials} --seed {args.seed}{real_arg}` on
{os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}, in
{took:.0f} s. {args.trials} trials per scenario; the default checks (`analysis/checks.yaml`:
{checks.step:g} s steps, rate window {checks.rate_window}, alpha {checks.alpha:g}) over a
{WINDOW / 60:g}-minute window, judged by `analysis.judge.judge` with the Prometheus answers
computed in the benchmark (see its docstring: {RPS:g} rps per side, {ERROR_RATE:.0%} errors,
log-normal latency with a load factor both sides share). The data is simulated, not replayed
from a running system; the real A/A replay, when asked for, follows the tables.

{chr(10).join(lines)}

A check is Failed only when its test is significant **and** the effect passes the check's
allowances (see docs/analysis.md, "Defaults and Kayenta"). How often the tests alone were
significant at alpha {checks.alpha:g} (on A/A data this is the tests' own false positive rate,
nominal {checks.alpha:.0%}):

{chr(10).join(p_lines)}

Judge time per verdict over these in-memory answers (statistics only, 4 checks): p50
{np.median(elapsed) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {max(elapsed) * 1000:.1f} ms
(goal p95 ≤ 500 ms: {'met' if p95 <= 0.5 else '**missed**'}).
{real}"""
    print(body)
    write_section(HEADING, body)


if __name__ == "__main__":
    main()
