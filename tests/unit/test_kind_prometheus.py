"""Prometheus on kind: the objects ``bgh up --target kind`` applies, the URLs the harness and the
charts are given, and how its images are keyed. Pure data, checked without Docker; the runbooks
marked ``@analysis`` run against it on kind."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import gitops, versions
from harness.gitops import GitOps
from harness.settings import load_settings
from harness.targets import scrape
from harness.targets.kind import KindTarget, binaries, prometheus
from harness.targets.kind.images import prometheus_reference, python_reference
from harness.targets.local.servers import _prometheus_config

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "bgh.local/prometheus:v2.42.0-0123456789ab"
# A Docker tag: https://docs.docker.com/reference/cli/docker/image/tag/
TAG = re.compile(r"^[\w][\w.-]{0,127}$")


def _objects() -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in prometheus.manifests(IMAGE, pull_policy="IfNotPresent")}


@pytest.fixture
def target(tmp_path: Path) -> KindTarget:
    return KindTarget(load_settings(state_dir=tmp_path, target="kind"), versions=("1.0.0",))


def test_prometheus_scrapes_at_the_local_targets_interval() -> None:
    config = yaml.safe_load(_objects()["ConfigMap"]["data"]["prometheus.yml"])
    local = _prometheus_config(Path("/targets.json"))
    assert config["global"] == local["global"]
    assert config["global"]["scrape_interval"] == f"{scrape.SCRAPE_INTERVAL_SECONDS}s"


def test_it_finds_the_annotated_pods_with_the_labels_the_local_data_plane_gives_them() -> None:
    """The analysis server selects on these labels (harness/dataplane/plane.py writes the same
    ones into the local target's file_sd targets)."""
    (job,) = prometheus.config()["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    relabel = job["relabel_configs"]
    keep = relabel[0]
    assert keep["action"] == "keep"
    assert keep["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
    targets = {r["target_label"] for r in relabel if "target_label" in r}
    assert targets == {
        "__address__",
        "__metrics_path__",
        "namespace",
        "pod",
        "app",
        "rollouts_pod_template_hash",
        "root_version",
    }
    port = next(r for r in relabel if r.get("target_label") == "__address__")
    assert re.sub(port["regex"], "\\1:\\2", "10.244.0.7:3000;9090") == "10.244.0.7:9090"
    assert re.sub(port["regex"], "\\1:\\2", "10.244.0.7;9090") == "10.244.0.7:9090"


PROMTOOL = binaries.PROMETHEUS.install_dir(load_settings().cache_dir / "kind") / "promtool"


@pytest.mark.skipif(
    not PROMTOOL.is_file(),
    reason=f"promtool of the pinned Prometheus is not built yet ({PROMTOOL}; bgh up --target kind "
    "builds it where images cannot be pulled)",
)
def test_promtool_of_the_pinned_release_accepts_the_config(tmp_path: Path) -> None:
    """Debian's promtool would refuse it: Debian builds Prometheus without Kubernetes service
    discovery, which is why the kind image is built from the Go module."""
    config = tmp_path / "prometheus.yml"
    config.write_text(_objects()["ConfigMap"]["data"]["prometheus.yml"])
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_its_service_account_may_only_read_pods() -> None:
    objects = _objects()
    assert objects["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"]
    account = objects["ServiceAccount"]["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]


def test_it_runs_as_a_numeric_non_root_user_on_a_read_only_root() -> None:
    deployment = _objects()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int)
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/prometheus", "/prometheus"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"


def test_the_in_cluster_url_is_its_service(target: KindTarget) -> None:
    objects = _objects()
    service = objects["Service"]
    (port,) = service["spec"]["ports"]
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert target.analysis_prometheus_url == f"http://{name}.{namespace}.svc:{port['port']}"
    assert service["spec"]["selector"].items() <= (
        objects["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_the_host_reaches_it_through_kubectl_proxy_on_loopback(target: KindTarget) -> None:
    service = _objects()["Service"]
    (port,) = service["spec"]["ports"]
    assert target.prometheus_url == (
        f"http://127.0.0.1:{target.settings.kind.proxy_port}/api/v1/namespaces/"
        f"{service['metadata']['namespace']}/services/{service['metadata']['name']}:"
        f"{port['name']}/proxy"
    )


def test_a_prometheus_url_in_the_settings_wins_on_the_host_only(tmp_path: Path) -> None:
    settings = load_settings(
        state_dir=tmp_path, target="kind", prometheus_url="http://127.0.0.1:9999"
    )
    target = KindTarget(settings, versions=("1.0.0",))
    assert target.prometheus_url == "http://127.0.0.1:9999"
    assert target.analysis_prometheus_url == prometheus.IN_CLUSTER_URL


def test_the_plan_applies_prometheus_server_side_and_waits_for_it(target: KindTarget) -> None:
    plan = target.plan()
    apply = next(s for s in plan if s.name == "Prometheus")
    assert apply.argv[-2:] == ("-f", str(target.prometheus_manifest))
    assert "--server-side" in apply.argv
    ready = next(s for s in plan if s.name == "Prometheus ready")
    assert f"deployment/{prometheus.NAME}" in ready.argv
    assert plan.index(apply) < plan.index(ready)
    assert not any("istio-system" in str(s) and "prometheus" in str(s) for s in plan)


@pytest.fixture(scope="module")
def helm() -> Path:
    return gitops.helm_binary(load_settings())


def test_the_chart_on_kind_reads_this_prometheus_over_a_window_of_four_scrapes(
    target: KindTarget, helm: Path
) -> None:
    objects = GitOps(ROOT / "gitops").render("qa", helm=helm, values=target.chart_values())
    templates = {o["metadata"]["name"]: o for o in objects if o["kind"] == "AnalysisTemplate"}
    error_rate = templates["bgh-error-rate"]["spec"]["metrics"][0]["provider"]["prometheus"]
    assert error_rate["address"] == prometheus.IN_CLUSTER_URL
    (server,) = (o for o in objects if o["kind"] == "Deployment")
    (container,) = server["spec"]["template"]["spec"]["containers"]
    assert f"--prometheus-url={prometheus.IN_CLUSTER_URL}" in container["args"]
    window = next(a for a in container["args"] if a.startswith("--window="))
    assert int(window.removeprefix("--window=").removesuffix("s")) >= (
        4 * scrape.SCRAPE_INTERVAL_SECONDS
    )


def test_the_prometheus_image_is_keyed_by_the_release_and_its_wrapper_module() -> None:
    reference = prometheus_reference(binaries.PROMETHEUS.key())
    assert reference.startswith(f"bgh.local/prometheus:{versions.PROMETHEUS}-")
    assert TAG.match(reference.rsplit(":", 1)[1])
    assert binaries.PROMETHEUS.version == versions.PROMETHEUS_MODULE
    assert prometheus_reference("000000000000") != reference


def test_the_python_base_is_keyed_by_the_locked_requirements() -> None:
    first = python_reference("numpy==2.4.6\n")
    assert first == python_reference("numpy==2.4.6\n")
    assert python_reference("numpy==2.4.7\n") != first
    assert TAG.match(first.rsplit(":", 1)[1])


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_the_pinned_upstream_image_is_the_release_the_local_target_runs() -> None:
    """Where images can be pulled, the kind target runs upstream's image of the release whose
    Debian package the local target runs (and the kind image is built from)."""
    said = subprocess.run(
        ["prometheus", "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert f"version {versions.PROMETHEUS.removeprefix('v')}+" in said.stdout + said.stderr
    assert versions.PROMETHEUS_IMAGE.endswith(f"/prometheus:{versions.PROMETHEUS}")
    # Prometheus's Go module versions are v0.<minor>.<patch> of the v2.<minor>.<patch> release.
    assert "v0." + versions.PROMETHEUS.split(".", 1)[1] == versions.PROMETHEUS_MODULE
