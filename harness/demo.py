"""`bgh demo` (`make demo`): the main job on the local target, end to end, with progress.

1. Bring the local target up, building what the cache lacks (a second run reuses the cache).
2. Deploy the demo system from gitops/ (QA) into the settings' namespace and show what gateway A
   answers through its active and preview Services: real binaries, behind the real selectors.
3. Run every runbook in features/ (each in a namespace of its own) and print the summary and
   where the JUnit and HTML reports are.

Returns the runbooks' exit code (0: every scenario passed).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.delivery import DirectApply
from harness.runner import run_runbooks
from harness.target import Target

Report = Callable[[str], None]


def run(target: Target, report: Report) -> int:
    target.up()
    DirectApply(target, report=report).deploy("qa")
    gateway = target.gateway()
    for answer in gateway.read_versions().values():
        report(f"gateway A through {answer.describe()}")
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
