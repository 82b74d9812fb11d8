"""`bgh up` warm, as a user runs it: `bgh down`, then `bgh up` with every build cached, N times.

    .venv/bin/python benchmarks/bench_up.py [--runs 5]

Each `bgh up` is its own process, so the time includes the command's start-up imports. The
per-component figures are the ones `bgh up` reports ("prometheus: ready in 0.4s", ...), and the
moment (since the command began) each component was ready, which shows what ran at once. Run it
in a network namespace of its own: it takes the local target down. Results go to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402

BGH = ROOT / ".venv" / "bin" / "bgh"
# "   8.7s CRDs of Argo Rollouts ...: established in 3.7s": when, which component, how long.
LINE = re.compile(r"^\s*(?P<at>[\d.]+)s (?P<what>.*?\bin (?P<seconds>[\d.]+)s\b)")
COMPONENTS = {
    "control plane": "control plane (etcd, kube-apiserver, controller manager, scheduler, kwok)",
    "nodes": "kwok nodes Ready",
    "CRDs of Istio v": "Istio's CRDs (VirtualService, DestinationRule, Gateway) established",
    "CRDs of Argo Rollouts v": "Argo Rollouts' CRDs established",
    "rollouts-controller": "Rollouts controller healthy",
    "prometheus": "Prometheus ready",
    "analysis server": "analysis server healthy",
    "data plane": "data plane watching",
    "local target ready": "`bgh up` as it reports itself",
}


def one_up() -> tuple[float, dict[str, tuple[float, float]]]:
    """Wall seconds of `bgh up`, and {component: (ready at, took)} from its report."""
    subprocess.run([str(BGH), "down"], cwd=ROOT, capture_output=True, check=True)
    env = {**os.environ, "COLUMNS": "400"}  # one report line per line
    started = time.monotonic()
    result = subprocess.run(
        [str(BGH), "up"], cwd=ROOT, capture_output=True, text=True, check=True, env=env
    )
    wall = time.monotonic() - started
    seen: dict[str, tuple[float, float]] = {}
    for line in (result.stdout + result.stderr).splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        for prefix in COMPONENTS:
            if match["what"].startswith(prefix):
                seen[prefix] = (float(match["at"]), float(match["seconds"]))
    missing = set(COMPONENTS) - set(seen)
    if missing:
        raise SystemExit(f"bgh up did not report {sorted(missing)}:\n{result.stderr}")
    return wall, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    one_up()  # the first may rebuild the demo services or restart a changed server
    load_before = os.getloadavg()
    runs = [one_up() for _ in range(args.runs)]
    walls = [wall for wall, _ in runs]
    rows = []
    for prefix, label in COMPONENTS.items():
        took = statistics.median(seen[prefix][1] for _, seen in runs)
        at = statistics.median(seen[prefix][0] for _, seen in runs)
        rows.append(f"| {label} | {took:.1f} s | {at:.1f} s |")
    subprocess.run([str(BGH), "down"], cwd=ROOT, capture_output=True, check=True)
    load = os.getloadavg()
    body = f"""Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python benchmarks/bench_up.py --runs {args.runs}` on {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, in a network namespace of its own; load average (1 min) {load_before[0]:.1f} before the runs and {load[0]:.1f} at the end (the CPUs are shared).

| `bgh up`, warm (every build cached, target down before) | median of {args.runs} | runs |
|---|---|---|
| wall time of the command, start-up imports included | **{statistics.median(walls):.1f} s** (min {min(walls):.1f} s) | {", ".join(f"{w:.1f}" for w in walls)} |

| component (median of {args.runs}) | took | ready at (since `bgh up` began) |
|---|---|---|
{chr(10).join(rows)}
"""
    write_section("bgh up, warm (issue #22)", body)
    print(body)


if __name__ == "__main__":
    main()
