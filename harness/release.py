"""Releasing the demo system the way its users do: through an environment's version file.

A release of one service sets its version and moves the environment's root version on, so the
new pods of every service carry the new ``root-version`` label: preview gateway A (its pods
labelled ``role=preview`` by the Rollout's previewMetadata) then reaches the previews of B and C
(the VirtualServices route callers by both labels) while active A keeps reaching the active ones.
Every Rollout therefore gets a new revision and waits on preview.

A release is promoted callees first (``promote_release``): gateway A's new pods keep
``role=preview`` until the controller has made their ReplicaSet the stable one, a moment after
the switch, so B and C must already serve their new ReplicaSets to users when A switches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.delivery import ArgoCDDelivery, Deployed, DirectApply, settle
from harness.errors import ConfigError
from harness.gitops import ROOT_VERSION, Bump, GitOps
from harness.kube import Rollout
from harness.probes import CALLER
from harness.rollouts import Phase, Rollouts, phase_of
from harness.target import Target

# The AnalysisTemplates gitops/charts/analysis renders that postPromotionAnalysis may run.
POST_PROMOTION_TEMPLATES = ("bgh-error-rate", "bgh-latency")
# The most latency a played slow build may add: gateway A gives B and C 500 ms each.
MAX_LATENCY_MS = 400


def next_root_version(root_version: str) -> str:
    """The next minor root version: v2.1.0 -> v2.2.0, v2.1.3-rc.1 -> v2.2.0."""
    match = ROOT_VERSION.fullmatch(root_version)
    if match is None:
        raise ConfigError(
            f'root version "{root_version}" is not vMAJOR.MINOR.PATCH (e.g. v2.1.0); fix '
            "rootVersion in the version file"
        )
    return f"v{match[1]}.{int(match[2]) + 1}.0"


@dataclass(frozen=True)
class Release:
    """One release: what changed in the version file and where each Rollout settled."""

    env: str
    service: str
    version: str
    root_version: str
    diff: str
    deployed: tuple[Deployed, ...]

    @property
    def rollouts(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.deployed)


class Releases:
    """Deploy an environment and release services through its version file.

    Without ``delivery`` the harness applies the rendered environment itself (what Argo CD's sync
    would do); with one, a release is a commit pushed to the repository Argo CD syncs from, and
    Argo CD applies it.
    """

    def __init__(
        self, target: Target, *, env: str = "qa", delivery: ArgoCDDelivery | None = None
    ) -> None:
        self.target = target
        self.env = env
        self.delivery = delivery
        self.tree = GitOps(target.settings.gitops_dir)

    def deploy(self) -> list[Deployed]:
        """Apply the environment as its version file says and wait for every Rollout."""
        if self.delivery is None:
            return DirectApply(self.target).deploy(self.env)
        self.delivery.bootstrap()
        rollouts = self._rollouts()
        return settle(rollouts, rollouts.names(), existing=())

    def _apply(self, bump: Bump) -> list[Deployed]:
        if self.delivery is None:
            return DirectApply(self.target).deploy(self.env)
        rollouts = self._rollouts()
        existing = rollouts.names()
        self.delivery.deliver(bump.file, bump.message)
        return settle(rollouts, rollouts.names(), existing)

    def _rollouts(self) -> Rollouts:
        return Rollouts(self.target.kube(), timeout=self.target.settings.deadlines.rollout)

    def release(
        self,
        service: str,
        version: str,
        *,
        error_rate: float = 0.0,
        latency_ms: int = 0,
        greeting: str | None = None,
    ) -> Release:
        """Set ``service`` to ``version`` with the next root version, apply, wait for preview.

        ``error_rate``: a faulty build, played by the services' fault knob (FAULT_ERROR_RATE,
        the chart's ``faults.errorRate``): the new pods answer that share of requests with 500.
        ``latency_ms``: a slow build of ``service`` alone (FAULT_LATENCY_MS, the version file's
        ``services.<service>.faults.latencyMs``): its new pods answer every request that much
        later; the other services' new pods are not slowed.
        """
        if not 0.0 <= error_rate <= 1.0:
            raise ConfigError(f"error rate {error_rate}: expected a share between 0 and 1")
        if not 0 <= latency_ms <= MAX_LATENCY_MS:
            raise ConfigError(
                f"added latency {latency_ms} ms: expected 0 to {MAX_LATENCY_MS} ms (gateway A "
                "gives B and C 500 ms, users 5 s)"
            )
        root = next_root_version(self.tree.read_versions(self.env).root_version)
        if error_rate or "\nfaults:" in self.tree.version_file(self.env).read_text():
            # Set (or reset) the fault knob; a file that never had one is left without it.
            self.tree.set_values(self.env, {"faults.errorRate": f"{error_rate:g}"})
        if latency_ms or self.tree.service_faults(self.env, service):
            self.tree.set_values(
                self.env, {f"services.{service}.faults.latencyMs": str(latency_ms)}
            )
        bump = self.tree.bump(self.env, service, version, root_version=root, greeting=greeting)
        deployed = self._apply(bump)
        return Release(self.env, service, version, root, bump.diff, tuple(deployed))

    def turn_on_pre_promotion_analysis(self) -> list[Deployed]:
        """Switch the environment's pre-promotion analysis (bgh-judge) on and apply it."""
        change = self.tree.set_values(self.env, {"analysis.prePromotion": True})
        return self._apply(change)

    def turn_on_post_promotion_analysis(self, template: str) -> list[Deployed]:
        """Switch the environment's post-promotion analysis on with ``template``, one of the
        AnalysisTemplates the analysis chart renders, and apply it."""
        if template not in POST_PROMOTION_TEMPLATES:
            raise ConfigError(
                f"post-promotion AnalysisTemplate {template!r}: expected one of "
                f"{', '.join(POST_PROMOTION_TEMPLATES)} (gitops/charts/analysis)"
            )
        change = self.tree.set_values(
            self.env,
            {"analysis.postPromotion": True, "analysis.postPromotionTemplate": template},
        )
        return self._apply(change)

    def release_and_promote(
        self, rollouts: Rollouts, service: str, version: str, *, greeting: str | None = None
    ) -> Release:
        """Release, promote every Rollout of the release and wait until all are Healthy."""
        release = self.release(service, version, greeting=greeting)
        promote_release(rollouts, release.rollouts)
        rollouts.wait_until_settled(release.rollouts)
        return release

    def versions(self) -> dict[str, str]:
        """Each service's version in the version file now."""
        return dict(self.tree.read_versions(self.env).services)


def promote_release(rollouts: Rollouts, names: Iterable[str], *, full: bool = False) -> None:
    """Promote the services gateway A calls, wait until each serves users from its newest
    ReplicaSet, then promote gateway A.

    Promoted first, gateway A's new pods would take users while still labelled role=preview
    (the controller relabels them role=active only once their ReplicaSet is the stable one) and
    send them to previews of B and C that are not yet active.
    """
    names = list(names)
    callees = [n for n in names if n != CALLER]
    for name in callees:
        rollouts.promote(name, full=full)
    for name in callees:
        rollouts.wait_for(
            name,
            lambda r: bool(r.current_hash) and r.active_selector == r.current_hash,
            expecting="active on its newest ReplicaSet",
            fail_if=_degraded,
        )
    if CALLER in names:
        rollouts.promote(CALLER, full=full)


def _degraded(rollout: Rollout) -> str | None:
    phase, message = phase_of(rollout)
    return f"the rollout is Degraded: {message}" if phase is Phase.DEGRADED else None
