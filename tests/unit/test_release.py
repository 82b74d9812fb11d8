"""Releasing through the version file: the next root version, and bad input refused before
anything is written or applied."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.release import Releases, next_root_version
from harness.settings import load_settings
from harness.targets import target_for

TREE = Path(__file__).resolve().parents[2] / "gitops"


@pytest.mark.parametrize(
    ("root", "following"),
    [("v2.1.0", "v2.2.0"), ("v2.9.3", "v2.10.0"), ("v3.0.0-rc.1", "v3.1.0")],
)
def test_the_next_root_version_is_the_next_minor(root: str, following: str) -> None:
    assert next_root_version(root) == following


def test_a_root_version_that_is_not_semver_names_the_fix() -> None:
    with pytest.raises(ConfigError, match=r'root version "2.1" is not vMAJOR.MINOR.PATCH'):
        next_root_version("2.1")


@pytest.mark.parametrize("error_rate", [-0.1, 1.5])
def test_an_impossible_error_rate_is_refused_before_the_file_changes(
    tmp_path: Path, error_rate: float
) -> None:
    shutil.copytree(TREE, tmp_path / "gitops")
    releases = Releases(target_for(load_settings(gitops_dir=tmp_path / "gitops")))
    before = releases.tree.version_file("qa").read_text()
    with pytest.raises(ConfigError, match="expected a share between 0 and 1"):
        releases.release("service-b", "1.1.0", error_rate=error_rate)
    assert releases.tree.version_file("qa").read_text() == before


def test_set_values_creates_maps_and_keeps_every_other_byte(tmp_path: Path) -> None:
    shutil.copytree(TREE, tmp_path / "gitops")
    releases = Releases(target_for(load_settings(gitops_dir=tmp_path / "gitops")))
    file = releases.tree.version_file("qa")
    before = file.read_text()
    change = releases.tree.set_values(
        "qa", {"analysis.prePromotion": True, "faults.errorRate": "0.5"}
    )
    after = file.read_text()
    assert after == change.after
    assert (
        after.replace("  prePromotion: true\n", "  prePromotion: false\n").removesuffix(
            "faults:\n  errorRate: '0.5'\n"
        )
        == before
    )


def _releases(tmp_path: Path) -> Releases:
    shutil.copytree(TREE, tmp_path / "gitops")
    return Releases(target_for(load_settings(gitops_dir=tmp_path / "gitops")))


def test_an_unknown_post_promotion_template_names_the_rendered_ones(tmp_path: Path) -> None:
    releases = _releases(tmp_path)
    before = releases.tree.version_file("qa").read_text()
    with pytest.raises(
        ConfigError, match=r"'bgh-fail': expected one of bgh-error-rate, bgh-latency"
    ):
        releases.turn_on_post_promotion_analysis("bgh-fail")
    assert releases.tree.version_file("qa").read_text() == before


@pytest.mark.parametrize("latency_ms", [-1, 401])
def test_an_impossible_added_latency_is_refused_before_the_file_changes(
    tmp_path: Path, latency_ms: int
) -> None:
    releases = _releases(tmp_path)
    before = releases.tree.version_file("qa").read_text()
    with pytest.raises(ConfigError, match=r"expected 0 to 400 ms"):
        releases.release("gateway-a", "1.1.0", latency_ms=latency_ms)
    assert releases.tree.version_file("qa").read_text() == before


def test_a_services_own_faults_are_read_from_its_entry_alone(tmp_path: Path) -> None:
    tree = _releases(tmp_path).tree
    assert tree.service_faults("qa", "gateway-a") == {}
    tree.set_values("qa", {"services.gateway-a.faults.latencyMs": "300"})
    assert tree.service_faults("qa", "gateway-a") == {"latencyMs": "300"}
    assert tree.service_faults("qa", "service-b") == {}
    assert tree.read_versions("qa").services["gateway-a"] == "1.0.0"
