"""The existing target: a cluster someone else runs, reached through a kubeconfig.

Nothing is brought up or down here. Gateway A's Services are where the settings say
(``BGH_GATEWAY_URL``, ``BGH_GATEWAY_PREVIEW_URL``), Prometheus too (``BGH_PROMETHEUS_URL``),
and kubectl is the one on PATH.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.errors import ConfigError
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
        urls: dict[Side, str] = {}
        if self.settings.gateway_url:
            urls[Side.ACTIVE] = self.settings.gateway_url
        if self.settings.gateway_preview_url:
            urls[Side.PREVIEW] = self.settings.gateway_preview_url

        def locate(side: Side) -> str:
            if side not in urls:
                variable = "BGH_GATEWAY_URL" if side == Side.ACTIVE else "BGH_GATEWAY_PREVIEW_URL"
                raise ConfigError(
                    f"the existing target needs gateway A's {side} URL: set {variable} "
                    f"(e.g. {variable}=https://{side}.demo.example.com)"
                )
            return urls[side]

        return Gateway(locate, timeout=self.settings.deadlines.probe)

    def up(self) -> float:
        raise ConfigError(NOTHING_TO_RUN)

    def down(self) -> float:
        raise ConfigError(NOTHING_TO_RUN)

    def status(self) -> list[ComponentStatus]:
        raise ConfigError(NOTHING_TO_RUN)
