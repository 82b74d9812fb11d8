"""The isolation invariants per runbook: answers checked per side, violations, switch lag.

    .venv/bin/python benchmarks/bench_provenance.py [-k EXPR]
    .venv/bin/python benchmarks/bench_provenance.py --figures FILE --outcome "LAST PYTEST LINE"

Runs the mutating runbooks once on the local target with ``--bgh-provenance-figures``: every
scenario's two background streams (users through active, testers through preview, 5 requests/s
each) are judged at its end (docs/provenance.md) and its figures appended to a JSON-lines file.
Per runbook: the answers checked per side, the violations (goal 0), the user answers tolerated
on connections opened before a switch, and the time from the active Service's selector switch
(as the watch saw it) to the end of the first user answer from the new ReplicaSet, p50/p95 over
every switch in the runbook. Results go to benchmarks/RESULTS.md. With ``--figures``, nothing
is run: the file a run of the runbooks wrote (``pytest tests/runbooks --bgh-provenance-figures
FILE``, or ``PYTEST_ADDOPTS=... make test``) is summed up instead, every runbook that recorded
figures included; ``--note`` then says when the run was made and at what load (a run made here
states both itself).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness.provenance import percentile  # noqa: E402

HEADER = (
    "| runbook | scenarios | user answers checked | preview answers checked | violations "
    "| drained | propagated | switch → first user answer from new RS, p50 / p95 |\n"
    "|---|---|---|---|---|---|---|---|"
)
MUTATING = "not analysis and not release_guide and not gitops and not readonly"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="pytest -k expression to narrow the runbooks")
    parser.add_argument("-m", default=MUTATING, help=f"pytest -m expression (default: {MUTATING})")
    parser.add_argument("--figures", type=Path, help="sum up this file instead of running")
    parser.add_argument("--outcome", default="", help="with --figures: the run's pytest outcome")
    parser.add_argument(
        "--note",
        default="",
        help="with --figures: when the run was made and the load average during it",
    )
    args = parser.parse_args()
    if args.figures:
        lines = args.figures.read_text().splitlines()
        said = args.outcome or "not given"
        how = (
            "`python benchmarks/bench_provenance.py --figures FILE` over a run of every runbook "
            "(`pytest tests/runbooks --bgh-provenance-figures FILE`),"
        )
        when = args.note or "when and at what load: not given"
    else:
        began, load_before = time.gmtime(), os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as scratch:
            figures_file = Path(scratch) / "figures.jsonl"
            argv = [sys.executable, "-m", "pytest", "tests/runbooks", "-q"]
            argv += ["-p", "no:cacheprovider", "-m", args.m]
            argv += ["--bgh-provenance-figures", str(figures_file)]
            if args.k:
                argv += ["-k", args.k]
            result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
            print(result.stdout[-3000:], flush=True)
            lines = figures_file.read_text().splitlines() if figures_file.exists() else []
        said = (result.stdout.strip().splitlines() or ["no output"])[-1].strip("= ")
        how = "`python benchmarks/bench_provenance.py`"
        when = (
            f"run {time.strftime('%Y-%m-%d %H:%M', began)} to "
            f"{time.strftime('%H:%M UTC', time.gmtime())}, load average (1 min) "
            f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        )
    scenarios = [json.loads(line) for line in lines]
    if not scenarios:
        raise SystemExit(f"no scenario recorded figures; pytest said: {said}")
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "scenarios": 0,
            "active": 0,
            "preview": 0,
            "violations": 0,
            "drained": 0,
            "propagated": 0,
            "lags": [],
        }
    )
    for s in scenarios:
        row = per[s["feature"]]
        row["scenarios"] += 1
        row["active"] += s["checked"].get("active", 0)
        row["preview"] += s["checked"].get("preview", 0)
        row["violations"] += s["violations"]
        row["drained"] += s["drained"]
        row["propagated"] += s.get("propagated", 0)
        row["lags"] += s["switch_lags_s"]
    rows = []
    for feature, row in sorted(per.items()):
        lags = row["lags"]
        lag = (
            f"{percentile(lags, 0.5) * 1000:.0f} / {percentile(lags, 0.95) * 1000:.0f} ms "
            f"(n={len(lags)})"
            if lags
            else "no switch"
        )
        rows.append(
            f"| {feature} | {row['scenarios']} | {row['active']} | {row['preview']} | "
            f"{row['violations']} | {row['drained']} | {row['propagated']} | {lag} |"
        )
        print(rows[-1], flush=True)
    body = f"""
{how} on {platform.machine()}, {os.cpu_count()} cores, local
target; {when}; pytest: {said}. Answers are those of the two background streams (5 requests/s per
side, fresh connections); "drained" are user answers from the old active on a connection gateway A
opened before the switch, "propagated" on one it opened after the switch while its node still
routed new connections to the old active (both tolerated within scaleDownDelaySeconds,
docs/provenance.md); the lag runs from the active Service's selector switch, as
the watch saw it, to the end of the first user answer from the new ReplicaSet.

{HEADER}
""" + "\n".join(rows)
    write_section("Isolation invariants per runbook", body)


if __name__ == "__main__":
    main()
