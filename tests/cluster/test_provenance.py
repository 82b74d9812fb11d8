"""The isolation invariants on the local target: they hold with the chart, and they catch the
hazards they exist for.

Service B is released alone with the plugin's ``set image`` (no new root version) and waits on
preview. Users through gateway A's active Service and testers through its preview Service are then
judged answer by answer against the Rollouts' selectors: with the chart nobody reaches B's
preview; with the old VirtualService (every caller of the root version to preview), a
mis-routed VirtualService (active A to preview B) or B's active Service patched by hand, users do,
and the verdict names the chain.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.delivery import DirectApply
from harness.isolation import Isolation
from harness.kube import HASH_LABEL, MERGE_PATCH, SERVICE, VIRTUAL_SERVICE, Kube
from harness.probes import Gateway, Side
from harness.provenance import Verdict
from harness.rollouts import Phase, Rollouts
from harness.settings import Settings, load_settings
from harness.targets import target_for
from tests.cluster.conftest import Cluster

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHART_VIRTUAL_SERVICE = Path("charts/demo-service/templates/virtualservice.yaml")
ANSWERS_PER_SIDE = 30


@dataclass(frozen=True)
class Released:
    """The demo system with B released alone by ``set image``, waiting on preview."""

    settings: Settings
    kube: Kube
    gateway: Gateway
    rollouts: Rollouts
    active: str  # B's active pod-template hash
    preview: str  # B's preview pod-template hash

    def judge(self, during: Callable[[], object] = lambda: None) -> Verdict:
        """Both streams, ``during`` done once they run, until each side has answered
        ``ANSWERS_PER_SIDE`` times."""
        isolation = Isolation(self.kube, self.gateway, rps=10)
        isolation.start()
        during()  # watched: a change made before the recorder started would be its first state
        assert isolation.traffic is not None
        isolation.traffic.wait_until(
            lambda t: all(
                sum(1 for a in t.answers if a.side == side and a.pods) >= ANSWERS_PER_SIDE
                for side in (Side.ACTIVE, Side.PREVIEW)
            ),
            what=f"{ANSWERS_PER_SIDE} answers on each side",
            within=60,
        )
        return isolation.stop()


def _release_b_alone(tmp_path: Path, *, old_virtual_service: bool) -> Iterator[Released]:
    base = load_settings()
    tree = tmp_path / "gitops"
    shutil.copytree(Path(base.gitops_dir), tree)
    if old_virtual_service:
        shutil.copy(
            FIXTURES / "virtualservice-root-version-only.yaml", tree / CHART_VIRTUAL_SERVICE
        )
    settings = base.model_copy(
        update={"namespace": f"prov-{uuid.uuid4().hex[:8]}", "gitops_dir": tree}
    )
    target = target_for(settings)
    DirectApply(target).deploy("qa")
    kube = target.kube()
    rollouts = Rollouts(kube, timeout=settings.deadlines.rollout)
    try:
        rollouts.set_image_version("service-b", "1.1.0")
        b = rollouts.wait_for_phase("service-b", Phase.PAUSED)
        yield Released(
            settings, kube, target.gateway(), rollouts, b.active_selector, b.preview_selector
        )
    finally:
        target.kubectl().run("delete", "namespace", settings.namespace, "--wait=false")


@pytest.fixture(scope="module")
def released(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Released]:
    yield from _release_b_alone(tmp_path_factory.mktemp("chart"), old_virtual_service=False)


def _user_hops_on(verdict: Verdict, service: str) -> set[str]:
    """The pod-template hashes of ``service`` in the user answers that broke invariant 1."""
    return {
        h.origin.pod_template_hash
        for v in verdict.of(1)
        for h in v.provenance.hops
        if h.service == service and h.origin is not None
    }


def test_with_the_chart_a_service_released_alone_reaches_no_user(released: Released) -> None:
    verdict = released.judge()
    assert verdict.checked(Side.ACTIVE) >= ANSWERS_PER_SIDE
    assert verdict.checked(Side.PREVIEW) >= ANSWERS_PER_SIDE
    assert [v.describe() for v in verdict.violations] == []
    assert released.active != released.preview


def test_a_virtual_service_sending_active_a_to_preview_b_is_caught(
    released: Released, cluster: Cluster
) -> None:
    chart = released.kube.get(VIRTUAL_SERVICE, "service-b")
    misrouted = FIXTURES / "virtualservice-misrouted.yaml"
    cluster.kubectl("apply", "-n", released.settings.namespace, "-f", str(misrouted))
    try:
        verdict = released.judge()
    finally:
        now = released.kube.get(VIRTUAL_SERVICE, "service-b")
        chart["metadata"]["resourceVersion"] = now["metadata"]["resourceVersion"]
        released.kube.replace(VIRTUAL_SERVICE, "service-b", chart)
    assert _user_hops_on(verdict, "service-b") == {released.preview}, verdict.report()
    assert "preview-only" in verdict.of(1)[0].why


def test_an_active_service_selector_patched_by_hand_is_caught(released: Released) -> None:
    verdict = released.judge(
        lambda: released.kube.patch(
            SERVICE,
            "service-b",
            {"spec": {"selector": {HASH_LABEL: released.preview}}},
            content_type=MERGE_PATCH,
        )
    )
    assert _user_hops_on(verdict, "service-b") == {released.preview}, verdict.report()
    assert "while the Rollout was paused: not by Argo Rollouts" in verdict.of(1)[0].describe()


def test_with_the_old_virtual_service_users_reach_the_service_released_alone(
    cluster: Cluster, tmp_path: Path
) -> None:
    for old in _release_b_alone(tmp_path, old_virtual_service=True):
        verdict = old.judge()
        assert _user_hops_on(verdict, "service-b") == {old.preview}, verdict.report()
        assert verdict.of(1)[0].invariant == 1
