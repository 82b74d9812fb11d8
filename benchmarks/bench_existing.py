"""The runbook suite on ``--bgh-target existing``, twice in a row against one namespace.

    .venv/bin/python benchmarks/bench_existing.py [--runs 2] [-k EXPR]

Needs the local target up (`bgh up`), which plays the long-lived cluster: the demo system is
deployed once into a namespace labelled ``bgh.dev/testing=true``, then `pytest tests/runbooks
--bgh-target existing` runs against it ``--runs`` times, each run its own process. Every
scenario that changes the namespace is restored afterwards; the restore time of each comes from
the JUnit property ``bgh_restore_seconds``. A run is green when pytest exits 0. Results go to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness import builds  # noqa: E402
from harness.delivery import DirectApply  # noqa: E402
from harness.settings import load_settings  # noqa: E402
from harness.targets import target_for  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402


def restore_seconds(junit: Path) -> list[float]:
    found = []
    for prop in ElementTree.parse(junit).iter("property"):
        if prop.get("name") == "bgh_restore_seconds":
            found.append(float(prop.get("value") or "nan"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("-k", dest="select", default=None)
    args = parser.parse_args()
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="bgh-bench-existing-"))
    shutil.copytree(ROOT / "gitops", work / "gitops")
    settings = load_settings(namespace=namespace, gitops_dir=work / "gitops")
    target = LocalTarget(settings)
    # The long-lived cluster's own version file names its analysis server and Prometheus, as a
    # real cluster's names its in-cluster ones: here, the ports this local target picked.
    target.name_analysis_urls(work / "gitops", "qa")
    kubectl = target.kubectl()
    started = time.monotonic()
    DirectApply(target_for(settings)).deploy("qa")
    kubectl.run("label", "namespace", namespace, "bgh.dev/testing=true")
    print(f"deployed into {namespace} in {time.monotonic() - started:.0f}s", flush=True)
    env = {
        **os.environ,
        "BGH_KUBECONFIG": str(target.kubeconfig.resolve()),
        "BGH_GITOPS_DIR": str(work / "gitops"),
        "BGH_GATEWAY_URL": target.service_url(namespace, "gateway-a", 3000),
        "BGH_GATEWAY_PREVIEW_URL": target.service_url(namespace, "gateway-a-preview", 3000),
        "PATH": f"{builds.KUBERNETES.install_dir(settings.cache_dir)}:{os.environ['PATH']}",
    }
    rows, restores, green = [], [], 0
    try:
        for run in range(1, args.runs + 1):
            junit = work / f"run-{run}.xml"
            argv = [
                sys.executable,
                "-m",
                "pytest",
                "tests/runbooks",
                "-q",
                "-p",
                "no:cacheprovider",
            ]
            argv += [
                "--bgh-target",
                "existing",
                "--bgh-namespace",
                namespace,
                f"--junitxml={junit}",
            ]
            if args.select:
                argv += ["-k", args.select]
            began = time.monotonic()
            result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
            seconds = time.monotonic() - began
            last = (result.stdout.strip().splitlines() or ["no output"])[-1].strip("= ")
            times = restore_seconds(junit) if junit.exists() else []
            restores += times
            green += result.returncode == 0
            verdict = "green" if result.returncode == 0 else "RED"
            rows.append(f"| {run} | {verdict} | {last} | {seconds:.0f} s | {len(times)} |")
            print(rows[-1], flush=True)
            if result.returncode != 0:
                print(result.stdout[-6000:], flush=True)
                break  # a red run: the next one would start from whatever it left
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false")
    if len(restores) >= 2:
        cuts = statistics.quantiles(restores, n=20, method="inclusive")
        spread = (
            f"p50 {statistics.median(restores):.1f} s, p95 {cuts[18]:.1f} s, "
            f"max {max(restores):.1f} s over {len(restores)} restores"
        )
    else:
        spread = f"too few restores to give a p50/p95 ({len(restores)})"
    body = (
        f"""
`python benchmarks/bench_existing.py --runs {args.runs}` on {platform.machine()},
{os.cpu_count()} cores, the local target playing the long-lived cluster: the demo system deployed
once into a namespace labelled `bgh.dev/testing=true`, then `pytest tests/runbooks
--bgh-target existing --bgh-namespace <it>` {args.runs} times in a row against it
({"-k " + args.select if args.select else "every runbook"}). {green}/{args.runs} runs green.

| run | result | pytest | time | scenarios restored |
|---|---|---|---|---|
"""
        + "\n".join(rows)
        + f"""

Restore time per scenario that changed the namespace (abort / undo / promote back to the recorded
ReplicaSets, wait for Healthy, verify hashes, selectors, images, routes): {spread}.
"""
    )
    write_section("Runbooks on a long-lived namespace (existing target)", body)
    if green < args.runs:
        sys.exit(f"{args.runs - green} of {args.runs} runs not green: see the run above")


if __name__ == "__main__":
    main()
