"""What every cluster target offers: where the demo system's things are, and its lifecycle.

A ``Target`` answers "which cluster, and where on it?" once: the API client and kubectl bound to
its kubeconfig, gateway A's two Services, pod logs, Prometheus, and ``up``/``down``/``status``.
Domain code asks a target instead of branching on ``settings.target``; ``target_for(settings)``
in ``harness.targets`` is the one place that reads that setting and picks the implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.argocd import ArgoCD
from harness.errors import TargetError
from harness.kube import Kube
from harness.kubectl import Kubectl
from harness.probes import Gateway
from harness.settings import Settings, TargetName


@dataclass(frozen=True)
class ComponentStatus:
    """One line of ``bgh status``."""

    name: str
    running: bool
    detail: str


class Target(Protocol):
    """One cluster the harness runs against: ``local``, ``kind`` or ``existing``."""

    @property
    def name(self) -> TargetName:
        """``local``, ``kind`` or ``existing``, as ``--target`` spells it."""
        ...

    @property
    def settings(self) -> Settings: ...

    @property
    def chart_flavour(self) -> str:
        """The GitOps chart's ``flavour`` value here (kind runs the analysis server in-cluster)."""
        ...

    def chart_values(self) -> dict[str, str]:
        """What the GitOps charts are given on this target (``flavour``, and on the local target
        where its analysis server and Prometheus listen), as ``helm --set`` and as the helm
        parameters of the Applications the harness seeds for Argo CD."""
        ...

    @property
    def owns_cluster(self) -> bool:
        """Whether the harness made this cluster (and may make a namespace per scenario in it)."""
        ...

    def kube(self, namespace: str | None = None) -> Kube:
        """The API client for ``namespace`` (default: the settings')."""
        ...

    def kubectl(self) -> Kubectl:
        """kubectl bound to this target's kubeconfig and context."""
        ...

    def gateway(self, namespace: str | None = None) -> Gateway:
        """Gateway A of ``namespace`` (default: the settings') through its two Services."""
        ...

    def pod_logs(self, namespace: str, pod: str) -> str | None:
        """A pod's log where this target keeps one; None where it does not."""
        ...

    @property
    def crashes_pods(self) -> bool:
        """Whether ``crash_pod`` can reach a pod's process on this target."""
        ...

    def crash_pod(self, namespace: str, pod: str) -> int:
        """Kill the process of ``pod``'s container with SIGKILL, as a crash would; whatever runs
        pods here restarts it. The pid killed; TargetError where no process can be reached."""
        ...

    @property
    def prometheus_url(self) -> str | None:
        """Base URL of the Prometheus the analysis reads on this target; None when unknown."""
        ...

    @property
    def analysis_prometheus_url(self) -> str | None:
        """The same Prometheus as the Argo Rollouts controller reaches it (an AnalysisTemplate's
        ``address``): on kind the in-cluster Service, not the host's loopback."""
        ...

    def gitops_argocd(self) -> ArgoCD | None:
        """Argo CD syncing from Git repositories on this machine, started if need be; None where
        the target's Argo CD cannot read a ``file://`` repository."""
        ...

    def refresh_argocd(self) -> list[str]:
        """Ask this target's Argo CD, when it runs here, to compare with Git now; the names of
        the Applications asked (none where there is no such Argo CD)."""
        ...

    def up(self) -> float:
        """Make the target ready; the seconds it took."""
        ...

    def down(self) -> float:
        """Stop what ``up`` started and remove its files; the seconds it took."""
        ...

    def status(self) -> list[ComponentStatus]:
        """Each component and whether it runs."""
        ...


class TargetDefaults:
    """What a target offers unless it says otherwise: the API client through its kubeconfig, no
    pod logs kept, no pod process to crash, the Prometheus the settings name, no Argo CD
    reading this machine's Git."""

    settings: Settings
    chart_flavour: str
    name: TargetName

    def kubeconfig_in_use(self) -> Path | None:
        """The kubeconfig the harness reaches the API server with (``BGH_KUBECONFIG``)."""
        return self.settings.kubeconfig

    def kube(self, namespace: str | None = None) -> Kube:
        return Kube(
            kubeconfig=self.kubeconfig_in_use(),
            context=self.settings.context,
            namespace=namespace or self.settings.namespace,
            impersonate=self.settings.impersonate,
            connect_timeout=self.settings.deadlines.api_connect,
            read_timeout=self.settings.deadlines.api_read,
        )

    def pod_logs(self, namespace: str, pod: str) -> str | None:
        return None

    crashes_pods = False

    def crash_pod(self, namespace: str, pod: str) -> int:
        raise TargetError(
            f'cannot crash pod "{pod}" in namespace "{namespace}": the harness reaches no pod '
            f"process on the {self.name} target (it does on the local and kind targets)"
        )

    def chart_values(self) -> dict[str, str]:
        return {"flavour": self.chart_flavour}

    @property
    def prometheus_url(self) -> str | None:
        return self.settings.prometheus_url

    @property
    def analysis_prometheus_url(self) -> str | None:
        return self.prometheus_url

    def gitops_argocd(self) -> ArgoCD | None:
        return None

    def refresh_argocd(self) -> list[str]:
        return []
