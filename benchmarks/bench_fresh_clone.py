"""Time from a fresh clone to `make demo` finished, as a newcomer would run it.

Clones this checkout's HEAD into a temporary directory and runs `make demo` there: Debian
packages checked, uv, the Python environment, the demo services built, the local target up, the
demo system deployed and probed, every runbook run. "Warm" keeps the machine's caches (uv's,
Go's, and the control-plane binaries in ~/.cache/bgh); "cold" points BGH_CACHE_DIR at an empty
directory, so the control plane is built from the module proxy (uv's and Go's caches stay).

Starts the local target: run it under the machine's lock, e.g.
    flock /tmp/bgh-cluster.lock .venv/bin/python -m benchmarks.bench_fresh_clone [--cold]
Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.results import write_section

ROOT = Path(__file__).resolve().parents[1]


def run_once(*, cold: bool) -> tuple[float, int, str]:
    """Seconds from `git clone` to `make demo`'s exit, its exit code and the runbooks' line."""
    with tempfile.TemporaryDirectory(prefix="bgh-fresh-") as scratch:
        clone = Path(scratch) / "clone"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BGH_", "VIRTUAL_ENV"))}
        if cold:
            env["BGH_CACHE_DIR"] = str(Path(scratch) / "cache")
        started = time.monotonic()
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        log = Path(scratch) / "make-demo.log"
        with log.open("w") as out:
            code = subprocess.run(
                ["make", "demo"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        seconds = time.monotonic() - started
        text = log.read_text(errors="replace")
        found = re.findall(r"runbooks: [^\n]*", text)
        subprocess.run([str(clone / ".venv" / "bin" / "bgh"), "down"], cwd=clone, env=env)
        if code != 0:
            print(text[-4000:])
        return seconds, code, found[-1] if found else "(no runbook summary)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cold", action="store_true", help="also with an empty bgh cache"
    )
    parser.add_argument(
        "--only-cold", action="store_true", help="only with an empty bgh cache (no warm run)"
    )
    args = parser.parse_args()
    rows = []
    for cold in [True] if args.only_cold else [False, True] if args.cold else [False]:
        seconds, code, runbooks = run_once(cold=cold)
        rows.append(f"| {'cold' if cold else 'warm'} | {seconds:.0f} s | {code} | {runbooks} |")
        print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"`benchmarks/bench_fresh_clone.py` on {os.cpu_count()} cores ({platform.machine()}):",
            "`git clone` of HEAD, then `make demo` in the clone (packages checked, uv, venv,",
            "services built, local target up, demo deployed and probed, every runbook).",
            "",
            "| caches | clone to `make demo` done | exit | runbooks |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    write_section("Fresh clone to make demo", body)


if __name__ == "__main__":
    main()
