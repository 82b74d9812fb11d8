"""Differential test: the harness's operations and the real `kubectl argo rollouts` plugin, run
on twin Rollouts through the same sequence, leave the same spec, phase, selectors and revisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from harness.kube import Kube
from harness.rollouts import Phase, Rollouts, phase_of
from tests.cluster.conftest import Cluster, blue_green_manifest

IMAGE = "ghcr.io/bluegreen-harness/service-b"


@dataclass(frozen=True)
class Observed:
    phase: str
    message: str
    images: tuple[tuple[str, str], ...]
    paused: bool
    abort: bool
    active_revision: int | None
    preview_revision: int | None
    stable_revision: int | None
    revisions: tuple[int | None, ...]


def observe(rollouts: Rollouts, name: str) -> Observed:
    rollout = rollouts.read(name)
    by_hash = {rs.pod_template_hash: rs.revision for rs in rollouts.replica_sets(name)}
    phase, message = phase_of(rollout)
    return Observed(
        phase.value,
        message,
        tuple(sorted(rollout.images.items())),
        rollout.paused,
        rollout.abort,
        by_hash.get(rollout.active_selector),
        by_hash.get(rollout.preview_selector),
        by_hash.get(rollout.stable_hash),
        tuple(sorted(by_hash.values(), key=lambda r: r or 0)),
    )


Step = tuple[str, Callable[[Rollouts, str], object], tuple[str, ...], Phase]

SEQUENCES: dict[str, list[Step]] = {
    "set image, promote": [
        ("set image", lambda r, n: r.set_image(n, "app", f"{IMAGE}:1.1.0"),
         ("set", "image", "{n}", f"app={IMAGE}:1.1.0"), Phase.PAUSED),
        ("promote", lambda r, n: r.promote(n), ("promote", "{n}"), Phase.HEALTHY),
    ],
    "set image, abort, retry": [
        ("set image", lambda r, n: r.set_image(n, "app", f"{IMAGE}:1.1.0"),
         ("set", "image", "{n}", f"app={IMAGE}:1.1.0"), Phase.PAUSED),
        ("abort", lambda r, n: r.abort(n), ("abort", "{n}"), Phase.DEGRADED),
        ("retry", lambda r, n: r.retry(n), ("retry", "rollout", "{n}"), Phase.PAUSED),
    ],
    "two releases, undo, undo to revision 1": [
        ("set image", lambda r, n: r.set_image(n, "app", f"{IMAGE}:1.1.0"),
         ("set", "image", "{n}", f"app={IMAGE}:1.1.0"), Phase.PAUSED),
        ("promote", lambda r, n: r.promote(n), ("promote", "{n}"), Phase.HEALTHY),
        ("set image again", lambda r, n: r.set_image(n, "app", f"{IMAGE}:1.2.0"),
         ("set", "image", "{n}", f"app={IMAGE}:1.2.0"), Phase.PAUSED),
        ("promote again", lambda r, n: r.promote(n), ("promote", "{n}"), Phase.HEALTHY),
        ("undo", lambda r, n: r.undo(n), ("undo", "{n}"), Phase.PAUSED),
        ("promote the undo", lambda r, n: r.promote(n), ("promote", "{n}"), Phase.HEALTHY),
        ("undo to revision 1", lambda r, n: r.undo(n, to_revision=1),
         ("undo", "{n}", "--to-revision=1"), Phase.PAUSED),
        ("promote --full", lambda r, n: r.promote(n, full=True),
         ("promote", "{n}", "--full"), Phase.HEALTHY),
    ],
}  # fmt: skip


@pytest.mark.parametrize("sequence", list(SEQUENCES))
def test_harness_and_plugin_leave_twins_in_the_same_state(
    cluster: Cluster, namespace: str, sequence: str
) -> None:
    rollouts = Rollouts(
        Kube(kubeconfig=cluster.target.kubeconfig, context=None, namespace=namespace), timeout=60
    )
    for name in ("harness", "plugin"):
        cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=blue_green_manifest(name, scale_down_delay=0)
        )
    for name in ("harness", "plugin"):
        rollouts.wait_for_phase(name, Phase.HEALTHY)
    for label, action, plugin_argv, phase in SEQUENCES[sequence]:
        action(rollouts, "harness")
        cluster.plugin(*(arg.format(n="plugin") for arg in plugin_argv), "-n", namespace)
        for name in ("harness", "plugin"):
            rollouts.wait_for_phase(name, phase)
        ours, theirs = observe(rollouts, "harness"), observe(rollouts, "plugin")
        assert ours == theirs, f"after {label!r}"
