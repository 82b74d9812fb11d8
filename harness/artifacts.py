"""What a failed runbook leaves behind, so the failure reads as a bug report without a rerun.

``collect_artifacts`` writes, under one directory: every Rollout as YAML without managedFields,
its ReplicaSets and revisions, the Services' selectors beside the Rollout's status selectors, the
AnalysisRuns with their measurements, the namespace's events in time order, the pod logs (the
local data plane's process logs, or what the API serves elsewhere), and the last probe answers.
It never raises for what it cannot read: a collection that fails notes why in ``errors.txt`` and
goes on, since it runs when something is already wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.kube import (
    ANALYSIS_RUN,
    EVENT,
    POD,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    Kube,
    replica_set_from,
    rollout_from,
    service_from,
)
from harness.probes import Answer


@dataclass
class Collected:
    """Where the artifacts went and a few lines to put in the test report."""

    directory: Path
    files: list[Path] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def collect_artifacts(
    kube: Kube,
    directory: Path,
    *,
    answers: Iterable[Answer] = (),
    pod_logs: Callable[[str, str], str | None] | None = None,
) -> Collected:
    """Write the namespace's state under ``directory``; ``pod_logs(namespace, pod)`` gives a
    pod's log where the target has one."""
    directory.mkdir(parents=True, exist_ok=True)
    out = Collected(directory)

    def write(name: str, text: str) -> None:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.files.append(path)

    def attempt(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except (HarnessError, OSError) as exc:
            out.errors.append(f"{what}: {exc}")

    def rollouts() -> None:
        items, _ = kube.list(ROLLOUT)
        write("rollouts.yaml", yaml.safe_dump_all([_clean(o) for o in items], sort_keys=False))
        replica_sets = [replica_set_from(o) for o in kube.list(REPLICA_SET)[0]]
        services = {s.name: s for s in (service_from(o) for o in kube.list(SERVICE)[0])}
        lines = []
        for raw in items:
            rollout = rollout_from(raw)
            active = services.get(rollout.active_service)
            preview = services.get(rollout.preview_service)
            revisions = ", ".join(
                f"rev {rs.revision}={rs.pod_template_hash} ({rs.ready_replicas}/{rs.replicas})"
                for rs in sorted(
                    (r for r in replica_sets if r.owner == rollout.name),
                    key=lambda r: r.revision or 0,
                )
            )
            lines.append(
                f"{rollout.name}: phase={rollout.status_phase or '?'} "
                f'message="{rollout.status_message}" revision={rollout.revision}\n'
                f"  status selectors: active={rollout.active_selector or '-'} "
                f"preview={rollout.preview_selector or '-'}\n"
                f"  Service selectors: {rollout.active_service}="
                f"{active.pod_template_hash if active else 'missing'} "
                f"{rollout.preview_service}="
                f"{preview.pod_template_hash if preview else 'missing'}\n"
                f"  ReplicaSets: {revisions or 'none'}"
            )
        write("rollouts.txt", "\n".join(lines) + "\n")
        out.summary.extend(line for line in lines if line and not line.startswith(" "))

    def services() -> None:
        items, _ = kube.list(SERVICE)
        selectors = {o["metadata"]["name"]: (o.get("spec") or {}).get("selector") for o in items}
        write("services.json", json.dumps(selectors, indent=2, sort_keys=True) + "\n")

    def replica_sets() -> None:
        items, _ = kube.list(REPLICA_SET)
        write("replicasets.yaml", yaml.safe_dump_all([_clean(o) for o in items], sort_keys=False))

    def analysis_runs() -> None:
        items, _ = kube.list(ANALYSIS_RUN)
        write("analysisruns.yaml", yaml.safe_dump_all([_clean(o) for o in items], sort_keys=False))
        for run in items:
            status = run.get("status") or {}
            out.summary.append(
                f"AnalysisRun {run['metadata']['name']}: {status.get('phase', '?')} "
                f"{status.get('message', '')}".rstrip()
            )

    def events() -> None:
        items, _ = kube.list(EVENT)
        items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        write(
            "events.txt",
            "".join(
                f"{e.get('lastTimestamp') or e.get('eventTime') or '-'} {e.get('type', '')} "
                f"{(e.get('involvedObject') or {}).get('kind', '')}/"
                f"{(e.get('involvedObject') or {}).get('name', '')} {e.get('reason', '')}: "
                f"{e.get('message', '')}\n"
                for e in items
            ),
        )

    def pods() -> None:
        items, _ = kube.list(POD)
        write("pods.yaml", yaml.safe_dump_all([_clean(o) for o in items], sort_keys=False))
        if pod_logs is None:
            return
        for pod in items:
            name = pod["metadata"]["name"]
            text = pod_logs(kube.namespace, name)
            if text is not None:
                write(f"logs/{name}.log", text)

    def probes() -> None:
        last = [a.as_dict() for a in answers]
        if last:
            write("probes.json", json.dumps(last, indent=2, ensure_ascii=False) + "\n")
            failed = [a for a in answers if not a.ok]
            out.summary.append(
                f"last probes: {len(last)}, {len(failed)} failed"
                + (f"; last failure: {failed[-1].describe()}" if failed else "")
            )

    for what, action in (
        ("rollouts", rollouts),
        ("services", services),
        ("replicasets", replica_sets),
        ("analysisruns", analysis_runs),
        ("events", events),
        ("pods", pods),
        ("probes", probes),
    ):
        attempt(what, action)
    if out.errors:
        write("errors.txt", "\n".join(out.errors) + "\n")
    return out
