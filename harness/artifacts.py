"""What a failed runbook leaves behind, so the failure reads as a bug report without a rerun.

``collect_artifacts`` writes, under one directory: every Rollout as YAML without managedFields,
its ReplicaSets and revisions, the Services' selectors beside the Rollout's status selectors, the
AnalysisRuns with their measurements, the namespace's events in time order, the pod logs where
the target keeps them (the local data plane's process logs), and the last probe answers.
Everything written goes through harness/redact.py first: env values, secret-looking annotations
and tokens never reach the artifacts; names do.
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
    Kind,
    Kube,
    ReplicaSet,
    Rollout,
    Service,
    replica_set_from,
    rollout_from,
    service_from,
)
from harness.probes import Answer
from harness.redact import redact_object, redact_text


@dataclass
class Collected:
    """Where the artifacts went and a few lines to put in the test report."""

    directory: Path
    files: list[Path] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def write(self, name: str, text: str) -> None:
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact_text(text))  # tokens in events, logs and probe answers too
        self.files.append(path)


PodLogs = Callable[[str, str], str | None]


def collect_artifacts(
    kube: Kube,
    directory: Path,
    *,
    answers: Iterable[Answer] = (),
    pod_logs: PodLogs | None = None,
) -> Collected:
    """Write the namespace's state under ``directory``; ``pod_logs(namespace, pod)`` gives a
    pod's log where the target has one."""
    directory.mkdir(parents=True, exist_ok=True)
    out = Collected(directory)
    last = list(answers)
    collectors: tuple[tuple[str, Callable[[], object]], ...] = (
        ("rollouts", lambda: _rollouts(kube, out)),
        ("services", lambda: _services(kube, out)),
        ("replicasets", lambda: _dump(kube, REPLICA_SET, "replicasets.yaml", out)),
        ("analysisruns", lambda: _analysis_runs(kube, out)),
        ("events", lambda: _events(kube, out)),
        ("pods", lambda: _pods(kube, pod_logs, out)),
        ("probes", lambda: _probes(last, out)),
    )
    for what, collect in collectors:
        try:
            collect()
        except (HarnessError, OSError) as exc:
            out.errors.append(f"{what}: {exc}")
    if out.errors:
        out.write("errors.txt", "\n".join(out.errors) + "\n")
    return out


def _clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as written: without managedFields, and redacted (harness/redact.py)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return redact_object({**obj, "metadata": meta})


def _dump(kube: Kube, kind: Kind, name: str, out: Collected) -> list[dict[str, Any]]:
    """Every object of ``kind`` as YAML without managedFields; the objects."""
    items, _ = kube.list(kind)
    out.write(name, yaml.safe_dump_all([_clean(o) for o in items], sort_keys=False))
    return items


def _rollouts(kube: Kube, out: Collected) -> None:
    items = _dump(kube, ROLLOUT, "rollouts.yaml", out)
    replica_sets = [replica_set_from(o) for o in kube.list(REPLICA_SET)[0]]
    services = {s.name: s for s in (service_from(o) for o in kube.list(SERVICE)[0])}
    lines = [_rollout_line(rollout_from(raw), replica_sets, services) for raw in items]
    out.write("rollouts.txt", "\n".join(lines) + "\n")
    out.summary.extend(line for line in lines if line and not line.startswith(" "))


def _rollout_line(
    rollout: Rollout, replica_sets: list[ReplicaSet], services: Mapping[str, Service]
) -> str:
    """The Rollout's phase, its status selectors beside its Services' and its ReplicaSets."""
    active = services.get(rollout.active_service)
    preview = services.get(rollout.preview_service)
    revisions = ", ".join(
        f"rev {rs.revision}={rs.pod_template_hash} ({rs.ready_replicas}/{rs.replicas})"
        for rs in sorted(
            (r for r in replica_sets if r.owner == rollout.name), key=lambda r: r.revision or 0
        )
    )
    return (
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


def _services(kube: Kube, out: Collected) -> None:
    items, _ = kube.list(SERVICE)
    selectors = {o["metadata"]["name"]: (o.get("spec") or {}).get("selector") for o in items}
    out.write("services.json", json.dumps(selectors, indent=2, sort_keys=True) + "\n")


def _analysis_runs(kube: Kube, out: Collected) -> None:
    for run in _dump(kube, ANALYSIS_RUN, "analysisruns.yaml", out):
        status = run.get("status") or {}
        out.summary.append(
            f"AnalysisRun {run['metadata']['name']}: {status.get('phase', '?')} "
            f"{status.get('message', '')}".rstrip()
        )


def _events(kube: Kube, out: Collected) -> None:
    items, _ = kube.list(EVENT)
    items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    out.write(
        "events.txt",
        "".join(
            f"{e.get('lastTimestamp') or e.get('eventTime') or '-'} {e.get('type', '')} "
            f"{(e.get('involvedObject') or {}).get('kind', '')}/"
            f"{(e.get('involvedObject') or {}).get('name', '')} {e.get('reason', '')}: "
            f"{e.get('message', '')}\n"
            for e in items
        ),
    )


def _pods(kube: Kube, pod_logs: PodLogs | None, out: Collected) -> None:
    items = _dump(kube, POD, "pods.yaml", out)
    if pod_logs is None:
        return
    for pod in items:
        name = pod["metadata"]["name"]
        text = pod_logs(kube.namespace, name)
        if text is not None:
            out.write(f"logs/{name}.log", text)


def _probes(answers: list[Answer], out: Collected) -> None:
    if not answers:
        return
    dumped = json.dumps([a.as_dict() for a in answers], indent=2, ensure_ascii=False)
    out.write("probes.json", dumped + "\n")
    failed = [a for a in answers if not a.ok]
    out.summary.append(
        f"last probes: {len(answers)}, {len(failed)} failed"
        + (f"; last failure: {failed[-1].describe()}" if failed else "")
    )
