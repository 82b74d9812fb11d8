"""How long a wait takes to fail against an API server that accepts and never answers.

    .venv/bin/python benchmarks/bench_silent_api.py [--trials 5]

The server is the fake of tests/support/fake_api.py (a real kube-apiserver cannot be made to
hang on purpose); the client, its timeouts and ``wait_for`` are the harness's own. For each
deadline, each trial waits for a Rollout that never answers and records the time until
``WaitTimeout``. The goal: deadline + at most 1 s. Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness.errors import WaitTimeout  # noqa: E402
from harness.kube import Kube  # noqa: E402
from tests.support.fake_api import kubeconfig_for, silent_server, wait_for_rollout  # noqa: E402

DEADLINES = (1.0, 2.0, 5.0, 10.0)


def one_wait(kube: Kube, within: float) -> float:
    started = time.monotonic()
    try:
        wait_for_rollout(kube, within=within)
    except WaitTimeout:
        return time.monotonic() - started
    raise SystemExit("the silent server answered: the benchmark measured nothing")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    rows = []
    worst = 0.0
    with silent_server() as port, tempfile.TemporaryDirectory() as scratch:
        kube = Kube(kubeconfig=kubeconfig_for(Path(scratch), port), context=None, namespace="b")
        for within in DEADLINES:
            took = [one_wait(kube, within) for _ in range(args.trials)]
            over = [t - within for t in took]
            worst = max(worst, *over)
            rows.append(
                f"| {within:.0f} s | {statistics.median(took):.3f} s | {max(took):.3f} s | "
                f"{max(over):+.3f} s |"
            )
            print(rows[-1])
    verdict = "met" if worst <= 1.0 else "NOT met"
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by
`python benchmarks/bench_silent_api.py --trials {args.trials}` on {platform.machine()}, Python
{platform.python_version()}. The API server accepts each connection and never answers (a fake:
a real one cannot be made to); every read of the wait may block only for the time it has left.
Goal: fail at the deadline + at most 1 s: **{verdict}** (worst overshoot {worst:+.3f} s).

| deadline | median time to WaitTimeout | slowest | worst overshoot |
|---|---|---|---|
""" + "\n".join(rows)
    write_section("A wait against a silent API server (issue: Hardening)", body)


if __name__ == "__main__":
    main()
