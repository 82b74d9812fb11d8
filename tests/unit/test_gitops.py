"""The GitOps tree rendered by the pinned Helm as Argo CD would, checked for meaning; version bumps.

Rendering runs the real Helm (built once from the module proxy and cached); nothing is faked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import gitops
from harness.errors import ConfigError, NotFound
from harness.git import commit
from harness.gitops import GitOps, problems
from harness.settings import load_settings

TREE = Path(__file__).parents[2] / "gitops"
ENVS = ("prod", "qa")


@pytest.fixture(scope="session")
def helm() -> Path:
    return gitops.helm_binary(load_settings())


@pytest.fixture
def tree(tmp_path: Path) -> GitOps:
    """A copy of the repository's tree, free to edit."""
    shutil.copytree(TREE, tmp_path / "gitops")
    return GitOps(tmp_path / "gitops")


def _by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_the_tree_has_both_environments() -> None:
    assert GitOps(TREE).environments() == list(ENVS)


@pytest.mark.parametrize("env", ENVS)
def test_environment_renders_without_problems(helm: Path, env: str) -> None:
    tree = GitOps(TREE)
    objects = tree.render(env, helm=helm)
    assert problems(objects, tree.read_versions(env)) == []
    kinds = sorted({o["kind"] for o in objects})
    # prod runs the analysis server, fenced in by its NetworkPolicy
    in_cluster = ["Deployment", "NetworkPolicy"] if env == "prod" else []
    expected = ["AnalysisTemplate", "Rollout", "Service", "VirtualService", *in_cluster]
    assert kinds == sorted(expected)


@pytest.mark.parametrize("env", ENVS)
def test_image_tags_and_root_version_are_the_version_files(helm: Path, env: str) -> None:
    tree = GitOps(TREE)
    versions = tree.read_versions(env)
    rollouts = _by_kind(tree.render(env, helm=helm), "Rollout")
    assert sorted(rollouts) == sorted(versions.services)
    for name, rollout in rollouts.items():
        template = rollout["spec"]["template"]
        images = [c["image"] for c in template["spec"]["containers"]]
        assert images == [f"ghcr.io/bluegreen-harness/{name}:{versions.services[name]}"]
        assert template["metadata"]["labels"]["root-version"] == versions.root_version


def test_rollouts_are_blue_green_with_manual_promotion_and_the_pod_basics(helm: Path) -> None:
    for name, rollout in _by_kind(GitOps(TREE).render("prod", helm=helm), "Rollout").items():
        blue_green = rollout["spec"]["strategy"]["blueGreen"]
        assert blue_green["autoPromotionEnabled"] is False
        # The role label the VirtualServices route on (Argo Rollouts ephemeral metadata).
        assert blue_green["previewMetadata"] == {"labels": {"role": "preview"}}
        assert blue_green["activeMetadata"] == {"labels": {"role": "active"}}
        assert (blue_green["activeService"], blue_green["previewService"]) == (
            name,
            f"{name}-preview",
        )
        assert blue_green["prePromotionAnalysis"]["templates"] == [{"templateName": "bgh-judge"}]
        args = {a["name"]: a.get("valueFrom") for a in blue_green["prePromotionAnalysis"]["args"]}
        assert args["preview-hash"] == {"podTemplateHashValue": "Latest"}
        assert args["active-hash"] == {"podTemplateHashValue": "Stable"}
        pod = rollout["spec"]["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["resources"]["requests"]


def test_virtual_services_send_only_preview_pods_of_the_new_root_version_to_preview(
    helm: Path,
) -> None:
    tree = GitOps(TREE)
    root_version = tree.read_versions("qa").root_version
    preview_callers = {"root-version": root_version, "role": "preview"}
    services = _by_kind(tree.render("qa", helm=helm), "VirtualService")
    assert sorted(services) == ["service-b", "service-c"]
    b = services["service-b"]["spec"]["http"]
    assert b[0]["match"] == [{"sourceLabels": preview_callers}]
    assert b[0]["route"][0]["destination"]["host"] == "service-b-preview"
    assert b[1]["route"][0]["destination"]["host"] == "service-b"
    c = services["service-c"]["spec"]["tcp"]
    assert c[0]["match"][0]["sourceLabels"] == preview_callers
    assert c[0]["route"][0]["destination"]["host"] == "service-c-preview"


def test_analysis_templates_are_the_web_judge_and_a_prometheus_example(helm: Path) -> None:
    templates = _by_kind(GitOps(TREE).render("qa", helm=helm), "AnalysisTemplate")
    judge = templates["bgh-judge"]["spec"]["metrics"][0]
    assert judge["provider"]["web"]["jsonPath"] == "{$.phase}"
    assert (
        "preview={{args.preview-hash}}&active={{args.active-hash}}"
        in (judge["provider"]["web"]["url"])
    )
    assert (judge["successCondition"], judge["failureCondition"]) == (
        'result == "Successful"',
        'result == "Failed"',
    )
    error_rate = templates["bgh-error-rate"]["spec"]
    assert [a["name"] for a in error_rate["args"]] == ["service", "preview-hash", "active-hash"]
    assert "prometheus" in error_rate["metrics"][0]["provider"]


def test_post_promotion_runs_the_template_the_version_file_chooses(
    helm: Path, tree: GitOps
) -> None:
    """bgh-error-rate by default; bgh-latency bounds the release's p95 latency, and no data
    (an empty vector, NaN) meets neither condition: Inconclusive, never a pass."""
    tree.set_values("qa", {"analysis.postPromotion": True})
    rollouts = _by_kind(tree.render("qa", helm=helm), "Rollout")
    post = rollouts["service-b"]["spec"]["strategy"]["blueGreen"]["postPromotionAnalysis"]
    assert post["templates"] == [{"templateName": "bgh-error-rate"}]
    tree.set_values("qa", {"analysis.postPromotionTemplate": "bgh-latency"})
    objects = tree.render("qa", helm=helm)
    assert problems(objects, tree.read_versions("qa")) == []
    for rollout in _by_kind(objects, "Rollout").values():
        post = rollout["spec"]["strategy"]["blueGreen"]["postPromotionAnalysis"]
        assert post["templates"] == [{"templateName": "bgh-latency"}]
    (metric,) = _by_kind(objects, "AnalysisTemplate")["bgh-latency"]["spec"]["metrics"]
    assert (metric["successCondition"], metric["failureCondition"]) == (
        "len(result) > 0 && result[0] <= 0.25",
        "len(result) > 0 && result[0] > 0.25",
    )
    assert metric["initialDelay"] == "20s"
    assert (
        'rollouts_pod_template_hash="{{args.preview-hash}}"'
        in (metric["provider"]["prometheus"]["query"])
    )


def test_a_services_own_faults_win_over_the_environments(helm: Path, tree: GitOps) -> None:
    tree.set_values("qa", {"faults.errorRate": "0.1", "services.gateway-a.faults.latencyMs": "300"})
    faults = {}
    for name, rollout in _by_kind(tree.render("qa", helm=helm), "Rollout").items():
        env = {
            e["name"]: e.get("value")
            for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        faults[name] = (env["FAULT_ERROR_RATE"], env["FAULT_LATENCY_MS"])
    assert faults == {
        "gateway-a": ("0.1", "300"),
        "service-b": ("0.1", "0"),
        "service-c": ("0.1", "0"),
    }


@pytest.mark.parametrize(
    ("env", "flavour"), [("prod", "default"), ("qa", "kind"), ("prod", "kind")]
)
def test_the_analysis_server_runs_in_the_cluster_and_the_judge_calls_it_there(
    helm: Path, env: str, flavour: str
) -> None:
    objects = GitOps(TREE).render(env, helm=helm, values={"flavour": flavour})
    (deployment,) = _by_kind(objects, "Deployment").values()
    service = _by_kind(objects, "Service")["bgh-analysis"]
    assert deployment["metadata"]["name"] == "bgh-analysis"
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels
    assert service["spec"]["selector"].items() <= labels
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "ghcr.io/bluegreen-harness/analysis:dev"
    (port,) = container["ports"]
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    templates = _by_kind(objects, "AnalysisTemplate")
    url = templates["bgh-judge"]["spec"]["metrics"][0]["provider"]["web"]["url"]
    assert url.startswith(f"http://bgh-analysis.demo.svc:{service_port['port']}/judge?")
    prometheus = templates["bgh-error-rate"]["spec"]["metrics"][0]["provider"]["prometheus"]
    assert f"--prometheus-url={prometheus['address']}" in container["args"]
    assert prometheus["address"] == (
        "http://prometheus.monitoring.svc:9090"  # the one bgh up --target kind runs
        if flavour == "kind"
        else "http://prometheus.istio-system.svc:9090"  # production's own, its version file
    )


@pytest.mark.parametrize(
    ("env", "flavour"), [("prod", "default"), ("qa", "kind"), ("prod", "kind")]
)
def test_only_the_rollouts_controller_may_call_the_analysis_server(
    helm: Path, env: str, flavour: str
) -> None:
    objects = GitOps(TREE).render(env, helm=helm, values={"flavour": flavour})
    (policy,) = _by_kind(objects, "NetworkPolicy").values()
    server = _by_kind(objects, "Deployment")["bgh-analysis"]["spec"]["template"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= server["metadata"]["labels"].items()
    for rollout in _by_kind(objects, "Rollout").values():  # the demo pods are not fenced in
        assert not selector.items() <= rollout["spec"]["template"]["metadata"]["labels"].items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    # One peer holding both selectors: pods with that label *in* that namespace. Two peers
    # would admit either, i.e. every pod of the controller's namespace or any namespace.
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "argo-rollouts"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "argo-rollouts"}},
        }
    ]
    (container,) = server["spec"]["containers"]
    assert rule["ports"] == [{"protocol": "TCP", "port": container["ports"][0]["name"]}]


def test_on_the_local_target_qa_calls_the_targets_own_server_and_prometheus(
    helm: Path, tmp_path: Path
) -> None:
    """The ports are those `bgh up` picked and recorded, not the ones the version file names."""
    from harness.settings import load_settings
    from harness.targets.local import LocalTarget

    target = LocalTarget(load_settings(state_dir=tmp_path))
    target.state.file.parent.mkdir(parents=True)
    target.state.write({"analysis_port": 23456, "prometheus_port": 23457})
    objects = GitOps(TREE).render("qa", helm=helm, values=target.chart_values())
    assert "Deployment" not in {o["kind"] for o in objects}
    assert "bgh-analysis" not in _by_kind(objects, "Service")
    templates = _by_kind(objects, "AnalysisTemplate")
    url = templates["bgh-judge"]["spec"]["metrics"][0]["provider"]["web"]["url"]
    assert url.startswith("http://127.0.0.1:23456/judge?")
    prometheus = templates["bgh-error-rate"]["spec"]["metrics"][0]["provider"]["prometheus"]
    assert prometheus["address"] == "http://127.0.0.1:23457"


@pytest.mark.parametrize("flavour", ["default", "kind"])
def test_no_service_asks_for_a_node_port(helm: Path, flavour: str) -> None:
    """NodePorts are one range for the whole cluster: two scenarios' gateway A asking for the
    same one collide while the previous namespace is still being deleted."""
    objects = GitOps(TREE).render("qa", helm=helm, values={"flavour": flavour})
    services = _by_kind(objects, "Service")
    assert {"gateway-a", "gateway-a-preview", "service-b"} <= services.keys()
    for name, service in services.items():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
        assert all("nodePort" not in port for port in service["spec"]["ports"]), name


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_has_its_own_root_over_its_own_apps_alone(env: str) -> None:
    """Defect: one root recursing into gitops/apps put production's Applications, whose
    destination cluster the QA Argo CD does not know, in error there."""
    root = GitOps(TREE).root_application(env)
    assert root["metadata"]["name"] == f"bluegreen-demo-{env}"
    assert root["spec"]["source"]["path"] == f"gitops/apps/{env}"
    assert "directory" not in root["spec"]["source"], "no recursion into other environments"
    assert sorted(p.name for p in (TREE / "app-of-apps").iterdir()) == [
        "root-prod.yaml",
        "root-qa.yaml",
    ]


def test_the_root_app_manages_one_child_per_service_and_environment() -> None:
    tree = GitOps(TREE)
    for env in ENVS:
        root = tree.root_application(env)
        apps = tree.applications(env)
        assert sorted(a.name for a in apps) == [
            f"{env}-{s}" for s in ("analysis", "gateway-a", "service-b", "service-c")
        ]
        for app in apps:
            assert app.value_files == (tree.version_file(env).resolve(),)
        for obj in tree.application_objects(env):
            assert obj["spec"]["source"]["repoURL"] == root["spec"]["source"]["repoURL"]


def test_problems_names_what_is_wrong(helm: Path, tree: GitOps) -> None:
    objects = tree.render("qa", helm=helm)
    rollouts = _by_kind(objects, "Rollout")
    rollouts["service-b"]["spec"]["strategy"]["blueGreen"]["autoPromotionEnabled"] = True
    rollouts["service-c"]["spec"]["strategy"]["blueGreen"]["previewService"] = "service-c-pre"
    rollouts["gateway-a"]["spec"]["template"]["spec"]["containers"][0]["image"] = "x/gateway-a:9"
    objects = [o for o in objects if (o["kind"], o["metadata"]["name"]) != ("Service", "service-b")]
    assert problems(objects, tree.read_versions("qa")) == [
        "Rollout gateway-a: images ['x/gateway-a:9'], but qa_version.yaml says 1.0.0",
        "Rollout service-b: autoPromotionEnabled must be false (manual promotion)",
        "Rollout service-b: activeService service-b is not a rendered Service",
        "Rollout service-c: previewService service-c-pre is not a rendered Service",
        "VirtualService service-b: host service-b is not a Service",
        "VirtualService service-b: destination service-b is not a Service",
    ]


def test_an_application_naming_an_unknown_service_does_not_render(helm: Path, tree: GitOps) -> None:
    app = tree.root / "apps" / "qa" / "service-b.yaml"
    app.write_text(app.read_text().replace("value: service-b", "value: service-x"))
    with pytest.raises(ConfigError, match='unknown service "service-x"; known: gateway-a, '):
        tree.render("qa", helm=helm)


# -- bump ------------------------------------------------------------------------------------


def test_bump_changes_the_one_value_and_keeps_every_other_byte(tree: GitOps) -> None:
    file = tree.version_file("qa")
    before = file.read_text()
    change = tree.bump("qa", "service-b", "1.1.0")
    after = file.read_text()
    assert after == change.after
    assert after == before.replace(
        "  service-b:\n    version: 1.0.0\n", "  service-b:\n    version: 1.1.0\n"
    )
    assert "-    version: 1.0.0\n+    version: 1.1.0\n" in change.diff
    assert tree.read_versions("qa").services["service-b"] == "1.1.0"


def test_bump_with_a_root_version_changes_exactly_two_lines(tree: GitOps) -> None:
    before = tree.version_file("prod").read_text().splitlines()
    tree.bump("prod", "service-c", "1.2.0-rc.1", root_version="v2.2.0")
    after = tree.version_file("prod").read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        ("rootVersion: v2.0.0", "rootVersion: v2.2.0"),
        ("    version: 1.0.0", "    version: 1.2.0-rc.1"),
    ]


def test_bump_keeps_quoting_and_an_unchanged_value_is_no_change(tree: GitOps) -> None:
    file = tree.version_file("qa")
    file.write_text(file.read_text().replace("rootVersion: v2.1.0", 'rootVersion: "v2.1.0"'))
    tree.bump("qa", "service-b", "1.0.0", root_version="v3.0.0")
    assert 'rootVersion: "v3.0.0"  ' not in file.read_text()
    assert 'rootVersion: "v3.0.0"\n' in file.read_text()
    again = tree.bump("qa", "service-b", "1.0.0", root_version="v3.0.0")
    assert not again.changed and again.diff == ""


def test_dry_run_shows_the_diff_and_writes_nothing(tree: GitOps) -> None:
    before = tree.version_file("qa").read_text()
    change = tree.bump("qa", "gateway-a", "2.0.0", write=False)
    assert change.changed and "+    version: 2.0.0" in change.diff
    assert tree.version_file("qa").read_text() == before


def test_bump_refuses_an_unknown_environment_naming_the_known_ones(tree: GitOps) -> None:
    with pytest.raises(NotFound, match=r'unknown environment "staging"; known: prod, qa \(files '):
        tree.bump("staging", "service-b", "1.1.0")


def test_bump_refuses_an_unknown_service_naming_the_known_ones(tree: GitOps) -> None:
    message = (
        r'unknown service "service-x" in .*qa_version.yaml; '
        r"known: gateway-a, service-b, service-c\."
    )
    with pytest.raises(NotFound, match=message):
        tree.bump("qa", "service-x", "1.1.0")


@pytest.mark.parametrize("version", ["1.1", "v1.1.0", "1.1.0+build", "01.1.0", "1.1.0\n", ""])
def test_bump_refuses_a_malformed_version(tree: GitOps, version: str) -> None:
    before = tree.version_file("qa").read_text()
    message = re.escape(f'malformed version "{version}"; expected MAJOR.MINOR.PATCH')
    with pytest.raises(ConfigError, match=message):
        tree.bump("qa", "service-b", version)
    assert tree.version_file("qa").read_text() == before


@pytest.mark.parametrize("root_version", ["2.2.0", "v2.2", "v2.2.0_x"])
def test_bump_refuses_a_malformed_root_version(tree: GitOps, root_version: str) -> None:
    with pytest.raises(ConfigError, match=f'malformed root version "{root_version}"; expected v'):
        tree.bump("qa", "service-b", "1.1.0", root_version=root_version)


def test_commit_takes_the_version_file_alone(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(TREE, repo / "gitops")

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *argv], capture_output=True, text=True, check=True
        ).stdout

    git("init", "--quiet")
    git("config", "user.email", "release@example.com")
    git("config", "user.name", "Release")
    git("add", ".")
    git("commit", "--quiet", "-m", "tree")
    (repo / "other.txt").write_text("staged, not part of the bump\n")
    git("add", "other.txt")
    change = GitOps(repo / "gitops").bump("qa", "service-b", "1.1.0")
    commit(change)
    assert git("log", "-1", "--format=%s") == "qa: service-b 1.1.0\n"
    assert git("show", "--name-only", "--format=", "HEAD") == "gitops/envs/qa_version.yaml\n"
    assert git("diff", "--cached", "--name-only") == "other.txt\n"


def test_version_files_are_plain_yaml_values() -> None:
    for env in ENVS:
        data = yaml.safe_load(GitOps(TREE).version_file(env).read_text())
        assert set(data) == {"rootVersion", "greeting", "services", "analysis"}


CHRISTMAS = "Hello 크리스마스 🎄"


def test_a_utf8_greeting_round_trips_from_the_version_file_to_gateway_a(
    helm: Path, tree: GitOps
) -> None:
    before = tree.version_file("qa").read_text(encoding="utf-8")
    change = tree.bump("qa", greeting=CHRISTMAS)
    after = tree.version_file("qa").read_text(encoding="utf-8")
    assert after == before.replace('greeting: ""\n', f'greeting: "{CHRISTMAS}"\n')
    assert change.message == f"qa: greeting {CHRISTMAS!r}"
    assert tree.read_versions("qa").greeting == CHRISTMAS
    rollouts = _by_kind(tree.render("qa", helm=helm), "Rollout")
    env = {e["name"]: e.get("value") for e in
           rollouts["gateway-a"]["spec"]["template"]["spec"]["containers"][0]["env"]}  # fmt: skip
    assert env["GREETING"] == CHRISTMAS
    for name in ("service-b", "service-c"):
        containers = rollouts[name]["spec"]["template"]["spec"]["containers"]
        assert "GREETING" not in {e["name"] for e in containers[0]["env"]}


def test_without_an_override_gateway_a_shows_its_builds_own_greeting(helm: Path) -> None:
    """An empty greeting in the version file passes no GREETING: the image's own decides."""
    for env in ENVS:
        rollouts = _by_kind(GitOps(TREE).render(env, helm=helm), "Rollout")
        (container,) = rollouts["gateway-a"]["spec"]["template"]["spec"]["containers"]
        assert "GREETING" not in {e["name"] for e in container["env"]}


def test_every_service_takes_traffic_on_3000_and_is_scraped_on_9090(helm: Path) -> None:
    objects = GitOps(TREE).render("qa", helm=helm)
    for name, rollout in _by_kind(objects, "Rollout").items():
        template = rollout["spec"]["template"]
        (container,) = template["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert list(ports.values()) == [3000, 9090], name
        assert template["metadata"]["annotations"]["prometheus.io/port"] == "9090", name
        assert container["readinessProbe"]["httpGet"]["port"] == 9090, name
    for name, service in _by_kind(objects, "Service").items():
        if name.startswith(("gateway-a", "service-b", "service-c")):
            targets = [p["targetPort"] for p in service["spec"]["ports"]]
            assert targets == [3000, 9090], name


def test_the_pod_template_carries_no_version_env_the_image_does(helm: Path) -> None:
    """`kubectl argo rollouts set image` must change the version the service reports."""
    for rollout in _by_kind(GitOps(TREE).render("qa", helm=helm), "Rollout").values():
        (container,) = rollout["spec"]["template"]["spec"]["containers"]
        assert "VERSION" not in {e["name"] for e in container["env"]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to change"),
        ({"service": "service-b"}, "give a service and its version together"),
        ({"greeting": "  "}, "expected one non-empty line of text"),
        ({"greeting": "two\nlines"}, "expected one non-empty line of text"),
    ],
)
def test_bump_refuses_what_it_cannot_write(
    tree: GitOps, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        tree.bump("qa", **kwargs)


def test_the_judge_waits_a_window_and_judges_the_rollouts_own_namespace(helm: Path) -> None:
    objects = GitOps(TREE).render("prod", helm=helm, namespace="shop")
    rollout = _by_kind(objects, "Rollout")["service-b"]
    args = rollout["spec"]["strategy"]["blueGreen"]["prePromotionAnalysis"]["args"]
    assert {"name": "namespace", "value": "shop"} in args
    (metric,) = _by_kind(objects, "AnalysisTemplate")["bgh-judge"]["spec"]["metrics"]
    assert metric["initialDelay"] == "360s"
    assert "&namespace={{args.namespace}}&window=300s" in metric["provider"]["web"]["url"]


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * (60 if duration.endswith("m") else 1)


@pytest.mark.parametrize(("env", "flavour"), [("qa", "kind"), ("prod", "kind"), ("qa", "default")])
def test_the_judge_window_spans_four_scrapes_of_the_targets_prometheus(
    helm: Path, env: str, flavour: str
) -> None:
    """Defect: on kind Prometheus scrapes every 15 s, so QA's 30 s window held two samples at
    best and a rate over it was often empty: Inconclusive. The window is at least four scrape
    intervals (5 s on the local target), and the one measurement waits a whole window."""
    values = yaml.safe_load((TREE / "charts" / "analysis" / "values.yaml").read_text())
    scrape = _seconds(values["kind"]["scrapeInterval"]) if flavour == "kind" else 5
    objects = GitOps(TREE).render(env, helm=helm, values={"flavour": flavour})
    metric = _by_kind(objects, "AnalysisTemplate")["bgh-judge"]["spec"]["metrics"][0]
    window = _seconds(metric["provider"]["web"]["url"].rsplit("&window=", 1)[1])
    assert window >= 4 * scrape
    assert _seconds(metric["initialDelay"]) >= window
    configured = {
        **values["analysis"],
        **yaml.safe_load((TREE / "envs" / f"{env}_version.yaml").read_text())["analysis"],
    }
    assert window >= _seconds(configured["window"]), "a longer configured window is kept"
    servers = _by_kind(objects, "Deployment")
    for server in servers.values():
        (container,) = server["spec"]["template"]["spec"]["containers"]
        assert f"--window={window}s" in container["args"]


def test_sync_wave_comments_promise_no_order_argo_cd_does_not_give() -> None:
    """Defect: a comment said the analysis Application syncs "before the Rollouts"; Argo CD has
    no health check for Application objects since 1.8, so waves of Applications only order
    their creation. Every commented wave on an Application says so."""
    checked = 0
    for file in sorted((TREE / "apps").glob("*/*.yaml")):
        lines = file.read_text().splitlines()
        for i, line in enumerate(lines):
            if "argocd.argoproj.io/sync-wave" not in line or not lines[i - 1].strip().startswith(
                "#"
            ):
                continue
            comment = []
            j = i - 1
            while lines[j].strip().startswith("#"):
                comment.insert(0, lines[j].strip("# "))
                j -= 1
            text = " ".join(comment)
            assert "no health" in text and "does not wait" in text, f"{file}: {text}"
            checked += 1
    assert checked == 2, "the analysis Application's wave, in qa and prod"
    docs = (TREE.parent / "docs" / "gitops.md").read_text()
    assert "removed the health assessment of Application" in docs
