"""The nightly identity of gitops/rbac/harness-roles.yaml on the local target (RBAC is on).

A ServiceAccount bound to the ``bgh-nightly`` Role only runs the read-only runbook through the
plugin on the ``existing`` target and passes; a mutating runbook is skipped with the reason even
though the namespace carries the testing label (the identity cannot read it); and a promote sent
with that identity is refused by the API server with a message that says where the roles are.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from harness.delivery import DirectApply
from harness.kube import Forbidden, Kube
from harness.rollouts import Rollouts
from harness.settings import load_settings
from harness.targets import target_for
from harness.targets.local import LocalTarget
from tests.cluster.conftest import Cluster

CHECKOUT = Path(__file__).resolve().parents[2]
ROLES = CHECKOUT / "gitops" / "rbac" / "harness-roles.yaml"

MUTATING = """
Feature: Mutating
  Scenario: Promote something
    When I promote "service-b"
"""


def nightly_kubeconfig(cluster: Cluster, namespace: str, directory: Path) -> Path:
    roles = [dict(doc, metadata={**doc["metadata"], "namespace": namespace})
             for doc in yaml.safe_load_all(ROLES.read_text())]  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(roles))
    cluster.kubectl("create", "serviceaccount", "bgh-nightly", "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", "bgh-nightly", "-n", namespace, "--role=bgh-nightly",
        f"--serviceaccount={namespace}:bgh-nightly",
    )  # fmt: skip
    token = cluster.kubectl("create", "token", "bgh-nightly", "-n", namespace).strip()
    admin = yaml.safe_load(cluster.target.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"][:1],
        "users": [{"name": "bgh-nightly", "user": {"token": token}}],
        "contexts": [
            {
                "name": "nightly",
                "context": {"cluster": admin["clusters"][0]["name"], "user": "bgh-nightly"},
            }
        ],
        "current-context": "nightly",
    }
    path = directory / "nightly.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_nightly_identity_runs_read_only_runbooks_and_nothing_else(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("uses the local target's data plane for gateway A's URLs")
    shutil.copytree(CHECKOUT / "gitops", tmp_path / "gitops")
    settings = load_settings(  # absolute paths: pytester has chdir'd into a directory of its own
        namespace=namespace, gitops_dir=tmp_path / "gitops", state_dir=cluster.target.root.parent
    )
    DirectApply(target_for(settings)).deploy("qa")
    cluster.kubectl("label", "namespace", namespace, "bgh.dev/testing=true")
    kubeconfig = nightly_kubeconfig(cluster, namespace, tmp_path)

    for key, value in {
        "BGH_TARGET": "existing",
        "BGH_KUBECONFIG": str(kubeconfig),
        "BGH_NAMESPACE": namespace,
        "BGH_GATEWAY_URL": cluster.target.service_url(namespace, "gateway-a", 3000),
        "BGH_GATEWAY_PREVIEW_URL": cluster.target.service_url(namespace, "gateway-a-preview", 3000),
    }.items():
        monkeypatch.setenv(key, value)
    pytester.makepyfile(test_runbooks='from pytest_bdd import scenarios\nscenarios("features")\n')
    features = pytester.path / "features"
    features.mkdir()
    shutil.copy(CHECKOUT / "features" / "nightly.feature", features)
    (features / "mutating.feature").write_text(textwrap.dedent(MUTATING).lstrip())
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs", "-W", "ignore")

    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [f'*changes the cluster, and this identity cannot read namespace "{namespace}"*']
    )

    nightly = Rollouts(Kube(kubeconfig=kubeconfig, context=None, namespace=namespace), timeout=10)
    with pytest.raises(Forbidden) as refused:
        nightly.pause("service-b")
    message = str(refused.value)
    assert 'cannot patch resource "rollouts"' in message
    assert f"system:serviceaccount:{namespace}:bgh-nightly" in message
    assert "gitops/rbac/harness-roles.yaml" in message
