"""The RBAC matrix: each runbook run as each of the harness's identities, pass or deny, measured.

    flock /tmp/bgh-cluster.lock .venv/bin/python benchmarks/bench_rbac.py

Runs tests/cluster/test_rbac.py (which asserts the matrix) with a JUnit report, and turns the
outcome of every scenario each test recorded (property ``rbac``) into the table of
benchmarks/RESULTS.md: per runbook and identity, how many scenarios passed, were refused (skipped
with the reason, or denied by the API server) or failed, and how long they took.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402


def main() -> None:
    report = ROOT / ".artifacts" / "bench_rbac.xml"
    report.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "tests/cluster/test_rbac.py", "-q",
            "-p", "no:cacheprovider", f"--junitxml={report}", "-o", "junit_family=legacy",
        ],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.monotonic() - started
    print(result.stdout[-3000:])
    cells: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    denials: dict[tuple[str, str], list[str]] = defaultdict(list)
    tests = []
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        tests.append((case.get("name", ""), "failed" if failed else "passed"))
        for prop in case.iter("property"):
            if prop.get("name") != "rbac":
                continue
            value = json.loads(prop.get("value", "null"))
            if isinstance(value, dict):  # what an identity was refused outside a runbook
                denials[(str(value["identity"]), str(value["by"]))] += value["refused"]
                continue
            for outcome in value:
                cells[(outcome["feature"], outcome["identity"])].append(outcome)
    rows = ["| runbook | identity | scenarios | result | seconds (sum) |", "|---|---|---|---|---|"]
    for (feature, identity), outcomes in sorted(cells.items()):
        counts: dict[str, int] = defaultdict(int)
        for outcome in outcomes:
            counts[str(outcome["result"])] += 1
        verdict = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
        if counts.get("skipped") and "cannot read namespace" in str(outcomes[0]["reason"]):
            verdict = f"**deny** ({verdict}: cannot read the namespace's testing label)"
        elif set(counts) == {"passed"}:
            verdict = f"**pass** ({verdict})"
        seconds = sum(float(str(o["seconds"])) for o in outcomes)
        rows.append(f"| {feature} | {identity} | {len(outcomes)} | {verdict} | {seconds:.1f} |")
    for (identity, by), refused in sorted(denials.items()):
        rows.append(f"| {', '.join(refused)} | {identity} | - | **deny** ({by}) | - |")
    failed_tests = [name for name, state in tests if state == "failed"]
    failures = f" (failed: {', '.join(failed_tests)})" if failed_tests else ""
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by `python benchmarks/bench_rbac.py`
on {platform.machine()}, 2 cores, against the local target (kube-apiserver v1.34.12, RBAC and
admission on). Every request of a runbook impersonates the identity (`BGH_IMPERSONATE`), on the
runbook plugin's `existing` path; each mutating scenario runs in a namespace of its own where the
cluster's owner deployed the demo system, with gitops/rbac/harness-roles.yaml bound there and
gitops/rbac/rollout-edits-policy.yaml in force.

{chr(10).join(rows)}

Not run by identity: gitops_bump (@gitops), which the local target's Argo CD delivers from a Git
repository on this machine; the plugin's existing-target path, the one that takes an identity,
does not set that up.

tests/cluster/test_rbac.py: {len(tests) - len(failed_tests)} of {len(tests)} tests passed{failures},
{wall:.0f} s in all.
"""
    write_section("RBAC matrix", body)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
