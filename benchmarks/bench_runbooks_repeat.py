"""The runbook suite N times in a row on the local target: how many runs were green, how long each.

    .venv/bin/python benchmarks/bench_runbooks_repeat.py [--runs 10]

Each run is `pytest tests/runbooks` in a process of its own (every scenario deploys into a fresh
namespace). A run is green when pytest exits 0. Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    rows = []
    green = 0
    for run in range(1, args.runs + 1):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/runbooks", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.monotonic() - started
        last = (result.stdout.strip().splitlines() or ["no output"])[-1]
        counts = re.sub(r"=+", "", last).strip()
        green += result.returncode == 0
        rows.append(f"| {run} | {'green' if result.returncode == 0 else 'RED'} | {counts} | {seconds:.0f} s |")
        print(rows[-1], flush=True)
    body = f"""
`python benchmarks/bench_runbooks_repeat.py --runs {args.runs}` on {platform.machine()},
{os.cpu_count()} cores: {green}/{args.runs} runs green.

| run | result | pytest | time |
|---|---|---|---|
""" + "\n".join(rows)
    write_section("Runbook suite, repeated", body)


if __name__ == "__main__":
    main()
