"""The existing target: a cluster someone else runs, reached through a kubeconfig.

Nothing is brought up or down here. Gateway A's Services are where the settings say
(``BGH_GATEWAY_URL``, ``BGH_GATEWAY_PREVIEW_URL``) or, for a side they leave out, where the
cluster exposes them (harness/discovery.py); Prometheus is where the settings say
(``BGH_PROMETHEUS_URL``), and kubectl is the one on PATH.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.discovery import ClusterServices
from harness.errors import ConfigError
from harness.kube import Kube
from harness.kubectl import Kubectl, kubectl_on_path
from harness.probes import Gateway, Side
from harness.settings import Settings
from harness.target import ComponentStatus, TargetDefaults

NOTHING_TO_RUN = (
    "the existing target is a cluster someone else runs: there is nothing to bring up or "
    "down; point BGH_KUBECONFIG at it and run the suite"
)


@dataclass(frozen=True)
class ExistingTarget(TargetDefaults):
    """A cluster the harness did not make."""

    settings: Settings
    name: Literal["existing"] = "existing"
    chart_flavour: str = "default"
    owns_cluster: bool = False

    def kubectl(self) -> Kubectl:
        return kubectl_on_path(self.settings, needed_by="the existing target")

    def gateway(self, namespace: str | None = None) -> Gateway:
        # The settings' URLs win; a side they leave out is found from the cluster, which is
        # reached only then (harness/discovery.py).
        configured = {
            Side.ACTIVE.value: self.settings.gateway_url,
            Side.PREVIEW.value: self.settings.gateway_preview_url,
        }
        given = {side: url for side, url in configured.items() if url}
        names = {Side.ACTIVE.value: "gateway-a", Side.PREVIEW.value: "gateway-a-preview"}
        where = namespace or self.settings.namespace

        def connect() -> Kube:
            return Kube(
                kubeconfig=self.settings.kubeconfig, context=self.settings.context, namespace=where
            )

        services = ClusterServices(connect, given, names)
        return Gateway(services.locate, timeout=self.settings.deadlines.probe)

    def up(self) -> float:
        raise ConfigError(NOTHING_TO_RUN)

    def down(self) -> float:
        raise ConfigError(NOTHING_TO_RUN)

    def status(self) -> list[ComponentStatus]:
        raise ConfigError(NOTHING_TO_RUN)
