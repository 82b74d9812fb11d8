"""A Rollout defined in code: its fields in upstream's words, and errors naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bluegreen import FIELDS, BlueGreen, field_patch, is_schedulable, parse_labels
from harness.errors import ConfigError
from harness.kubectl import Kubectl


def test_fields_go_where_upstream_has_them() -> None:
    web = BlueGreen(
        "web",
        "1.1.0",
        {
            "autoPromotionSeconds": "8",
            "progressDeadlineAbort": "true",
            "revisionHistoryLimit": "2",
            "previewMetadata": "role=preview, tier=web",
        },
    )
    active, preview, rollout = web.objects()
    assert (active["metadata"]["name"], preview["metadata"]["name"]) == (
        "web-active",
        "web-preview",
    )
    spec = rollout["spec"]
    assert (spec["progressDeadlineAbort"], spec["revisionHistoryLimit"]) == (True, 2)
    assert spec["strategy"]["blueGreen"] == {
        "activeService": "web-active",
        "previewService": "web-preview",
        "autoPromotionEnabled": False,
        "autoPromotionSeconds": 8,
        "previewMetadata": {"labels": {"role": "preview", "tier": "web"}},
    }
    assert spec["template"]["spec"]["containers"][0]["image"].endswith("service-b:1.1.0")


def test_an_unknown_field_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        BlueGreen("web", fields={"autoPromotionSecond": "8"})
    assert "unknown field(s) autoPromotionSecond" in str(caught.value)
    assert "autoPromotionSeconds" in str(caught.value) and len(FIELDS) > 5


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("autoPromotionSeconds", "8s", "not a whole number"),
        ("progressDeadlineAbort", "yes", "expected true or false"),
        ("activeMetadata", "role", "expected role=active"),
    ],
)
def test_a_bad_value_is_refused_before_anything_is_applied(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        BlueGreen("web", fields={name: value})


def test_a_table_without_its_header_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\| field \| value \|"):
        BlueGreen.from_table("web", "1.0.0", [["autoPromotionSeconds", "8"]])
    table = [["field", "value"], ["autoPromotionSeconds", "8"]]
    assert BlueGreen.from_table("web", "1.0.0", table).fields == {"autoPromotionSeconds": "8"}


def test_labels_parse_and_a_bad_one_shows_the_form() -> None:
    assert parse_labels("role=active") == {"role": "active"}
    with pytest.raises(ConfigError, match="role=active"):
        parse_labels("role:active")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [", "not valid YAML"),
        ("- just\n- a list\n", "document 1 is not a Kubernetes object"),
        ("---\n", "no object to apply"),
    ],
)
def test_a_manifest_that_is_not_objects_is_refused_before_kubectl_runs(
    tmp_path: Path, text: str, expected: str
) -> None:
    """kubectl here is a path that does not exist: reaching it would be an OSError instead."""
    kubectl = Kubectl(tmp_path / "no-kubectl", kubeconfig=None, context=None)
    with pytest.raises(ConfigError, match=expected):
        kubectl.apply_manifest(text, namespace="demo", source="template.yaml")


def test_an_analysis_field_runs_a_template_that_passes_or_fails_through_prometheus() -> None:
    web = BlueGreen("web", fields={"postPromotionAnalysis": "fails"})
    template, _, _, rollout = web.objects(prometheus_url="http://127.0.0.1:19090")
    assert rollout["spec"]["strategy"]["blueGreen"]["postPromotionAnalysis"] == {
        "templates": [{"templateName": "fails"}]
    }
    assert template["kind"] == "AnalysisTemplate"
    assert template["metadata"]["name"] == "fails"
    (metric,) = template["spec"]["metrics"]
    assert metric["successCondition"] == "result[0] == 0"
    assert metric["provider"]["prometheus"]["address"] == "http://127.0.0.1:19090"


def test_an_analysis_field_may_say_when_it_measures() -> None:
    web = BlueGreen("web", fields={"prePromotionAnalysis": "fails after 20s"})
    template, _, _, rollout = web.objects(prometheus_url="http://127.0.0.1:19090")
    assert rollout["spec"]["strategy"]["blueGreen"]["prePromotionAnalysis"] == {
        "templates": [{"templateName": "fails-after-20s"}]
    }
    assert template["metadata"]["name"] == "fails-after-20s"
    (metric,) = template["spec"]["metrics"]
    assert (metric["initialDelay"], metric["successCondition"]) == ("20s", "result[0] == 0")
    with pytest.raises(ConfigError, match=r"e\.g\. fails after 20s"):
        BlueGreen("web", fields={"prePromotionAnalysis": "fails after 2m"})


def test_an_analysis_field_needs_an_outcome_and_a_prometheus() -> None:
    with pytest.raises(ConfigError, match="expected passes or fails"):
        BlueGreen("web", fields={"prePromotionAnalysis": "maybe"})
    with pytest.raises(ConfigError, match="this target has none"):
        BlueGreen("web", fields={"prePromotionAnalysis": "passes"}).objects()


def test_anti_affinity_is_one_of_upstreams_two_kinds_of_rule() -> None:
    rollout = BlueGreen("web", fields={"antiAffinity": "preferred"}).objects()[-1]
    assert rollout["spec"]["strategy"]["blueGreen"]["antiAffinity"] == {
        "preferredDuringSchedulingIgnoredDuringExecution": {"weight": 100}
    }
    with pytest.raises(ConfigError, match="expected required or preferred"):
        BlueGreen("web", fields={"antiAffinity": "always"})


@pytest.mark.parametrize(
    ("spec", "schedulable"),
    [
        ({}, True),
        ({"unschedulable": True}, False),
        ({"taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]}, False),
        ({"taints": [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]}, False),
        ({"taints": [{"key": "example.com/soft", "effect": "PreferNoSchedule"}]}, True),
    ],
)
def test_a_node_is_schedulable_unless_cordoned_or_tainted_against_new_pods(
    spec: dict[str, object], schedulable: bool
) -> None:
    assert is_schedulable({"metadata": {"name": "n"}, "spec": spec}) is schedulable


def test_a_field_patch_puts_each_field_where_upstream_has_it() -> None:
    assert field_patch("web", "prePromotionAnalysis", "passes") == {
        "spec": {"strategy": {"blueGreen": {"prePromotionAnalysis": {
            "templates": [{"templateName": "passes"}]}}}}
    }  # fmt: skip
    assert field_patch("web", "progressDeadlineSeconds", "5") == {
        "spec": {"progressDeadlineSeconds": 5}
    }


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("prePromotion", "passes", r"unknown field prePromotion; expected one of"),
        ("prePromotionAnalysis", "maybe", r"'maybe' is not an outcome"),
    ],
)
def test_a_field_patch_refuses_what_upstream_has_not(field: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        field_patch("web", field, text)
