"""Which CRDs the local target reads, and how a CRD's state reads, without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import TargetError
from harness.kube import CUSTOM_RESOURCE_DEFINITION, ROLLOUT, crd_from
from harness.targets.local import crds


def _crd(name: str, kind: str) -> dict[str, object]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"names": {"kind": kind}},
    }


@pytest.fixture
def istio_like(tmp_path: Path) -> Path:
    """One file of several CRDs, as Istio ships them."""
    documents = [
        _crd("wasmplugins.extensions.istio.io", "WasmPlugin"),
        _crd("virtualservices.networking.istio.io", "VirtualService"),
        _crd("gateways.networking.istio.io", "Gateway"),
        _crd("destinationrules.networking.istio.io", "DestinationRule"),
    ]
    (tmp_path / "customresourcedefinitions.gen.yaml").write_text(
        "# generated\n" + yaml.safe_dump_all(documents)
    )
    return tmp_path


def test_only_the_named_crds_are_read_in_the_order_named(istio_like: Path) -> None:
    read = crds.read("Istio", istio_like, only=crds.ISTIO_NEEDED)
    assert read.names == crds.ISTIO_NEEDED


def test_a_named_crd_the_files_lack_is_an_error_naming_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(_crd("gateways.networking.istio.io", "G")))
    with pytest.raises(TargetError) as caught:
        crds.read("Istio v1", tmp_path, only=crds.ISTIO_NEEDED)
    message = str(caught.value)
    assert "virtualservices.networking.istio.io, destinationrules" in message
    assert "it has gateways.networking.istio.io" in message


def test_every_crd_of_every_file_is_read_without_only(tmp_path: Path) -> None:
    (tmp_path / "a-crd.yaml").write_text(yaml.safe_dump(_crd("rollouts.argoproj.io", "Rollout")))
    (tmp_path / "b-crd.yaml").write_text(
        yaml.safe_dump(_crd("experiments.argoproj.io", "Experiment"))
    )
    assert crds.read("Argo Rollouts", tmp_path).names == (
        "rollouts.argoproj.io",
        "experiments.argoproj.io",
    )


def test_a_directory_without_crds_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="no CustomResourceDefinition in"):
        crds.read("Argo CD", tmp_path)


def test_a_cluster_scoped_kind_has_no_namespace_in_its_path() -> None:
    assert (
        CUSTOM_RESOURCE_DEFINITION.path("demo", "rollouts.argoproj.io")
        == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rollouts.argoproj.io"
    )
    assert CUSTOM_RESOURCE_DEFINITION.path("demo") == (
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    )
    assert ROLLOUT.path("demo", "web") == "/apis/argoproj.io/v1alpha1/namespaces/demo/rollouts/web"


def _status(*conditions: tuple[str, str]) -> dict[str, object]:
    return {
        "metadata": {"name": "rollouts.argoproj.io"},
        "status": {"conditions": [{"type": t, "status": s} for t, s in conditions]},
    }


def test_a_crd_is_established_only_when_the_condition_says_true() -> None:
    assert not crd_from({"metadata": {"name": "x"}}).is_established()
    assert not crd_from(_status(("NamesAccepted", "True"))).is_established()
    assert not crd_from(_status(("Established", "False"))).is_established()
    assert crd_from(_status(("NamesAccepted", "True"), ("Established", "True"))).is_established()


def test_names_another_crd_holds_end_the_wait_at_once() -> None:
    refused = crd_from(_status(("NamesAccepted", "False")))
    assert crds.names_refused(refused) is not None
    assert crds.names_refused(crd_from(_status(("NamesAccepted", "True")))) is None
