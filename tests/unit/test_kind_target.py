"""The kind target's plan: the commands it would run, checked where no Docker engine runs.

A fake is not needed: the plan is pure data. Running it needs Docker, which these machines lack.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness import versions
from harness.errors import ConfigError
from harness.settings import load_settings
from harness.targets.kind import CONFIG, DEMO_VERSIONS, KindTarget


@pytest.fixture
def target(tmp_path: Path) -> KindTarget:
    return KindTarget(
        load_settings(state_dir=tmp_path, namespace="demo"),
        versions=("1.2.3", "1.3.0"),
        analysis_tag="1.2.3",
    )


def _commands(target: KindTarget) -> list[str]:
    return [str(step) for step in target.plan()]


def test_cluster_is_created_first_from_the_pinned_node_image(target: KindTarget) -> None:
    first = target.plan()[0].argv
    assert first[:3] == ("kind", "create", "cluster")
    assert first[first.index("--image") + 1] == versions.KIND_NODE_IMAGE
    assert "@sha256:" in versions.KIND_NODE_IMAGE
    assert first[first.index("--config") + 1] == str(CONFIG)
    assert first[first.index("--kubeconfig") + 1] == str(target.kubeconfig)


def test_every_kubectl_call_uses_the_targets_own_kubeconfig(target: KindTarget) -> None:
    kubectl_steps = [step.argv for step in target.plan() if step.argv[0] == "kubectl"]
    assert kubectl_steps
    assert all(argv[1] == f"--kubeconfig={target.kubeconfig}" for argv in kubectl_steps)


def test_rollouts_installed_from_the_pinned_release_into_its_namespace(target: KindTarget) -> None:
    commands = _commands(target)
    install = next(c for c in commands if versions.ARGO_ROLLOUTS_INSTALL in c)
    assert f"/releases/download/{versions.ARGO_ROLLOUTS}/install.yaml" in install
    assert "-n argo-rollouts" in install
    namespace_step = next(s for s in target.plan() if s.name == "namespace argo-rollouts")
    assert commands.index(str(namespace_step)) < commands.index(install)


def test_istio_minimal_then_injection_in_the_demo_namespace(target: KindTarget) -> None:
    commands = _commands(target)
    istio = next(c for c in commands if c.startswith("istioctl install"))
    assert "--set profile=minimal -y" in istio
    label = next(c for c in commands if "istio-injection=enabled" in c)
    assert "label namespace demo istio-injection=enabled --overwrite" in label
    assert commands.index(istio) < commands.index(label)


def test_argocd_is_applied_server_side(target: KindTarget) -> None:
    argocd = next(c for c in _commands(target) if versions.ARGO_CD_INSTALL in c)
    assert "--server-side" in argocd and "-n argocd" in argocd
    assert f"/argo-cd/{versions.ARGO_CD}/manifests/install.yaml" in argocd


def test_images_are_built_then_loaded_with_the_version_tag(target: KindTarget) -> None:
    plan = target.plan()
    load = plan[-1].argv
    assert load[:3] == ("kind", "load", "docker-image")
    references = [ref for ref in load if ref.startswith("ghcr.io/")]
    assert references == [
        *(
            f"ghcr.io/bluegreen-harness/{s}:{v}"
            for v in ("1.2.3", "1.3.0")
            for s in ("gateway-a", "service-b", "service-c")
        ),
        "ghcr.io/bluegreen-harness/analysis:1.2.3",
    ]
    builds = [step.argv for step in plan if step.argv[:2] == ("docker", "build")]
    assert [argv[argv.index("-t") + 1] for argv in builds] == references
    versions = [a[a.index("-t") - 1] for a in builds if "VERSION=1.3.0" in a]
    assert versions == ["VERSION=1.3.0"] * 3, "each image reports the version it is tagged with"


def test_the_analysis_image_is_built_from_its_dockerfile_with_the_repository_as_context(
    target: KindTarget,
) -> None:
    (build,) = [
        step.argv
        for step in target.plan()
        if step.argv[:2] == ("docker", "build") and "analysis:1.2.3" in " ".join(step.argv)
    ]
    root = Path(__file__).parents[2]
    dockerfile = root / "analysis" / "Dockerfile"
    assert build[build.index("-f") + 1] == str(dockerfile)
    assert build[-1] == str(root)
    text = dockerfile.read_text()
    assert text.startswith("# syntax=docker/dockerfile:1") and "FROM python:3.11-slim" in text
    assert "USER " in text and "analysis.server" in text and "0.0.0.0" in text


def test_the_analysis_image_is_the_one_the_chart_runs_on_kind() -> None:
    values = yaml.safe_load((Path(__file__).parents[2] / "gitops/charts/analysis/values.yaml")
                           .read_text())
    assert values["analysis"]["server"]["image"] == KindTarget(load_settings()).analysis_image


def test_kind_config_maps_gateway_and_prometheus_to_loopback() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    mappings = config["nodes"][0]["extraPortMappings"]
    assert {(m["containerPort"], m["hostPort"]) for m in mappings} == {
        (30300, 3000),
        (30301, 3001),
        (30090, 9090),
    }
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings)


def test_up_without_the_tools_says_which_are_missing(
    target: KindTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        ConfigError, match=r"needs docker, kind, kubectl, istioctl on PATH.*--target local"
    ):
        target.up()


def test_kind_gets_every_version_the_runbooks_and_qa_deploy() -> None:
    """Runbooks release versions by name; on kind each must be an image loaded into the nodes."""
    root = Path(__file__).resolve().parents[2]
    named = set()
    for feature in (root / "features").glob("*.feature"):
        named |= set(re.findall(r'version "(\d+\.\d+\.\d+)"', feature.read_text()))
    qa = yaml.safe_load((root / "gitops" / "envs" / "qa_version.yaml").read_text())
    named |= {entry["version"] for entry in qa["services"].values()}
    assert named <= set(DEMO_VERSIONS), sorted(named - set(DEMO_VERSIONS))
