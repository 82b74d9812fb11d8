"""The kind target's plan and config: the commands it would run, checked without Docker.

A fake is not needed: the plan is pure data. Running it is tested in tests/kind/ and by the
runbooks on kind in `.ci/run`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import versions
from harness.errors import ConfigError
from harness.settings import load_settings
from harness.targets.kind import (
    CONFIG,
    DEMO_VERSIONS,
    Addons,
    KindTarget,
    check_version,
    docker_host,
    node_image,
)
from harness.targets.kind.docker import Docker
from harness.targets.kind.images import ROLLOUTS_IMAGE, LocalImages, rollouts_install_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def target(tmp_path: Path) -> KindTarget:
    return KindTarget(
        load_settings(state_dir=tmp_path, namespace="demo"),
        versions=("1.2.3", "1.3.0"),
        analysis_tag="1.2.3",
    )


def _commands(target: KindTarget, **options: object) -> list[str]:
    return [str(step) for step in target.plan(**options)]  # type: ignore[arg-type]


def test_cluster_is_created_first_from_the_pinned_node_image(target: KindTarget) -> None:
    first = target.plan()[0].argv
    assert first[:3] == ("kind", "create", "cluster")
    assert first[first.index("--image") + 1] == versions.KIND_NODE_IMAGE
    assert "@sha256:" in versions.KIND_NODE_IMAGE
    assert first[first.index("--config") + 1] == str(target.config_file)
    assert first[first.index("--kubeconfig") + 1] == str(target.kubeconfig)


def test_a_node_image_built_here_is_the_one_kind_creates_the_cluster_from(
    target: KindTarget,
) -> None:
    first = target.plan(node_image_reference="bgh.local/kind-node:v1.34.12-abc")[0].argv
    assert first[first.index("--image") + 1] == "bgh.local/kind-node:v1.34.12-abc"


def test_every_kubectl_call_uses_the_targets_own_kubeconfig(target: KindTarget) -> None:
    kubectl_steps = [step.argv for step in target.plan() if step.argv[0] == "kubectl"]
    assert kubectl_steps
    assert all(argv[1] == f"--kubeconfig={target.kubeconfig}" for argv in kubectl_steps)


def test_rollouts_crds_are_applied_server_side(target: KindTarget) -> None:
    """Defect: a client-side apply of v1.10's CRDs exceeds the 262,144-byte last-applied
    annotation (argo-rollouts#4687)."""
    commands = _commands(target)
    install = next(c for c in commands if str(target.rollouts_manifest) in c)
    assert "apply -n argo-rollouts --server-side --force-conflicts -f" in install
    namespace_step = next(s for s in target.plan() if s.name == "namespace argo-rollouts")
    assert commands.index(str(namespace_step)) < commands.index(install)


def test_the_rollouts_manifest_names_the_release_image_and_a_loaded_one_is_not_pulled(
    tmp_path: Path,
) -> None:
    builder = node_image.NodeImageBuilder(
        Docker("docker", log_dir=tmp_path), cache_dir=tmp_path, report=lambda _line: None
    )
    upstream = rollouts_install_manifest(builder, loaded_image=False)
    loaded = rollouts_install_manifest(builder, loaded_image=True)
    for text in (upstream, loaded):
        assert f"image: {ROLLOUTS_IMAGE}" in text and "argo-rollouts:latest" not in text
    deployment = [d for d in yaml.safe_load_all(loaded) if d and d["kind"] == "Deployment"]
    (container,) = deployment[0]["spec"]["template"]["spec"]["containers"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert "imagePullPolicy: Always" in upstream
    assert len(upstream.encode()) > 262_144, "the reason for the server-side apply"


def test_istio_minimal_then_injection_in_the_demo_namespace(target: KindTarget) -> None:
    plan = target.plan()
    istio = next(s for s in plan if s.argv[0] == "istioctl")
    assert "--set profile=minimal -y" in str(istio)
    demo = next(s for s in plan if s.name == "namespace demo")
    assert json.loads(demo.stdin or "{}")["metadata"]["labels"] == {"istio-injection": "enabled"}
    assert plan.index(istio) < plan.index(demo)


def test_without_istio_its_crds_still_apply_so_the_chart_does(target: KindTarget) -> None:
    crds = Path("/cache/istio/crds/customresourcedefinitions.gen.yaml")
    commands = _commands(
        target, addons=Addons(istio=False, prometheus=False, argocd=False), istio_crds=crds
    )
    assert not any(c.startswith("istioctl") for c in commands)
    assert any(c.endswith(f"apply --server-side --force-conflicts -f {crds}") for c in commands)
    assert not any(versions.ARGO_CD_INSTALL in c or "prometheus" in c for c in commands)


def test_argocd_is_applied_server_side(target: KindTarget) -> None:
    argocd = next(c for c in _commands(target) if versions.ARGO_CD_INSTALL in c)
    assert "--server-side" in argocd and "-n argocd" in argocd
    assert f"/argo-cd/{versions.ARGO_CD}/manifests/install.yaml" in argocd


def test_loaded_images_go_in_right_after_the_cluster(target: KindTarget) -> None:
    plan = target.plan(loaded=("a:1", "b:2"))
    assert plan[1].argv[1:] == ("load", "docker-image", "a:1", "b:2", "--name", "bgh")


def test_one_image_per_service_and_version(target: KindTarget) -> None:
    assert [i.reference for i in target.images] == [
        f"ghcr.io/bluegreen-harness/{s}:{v}"
        for v in ("1.2.3", "1.3.0")
        for s in ("gateway-a", "service-b", "service-c")
    ]
    assert {i.version for i in target.images if i.reference.endswith(":1.3.0")} == {"1.3.0"}


def test_the_analysis_image_is_the_one_the_chart_runs_on_kind() -> None:
    values = yaml.safe_load((ROOT / "gitops/charts/analysis/values.yaml").read_text())
    assert values["analysis"]["server"]["image"] == KindTarget(load_settings()).analysis_image


def test_kind_config_maps_no_node_port_a_scenario_could_fight_over() -> None:
    """Defect: every scenario's gateway A asked for NodePorts 30300/30301 while the previous
    scenario's namespace was still being deleted ("port is already allocated")."""
    config = yaml.safe_load(CONFIG.read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    # Prometheus too is reached through kubectl proxy now (test_kind_prometheus.py).
    assert [node.get("extraPortMappings") for node in config["nodes"]] == [None, None]


def test_a_built_node_image_gets_one_node_no_default_cni_and_its_etcd_tag(
    target: KindTarget,
) -> None:
    config = target.cluster_config(built_node_image=True)
    assert config["nodes"] == [{"role": "control-plane"}]
    networking = config["networking"]
    assert isinstance(networking, dict) and networking["disableDefaultCNI"] is True
    assert networking["podSubnet"] == node_image.POD_SUBNET
    assert networking["serviceSubnet"] == node_image.SERVICE_SUBNET
    (patch,) = config["kubeadmConfigPatches"]  # type: ignore[misc]
    assert yaml.safe_load(patch)["etcd"]["local"]["imageTag"] == node_image.ETCD_TAG
    assert target.cluster_config(built_node_image=False)["nodes"][1] == {"role": "worker"}


def test_the_gateway_is_reached_through_the_api_servers_service_proxy(target: KindTarget) -> None:
    assert target.gateway_url("rb-1", "gateway-a-preview") == (
        "http://127.0.0.1:18001/api/v1/namespaces/rb-1/services/gateway-a-preview:http/proxy"
    )


def test_a_tool_of_another_version_is_refused_with_what_it_said(tmp_path: Path) -> None:
    """Defect: kind and istioctl versions were never checked, though the node image digest and
    the Istio manifests are only right with the pinned ones."""
    tool = tmp_path / "istioctl"
    tool.write_text("#!/bin/sh\necho 1.29.0\n")
    tool.chmod(0o755)
    with pytest.raises(ConfigError, match=r"must be version 1\.30\.3; .* says: 1\.29\.0"):
        check_version(str(tool), ("version",), versions.ISTIO)
    tool.write_text(f"#!/bin/sh\necho {versions.ISTIO}\n")
    check_version(str(tool), ("version",), versions.ISTIO)


def test_containerd_config_drops_fuse_overlayfs_and_pins_the_sandbox_image() -> None:
    kind_config = (
        '[proxy_plugins]\n[proxy_plugins."fuse-overlayfs"]\n  type = "snapshot"\n\n'
        '[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.10"\n'
        "  restrict_oom_score_adj = false\n"
    )
    text = node_image.containerd_config(kind_config)
    assert "fuse-overlayfs" not in text
    assert f'  sandbox_image = "registry.k8s.io/pause:{versions.PAUSE}"' in text
    assert "  restrict_oom_score_adj = true" in text


def test_the_runc_wrapper_drops_cap_sys_resource_from_bundles_and_process_files(
    tmp_path: Path,
) -> None:
    """The wrapper runs for real; the runc it then execs is `true` (runc itself needs a VM
    without the capability, which tests/kind and the runbooks on kind exercise)."""
    wrapper = docker_host.install_runtime_wrapper(tmp_path)
    wrapper.write_text(wrapper.read_text().replace(_runc_path(wrapper), "/bin/true"))
    capabilities = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = {"process": {"capabilities": {k: capabilities for k in ("bounding", "effective")}}}
    (bundle / "config.json").write_text(json.dumps(config))
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"permitted": capabilities}}))
    run = [sys.executable, str(wrapper), "--root", "/run/x", "--log-format", "json"]
    subprocess.run([*run, "create", "--bundle", str(bundle), "c1"], check=True)
    subprocess.run([*run, "exec", "--process", str(process), "c1"], check=True)
    kept = ["CAP_CHOWN", "CAP_NET_ADMIN"]
    written = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]
    assert written == {"bounding": kept, "effective": kept}
    assert json.loads(process.read_text())["capabilities"] == {"permitted": kept}


def _runc_path(wrapper: Path) -> str:
    match = re.search(r'^RUNC = "(.*)"$', wrapper.read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def test_kind_gets_every_version_the_runbooks_and_qa_deploy() -> None:
    """Runbooks release versions by name; on kind each must be an image loaded into the nodes."""
    named = set()
    for feature in (ROOT / "features").glob("*.feature"):
        named |= set(re.findall(r'version "(\d+\.\d+\.\d+)"', feature.read_text()))
    qa = yaml.safe_load((ROOT / "gitops" / "envs" / "qa_version.yaml").read_text())
    named |= {entry["version"] for entry in qa["services"].values()}
    assert named <= set(DEMO_VERSIONS), sorted(named - set(DEMO_VERSIONS))


def test_a_version_a_release_bumps_qa_to_is_built_and_loaded(tmp_path: Path) -> None:
    """Defect: kind loaded only 1.0.0, 1.1.0 and 1.2.0, so the release's kind run could not
    deploy the version it bumped QA to."""
    shutil.copytree(ROOT / "gitops", tmp_path / "gitops")
    qa = tmp_path / "gitops" / "envs" / "qa_version.yaml"
    qa.write_text(qa.read_text().replace("version: 1.0.0", "version: 2.4.0", 1))
    target = KindTarget(load_settings(state_dir=tmp_path, gitops_dir=tmp_path / "gitops"))
    versions = {image.version for image in target.images}
    assert versions == {*DEMO_VERSIONS, "2.4.0"}
    assert [i.reference for i in target.images if i.version == "2.4.0"] == [
        f"ghcr.io/bluegreen-harness/{s}:2.4.0" for s in ("gateway-a", "service-b", "service-c")
    ]


def test_each_image_is_built_with_the_build_arguments_services_builds_yaml_lists(
    tmp_path: Path,
) -> None:
    """services/builds.yaml read beside what the kind target hands `docker build`. Docker is the
    boundary that cannot run here (it is shared, and the kind suite builds for real): the client
    is a script that records its argv, so everything up to the docker command line is real."""
    table = yaml.safe_load((ROOT / "services" / "builds.yaml").read_text(encoding="utf-8"))
    greeted = {v for v, args in table["gateway-a"].items() if (args or {}).get("GREETING")}
    plain = {v for v, args in table["gateway-a"].items() if not (args or {}).get("GREETING")}
    assert greeted and plain, "the table should list a version with a greeting and one without"
    target = KindTarget(load_settings(state_dir=tmp_path), versions=sorted(greeted | plain))

    calls = tmp_path / "calls.jsonl"
    client = tmp_path / "docker"
    client.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    client.chmod(0o755)
    docker = Docker(str(client), log_dir=tmp_path / "logs")
    nodes = node_image.NodeImageBuilder(docker, cache_dir=tmp_path, report=lambda _line: None)
    images = LocalImages(nodes, services_dir=ROOT / "services", report=lambda _line: None)
    images.service_images(target.images, local_bases=False)

    built: dict[str, dict[str, str]] = {}
    for line in calls.read_text(encoding="utf-8").splitlines():
        argv = json.loads(line)
        assert argv[:3] == ["build", "-t", argv[2]] and argv[-1] == str(ROOT / "services")
        pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--build-arg"]
        built[argv[2]] = dict(pair.split("=", 1) for pair in pairs)
    assert set(built) == {i.reference for i in target.images}
    for version, args in table["gateway-a"].items():
        gateway = built[f"ghcr.io/bluegreen-harness/gateway-a:{version}"]
        assert gateway == {"SERVICE": "gateway-a", "VERSION": version, **(args or {})}
    for version in greeted:
        assert "GREETING" not in built[f"ghcr.io/bluegreen-harness/service-b:{version}"]
