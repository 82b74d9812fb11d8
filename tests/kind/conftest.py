"""Tests of the kind target on a machine where it runs: they need a kind cluster made by
``bgh up --target kind`` and run with ``BGH_TARGET=kind`` (``.ci/run`` does both); elsewhere each
one is skipped with that reason. The egress guard's tests need only the machine's rules."""

from __future__ import annotations

import pytest

from harness.settings import Settings, load_settings
from harness.targets.kind import KindTarget


@pytest.fixture(scope="session")
def kind_target() -> KindTarget:
    settings: Settings = load_settings()
    if settings.target != "kind":
        pytest.skip("needs the kind target: `bgh up --target kind`, then BGH_TARGET=kind pytest")
    target = KindTarget(settings)
    if not target.kubeconfig.exists() or not target.kubectl_path().is_file():
        pytest.fail(
            f"BGH_TARGET=kind but no kind cluster is up ({target.kubeconfig} is missing); "
            "run `bgh up --target kind` first"
        )
    return target
