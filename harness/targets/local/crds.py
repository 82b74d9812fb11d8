"""The CustomResourceDefinitions the local target serves: which ones, and how they are put in.

Only the CRDs a run needs, each from its pinned upstream module (``harness.builds``):

- Argo Rollouts: all five. The controller waits for its informers of Rollouts, Experiments,
  AnalysisRuns, AnalysisTemplates and (cluster-wide) ClusterAnalysisTemplates to sync before it
  starts a worker (``controller/controller.go``, ``Manager.Run``: ``cache.WaitForCacheSync``), so
  a missing one would keep it from ever reconciling.
- Istio: VirtualService (the demo's routes; the data plane watches them), DestinationRule (once
  VirtualServices are served, the controller's Istio side waits for both informers,
  ``rollout/trafficrouting/istio/controller.go``, ``IstioController.Run``) and Gateway (service
  discovery reads which Gateways a VirtualService binds). Istio's other twelve are not applied.
- Argo CD: Application and AppProject, only when Argo CD starts (``LocalArgoCD.up``).

They are ~3.6 MB of YAML (3 MB of it Argo Rollouts'), and putting them in is `bgh up`'s longest
step after the control plane. Each is created (POST) on a thread of its own, which measured
quicker than server-side apply (the eight: 1.8 s against 2.9 s, in parallel, at load average
10; one `kubectl apply --server-side` after another: 4.2 s), and, when one of that name exists (a
target brought up again, or another Rollouts version), replaced whole (PUT), so the schema served
is exactly the chosen version's. Each is then waited for, on a watch, until Established. The
YAML is read while the control plane starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError, TargetError
from harness.kube import (
    CUSTOM_RESOURCE_DEFINITION,
    Conflict,
    CustomResourceDefinition,
    Kube,
    Resource,
    crd_from,
)
from harness.targets.processes import together
from harness.waits import wait_for

# libyaml when PyYAML was built with it: ~10 times quicker on these files.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

ISTIO_NEEDED = (
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "gateways.networking.istio.io",
)


@dataclass(frozen=True)
class CRDs:
    """One component's CRDs as read from its files, ready to be put in."""

    what: str  # "Argo Rollouts v1.10.2", for the report
    documents: tuple[Mapping[str, Any], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(d["metadata"]["name"]) for d in self.documents)


def read(what: str, directory: Path, *, only: Sequence[str] = ()) -> CRDs:
    """The CRDs in ``directory``'s YAML files; ``only``: just those names, each of which must be
    there."""
    files = sorted(directory.glob("*.yaml"))
    documents = [
        doc
        for file in files
        for doc in yaml.load_all(file.read_text(), Loader=_LOADER)
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
    ]
    if only:
        by_name = {str(d["metadata"]["name"]): d for d in documents}
        missing = [name for name in only if name not in by_name]
        if missing:
            raise TargetError(
                f"CRDs of {what}: {', '.join(missing)} not in {directory}; it has "
                f"{', '.join(sorted(by_name)) or 'none'} (a broken build? remove it from the "
                "cache and run `bgh up` again)"
            )
        documents = [by_name[name] for name in only]
    if not documents:
        raise TargetError(f"CRDs of {what}: no CustomResourceDefinition in {directory}")
    return CRDs(what, tuple(documents))


def establish(kube: Kube, crds: CRDs, *, within: float, report: Callable[[str], None]) -> None:
    """Create or replace each of ``crds`` at once, and return when every one is Established."""
    step = time.monotonic()
    together(*(_one(kube, doc, within=within) for doc in crds.documents))
    kinds = ", ".join(str(d["spec"]["names"]["kind"]) for d in crds.documents)
    report(f"CRDs of {crds.what} ({kinds}): established in {time.monotonic() - step:.1f}s")


def _one(kube: Kube, document: Mapping[str, Any], *, within: float) -> Callable[[], None]:
    name = str(document["metadata"]["name"])

    def put_in() -> None:
        try:
            try:
                kube.create(CUSTOM_RESOURCE_DEFINITION, document)
            except Conflict:
                current = kube.get(CUSTOM_RESOURCE_DEFINITION, name)
                version = current["metadata"]["resourceVersion"]
                meta = {**document["metadata"], "resourceVersion": version}
                kube.replace(CUSTOM_RESOURCE_DEFINITION, name, {**document, "metadata": meta})
        except HarnessError as exc:
            raise TargetError(f"CustomResourceDefinition {name}: not accepted: {exc}") from exc
        wait_for(
            Resource(kube, CUSTOM_RESOURCE_DEFINITION, crd_from),
            name,
            CustomResourceDefinition.is_established,
            what=f"CustomResourceDefinition {name}: Established",
            describe=_describe,
            fail_if=names_refused,
            within=within,
        )

    return put_in


def _describe(crd: CustomResourceDefinition) -> str:
    return ", ".join(f"{c.type}={c.status}" for c in crd.conditions) or "no conditions yet"


def names_refused(crd: CustomResourceDefinition) -> str | None:
    """A name another CRD already serves never becomes Established."""
    accepted = crd.condition("NamesAccepted")
    if accepted is not None and accepted.status == "False":
        return f"names not accepted: {accepted.message or accepted.reason}"
    return None
