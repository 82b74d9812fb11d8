"""Pure pieces of the Rollouts operations: image repositories, set-image edits, template match."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import HarnessError, NotFound
from harness.rollouts import _derivative, _drop_ephemeral_metadata, _repository, _with_image


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


def test_undo_without_ephemeral_metadata_leaves_out_only_what_the_controller_recorded() -> None:
    template: dict[str, Any] = {
        "metadata": {
            "labels": {"app": "service-b", "role": "active", "root-version": "v2.1.0"},
            "annotations": {"note": "kept", "shadow": "x"},
        },
        "spec": {"containers": [{"name": "app", "image": "b:1.0.0"}]},
    }
    _drop_ephemeral_metadata(
        template, '{"labels": {"role": "active"}, "annotations": {"shadow": "x"}}'
    )
    assert template["metadata"] == {
        "labels": {"app": "service-b", "root-version": "v2.1.0"},
        "annotations": {"note": "kept"},
    }
    # The original template after the controller's metadata is gone: same as the Rollout's.
    assert _derivative(
        {"metadata": {"labels": {"app": "service-b", "root-version": "v2.1.0"}}}, template
    )


def test_undo_names_ephemeral_metadata_that_is_not_json() -> None:
    with pytest.raises(HarnessError, match="ephemeral-metadata is not JSON: 'role=active'"):
        _drop_ephemeral_metadata({"metadata": {}}, "role=active")
