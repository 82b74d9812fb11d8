"""The local target's figures: cold build time and memory, warm `bgh up`, `bgh down`, smoke test.

    .venv/bin/python benchmarks/bench_local_target.py [--cold] [--runs 3]

--cold builds every component into empty Go module and build caches (a fresh machine), sampling
the machine's used memory once a second; peak memory is the highest sample above the baseline
taken just before. Without --cold only the warm figures are measured. Results go to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness import builds  # noqa: E402
from harness.settings import load_settings  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402


def used_memory_mib() -> float:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = int(value.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) / 1024


def cold_build() -> tuple[dict[str, float], float, float]:
    """Seconds per component, total seconds, and peak used memory above the baseline (MiB)."""
    baseline = used_memory_mib()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(1.0):
            peak = max(peak, used_memory_mib())

    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bgh-cold-") as tmp:
        os.environ["GOMODCACHE"] = f"{tmp}/gomodcache"
        os.environ["GOCACHE"] = f"{tmp}/gocache"
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        for component in builds.COMPONENTS:
            built = builds.ensure_built(
                component, cache_dir=Path(tmp) / "bgh", report=lambda line: print(line)
            )
            seconds[component.name] = built.seconds
        total = time.monotonic() - started
        done.set()
        # The module cache is read-only on disk; make it removable.
        subprocess.run(["chmod", "-R", "u+w", tmp], check=False)
    return seconds, total, peak - baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    target = LocalTarget(settings)
    target.build()

    cold_rows = ""
    if args.cold:
        seconds, total, peak = cold_build()
        cold_rows = "\n".join(
            f"| cold build: {name} | {value:.0f} s |" for name, value in seconds.items()
        )
        cold_rows += (
            f"\n| cold build: all components | **{total / 60:.1f} min** |"
            f"\n| cold build: peak memory above baseline | **{peak / 1024:.1f} GiB** |\n"
        )

    ups, downs = [], []
    for _ in range(args.runs):
        downs.append(target.down())
        ups.append(target.up())
    smoke_started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/cluster/test_local_target_smoke.py"],
        cwd=ROOT, check=True,
    )  # fmt: skip
    smoke = time.monotonic() - smoke_started

    body = f"""Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python benchmarks/bench_local_target.py{' --cold' if args.cold else ''}` on {os.cpu_count()} CPUs, {platform.system()} {platform.release()}.

| measurement | result |
|---|---|
{cold_rows}| `bgh up` to ready, warm cache (median of {args.runs}) | **{statistics.median(ups):.1f} s** (goal ≤ 20 s) |
| `bgh down` (median of {args.runs}) | **{statistics.median(downs):.1f} s** |
| smoke test wall time (pytest process, target already up) | **{smoke:.1f} s** |
"""
    write_section("Local target (issue: Docker-free local target)", body)
    print(body)


if __name__ == "__main__":
    main()
