"""`bgh demo` (`make demo`): the main job on the local target, end to end, with progress.

1. Bring the local target up, building what the cache lacks (a second run reuses the cache).
2. Deploy the demo system from gitops/ (QA) into the settings' namespace, wait (with the probe
   deadline) until gateway A answers through both its active and its preview Service, and show
   the two answers side by side: real binaries, behind the real selectors.
3. Run every runbook in features/ (each in a namespace of its own) and print the summary and
   where the JUnit and HTML reports are.

Returns the runbooks' exit code (0: every scenario passed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from harness.delivery import DirectApply
from harness.probes import SERVICES, Answer, Side
from harness.runner import run_runbooks
from harness.target import Target

Report = Callable[[str], None]


def run(target: Target, report: Report) -> int:
    target.up()
    DirectApply(target, report=report).deploy("qa")
    gateway = target.gateway()
    report("waiting for gateway A to answer through its active and preview Services")
    answers = gateway.wait_for_answers()
    for line in side_by_side(answers):
        report(line)
    for side, answer in answers.items():
        report(f"gateway A's page through {side}: {answer.url.removesuffix('versions')}")
    report("running the runbooks in features/ (each scenario in a namespace of its own)")
    summary = run_runbooks(target)
    for line in summary.lines():
        report(line)
    report(
        f"the local target is still up with the demo system in namespace "
        f"{target.settings.namespace} "
        "(`bgh status`, `bgh down`)"
    )
    return summary.exit_code


def side_by_side(answers: Mapping[Side, Answer]) -> list[str]:
    """Gateway A's answers through each side as columns: one row per service, version and pod."""
    sides = list(answers)

    def cell(answer: Answer, service: str) -> str:
        if service in answer.errors:
            return f"failed: {answer.errors[service]}"
        version = answer.version(service) or "-"
        pod = answer.pods.get(service)
        return f"{version} ({pod})" if pod else version

    rows = [["", *(f"through {side}" for side in sides)]]
    rows += [[s, *(cell(answers[side], s) for side in sides)] for s in SERVICES.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
