"""What the kubelet would write to a pod's status when its container's readiness changes.

kwok marks every pod Running and Ready once, when it is scheduled; after that nothing in the local
target's API would notice that the pod's process crashed or stopped answering its readiness
probe, and the Rollouts controller would count a crash-looping preview as available. The data
plane runs the processes, so it writes what it sees back, as the kubelet does
(pkg/kubelet/status/generate.go, ``GeneratePodReadyCondition``): the ``Ready`` and
``ContainersReady`` conditions, and the container's ``ready``, ``restartCount`` and ``state``
under ``containerStatuses``. ``readiness_patch`` is a JSON merge patch of the pod's ``status``
subresource, or None when the API already says so; merge patches replace lists whole, so it
carries the full ``conditions`` and ``containerStatuses`` lists, changed only where they differ.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CONDITIONS = ("ContainersReady", "Ready")


@dataclass(frozen=True)
class ContainerView:
    """One container's process as the data plane sees it."""

    name: str
    ready: bool
    restarts: int
    running: bool
    last_exit_code: int | None = None


def readiness_patch(
    pod: Mapping[str, Any], container: ContainerView, *, now: str
) -> dict[str, Any] | None:
    """The merge patch that makes ``pod``'s status say what ``container`` shows; None when it
    already does. ``now`` (RFC 3339) stamps each condition and state that changes."""
    status = pod.get("status") or {}
    conditions = copy.deepcopy(list(status.get("conditions") or []))
    statuses = copy.deepcopy(list(status.get("containerStatuses") or []))
    changed = False
    wanted = "True" if container.ready else "False"
    for kind in CONDITIONS:
        found = next((c for c in conditions if c.get("type") == kind), None)
        if found is None:
            found = {"type": kind}
            conditions.append(found)
        if found.get("status") == wanted:
            continue
        found.update(status=wanted, lastTransitionTime=now)
        if container.ready:
            found.pop("reason", None)
            found.pop("message", None)
        else:
            found.update(
                reason="ContainersNotReady",
                message=f"containers with unready status: [{container.name}]",
            )
        changed = True
    entry = next((c for c in statuses if c.get("name") == container.name), None)
    if entry is None:
        entry = {"name": container.name}
        statuses.append(entry)
    if entry.get("ready") != container.ready or entry.get("restartCount") != container.restarts:
        restarted = entry.get("restartCount") != container.restarts
        was_running = "running" in (entry.get("state") or {})
        entry.update(ready=container.ready, restartCount=container.restarts)
        entry["started"] = container.running
        if restarted or was_running != container.running:
            entry["state"] = (
                {"running": {"startedAt": now}}
                if container.running
                else {"waiting": {"reason": "CrashLoopBackOff"}}
            )
        if restarted and container.last_exit_code is not None:
            entry["lastState"] = {
                "terminated": {"exitCode": container.last_exit_code, "finishedAt": now}
            }
        changed = True
    if not changed:
        return None
    return {"status": {"conditions": conditions, "containerStatuses": statuses}}
