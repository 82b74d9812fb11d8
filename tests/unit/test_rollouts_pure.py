"""Pure pieces of the Rollouts operations: image repositories, set-image edits, template match."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import NotFound
from harness.rollouts import _derivative, _repository, _with_image


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("ghcr.io/org/service-b:1.0.0", "ghcr.io/org/service-b"),
        ("registry:5000/app:1.0", "registry:5000/app"),
        ("registry:5000/app", "registry:5000/app"),
        ("app@sha256:abc", "app"),
        ("busybox", "busybox"),
    ],
)
def test_repository_drops_only_the_tag_and_digest(image: str, repository: str) -> None:
    assert _repository(image) == repository


def rollout(**pod_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "b"}, "spec": {"template": {"spec": pod_spec}}}


def test_set_image_touches_every_container_of_that_name_and_no_other() -> None:
    raw = rollout(
        initContainers=[{"name": "app", "image": "a:1"}],
        containers=[{"name": "app", "image": "a:1"}, {"name": "side", "image": "s:1"}],
    )
    updated = _with_image(raw, "app", "a:2")
    spec = updated["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["initContainers"] + spec["containers"]] == [
        "a:2",
        "a:2",
        "s:1",
    ]
    assert raw["spec"]["template"]["spec"]["containers"][0]["image"] == "a:1"  # input untouched


def test_set_image_star_means_every_container() -> None:
    raw = rollout(containers=[{"name": "x", "image": "x:1"}, {"name": "y", "image": "y:1"}])
    spec = _with_image(raw, "*", "z:9")["spec"]["template"]["spec"]
    assert {c["image"] for c in spec["containers"]} == {"z:9"}


def test_set_image_on_an_unknown_container_names_the_ones_there() -> None:
    raw = rollout(containers=[{"name": "app", "image": "a:1"}])
    with pytest.raises(NotFound, match=r'unable to find container named "web".*containers: app'):
        _with_image(raw, "web", "a:2")


def test_template_match_ignores_fields_the_rollout_leaves_unset() -> None:
    rollout_template = {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}
    replica_set_template = {
        "spec": {
            "containers": [{"name": "app", "image": "a:1", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always",
        }
    }
    assert _derivative(rollout_template, replica_set_template)
    changed = {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}
    assert not _derivative(changed, replica_set_template)
    assert not _derivative({"spec": {"containers": []}} | {"x": [1, 2]}, {"x": [1]})
