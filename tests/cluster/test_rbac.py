"""The harness's identities (gitops/rbac/) against the local target's API server, which runs with
RBAC and admission on; every request impersonates the identity (tests/support/identities.py).

- Every mutating runbook passes as ``bgh-runbooks``, each scenario in a namespace of its own where
  the cluster's owner deployed the demo system; every read-only runbook passes as ``bgh-nightly``.
- ``bgh-nightly`` is refused every mutating runbook (skipped: it cannot read the namespace's
  testing label) and a promote sent anyway; neither identity may read Secrets or exec into a pod.
- The admission policy lets ``bgh-runbooks`` release and pause but not rewrite a pod template.
- A rejected token is an error, never a skip; the nightly runbook over no Rollouts fails.

Each scenario's outcome is kept in the JUnit report (property ``rbac``);
benchmarks/bench_rbac.py turns a run into the matrix of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.errors import TargetError
from harness.kube import JSON_PATCH, ROLLOUT, ApiError, Forbidden, Kube
from harness.rollouts import Rollouts
from harness.targets.local import LocalTarget
from harness.waits import Deadline
from tests.cluster.conftest import Cluster, blue_green_manifest
from tests.support.identities import (
    FEATURES,
    NIGHTLY,
    POLICY,
    RUNBOOKS,
    Outcome,
    bind_identities,
    deploy_demo,
    is_readonly,
    owner_kubectl,
    run_runbook,
    scenarios_of,
    token_kubeconfig,
    user,
)

RUNBOOK_FILES = sorted(FEATURES.glob("*.feature"))
READONLY = [f for f in RUNBOOK_FILES if is_readonly(f)]
# @gitops runbooks are delivered by the local target's Argo CD from a Git repository on this
# machine, which the plugin's existing-target path (the one that takes an identity) never sets
# up: they are not run by identity, and the matrix says so.
GITOPS = [f for f in RUNBOOK_FILES if "@gitops" in f.read_text().split("Feature:", 1)[0]]
# Runbooks that deploy a Rollout of their own (`Given a blue-green Rollout "web" ... with`) create
# a namespace for it, which they do only on a cluster the harness owns: on the existing-target
# path they skip before any identity is tried (steps/bluegreen_steps.py), so they are not run
# by identity either.
OWN_ROLLOUT = [f for f in RUNBOOK_FILES if 'Given a blue-green Rollout "' in f.read_text()]
MUTATING = [
    f for f in RUNBOOK_FILES if f not in READONLY and f not in GITOPS and f not in OWN_ROLLOUT
]
DEMO_IMAGE = "ghcr.io/bluegreen-harness/service-b:1.1.0"

Record = Callable[[str, object], None]


@pytest.fixture
def local(cluster: Cluster) -> LocalTarget:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("runs the runbooks against the local target's data plane (gateway A's URLs)")
    return cluster.target


def _fresh_namespace(target: LocalTarget) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    owner_kubectl(target).run("create", "namespace", name)
    return name


def _drop(target: LocalTarget, namespace: str) -> None:
    owner_kubectl(target).run("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def policy(cluster: Cluster) -> Iterator[None]:
    """rollout-edits-policy.yaml applied and in force; removed after the module."""
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("the policy's tests run on the local target")
    target = cluster.target
    owner_kubectl(target).run("apply", "-f", str(POLICY))
    namespace = _fresh_namespace(target)
    try:
        _wait_in_force(target, namespace)
        yield
    finally:
        _drop(target, namespace)
        owner_kubectl(target).run("delete", "-f", str(POLICY), "--ignore-not-found")


def _wait_in_force(target: LocalTarget, namespace: str) -> None:
    """Until a server-side dry run of a foreign image is refused by the policy.

    The API server loads a new policy into its admission chain from an informer and exposes no
    condition for that; Kubernetes' own e2e tests of admission policies likewise retry a request
    that must be refused. A dry run stores nothing.
    """
    bind_identities(target, namespace)
    owner = owner_kubectl(target)
    owner.run("apply", "-n", namespace, "-f", "-", stdin=blue_green_manifest("probe"))
    runbooks = owner_kubectl(target, impersonate=user(namespace, RUNBOOKS))
    foreign = json.dumps(_set_image("docker.io/library/nginx:1.27"))
    deadline, last = Deadline(30), ""
    while not deadline.expired():
        try:
            runbooks.run(
                "patch", "rollout", "probe", "-n", namespace, "--type=json", "-p", foreign,
                "--dry-run=server",
            )  # fmt: skip
            last = "accepted"
        except TargetError as exc:
            if "bgh-runbooks-rollout-edits" in str(exc):
                return
            last = str(exc)
        time.sleep(min(0.2, deadline.left()))
    raise AssertionError(f"the admission policy was not in force within 30s; last: {last}")


def _kube(target: LocalTarget, namespace: str, identity: str | None) -> Kube:
    return Kube(
        kubeconfig=target.kubeconfig,
        context=None,
        namespace=namespace,
        impersonate=user(namespace, identity) if identity else None,
    )


def _set_image(image: str) -> list[dict[str, object]]:
    return [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]


# -- the runbooks, identity by identity -------------------------------------------------------


def _record(record_property: Record, outcomes: list[Outcome]) -> None:
    record_property("rbac", json.dumps([o.as_dict() for o in outcomes]))


@pytest.fixture(scope="module")
def deployed(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """One namespace with the demo system, shared by the tests that change nothing in it."""
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("runs the runbooks against the local target's data plane")
    namespace = _fresh_namespace(cluster.target)
    try:
        yield namespace, deploy_demo(cluster.target, namespace, tmp_path_factory.mktemp("shared"))
    finally:
        _drop(cluster.target, namespace)


@pytest.mark.parametrize("identity", [NIGHTLY, RUNBOOKS])
@pytest.mark.parametrize("feature", READONLY, ids=lambda f: f.stem)
def test_every_read_only_runbook_passes_as_either_identity(
    local: LocalTarget,
    deployed: tuple[str, Path],
    feature: Path,
    identity: str,
    tmp_path: Path,
    record_property: Record,
) -> None:
    namespace, tree = deployed
    outcomes = run_runbook(
        local, feature=feature, namespace=namespace, identity=identity, workdir=tmp_path,
        gitops_dir=tree,
    )  # fmt: skip
    _record(record_property, outcomes)
    assert [(o.scenario, o.result, o.reason) for o in outcomes if o.result != "passed"] == []
    assert outcomes


def test_the_nightly_identity_is_refused_every_mutating_runbook(
    local: LocalTarget, deployed: tuple[str, Path], tmp_path: Path, record_property: Record
) -> None:
    namespace, tree = deployed
    outcomes: list[Outcome] = []
    for feature in MUTATING:
        outcomes += run_runbook(
            local, feature=feature, namespace=namespace, identity=NIGHTLY,
            workdir=tmp_path / feature.stem, gitops_dir=tree,
        )  # fmt: skip
    _record(record_property, outcomes)
    assert {o.feature for o in outcomes} == {f.stem for f in MUTATING}
    refused = f'changes the cluster, and this identity cannot read namespace "{namespace}"'
    assert [(o.scenario, o.result) for o in outcomes if refused not in o.reason] == []
    assert {o.result for o in outcomes} == {"skipped"}

    nightly = Rollouts(_kube(local, namespace, NIGHTLY), timeout=10)
    with pytest.raises(Forbidden) as sent_anyway:
        nightly.pause("service-b")
    message = str(sent_anyway.value)
    assert 'cannot patch resource "rollouts"' in message
    assert user(namespace, NIGHTLY) in message
    assert "gitops/rbac/harness-roles.yaml" in message


@pytest.mark.parametrize("identity", [NIGHTLY, RUNBOOKS])
def test_neither_identity_may_read_secrets_or_exec_into_a_pod(
    local: LocalTarget, deployed: tuple[str, Path], identity: str, record_property: Record
) -> None:
    namespace, _ = deployed
    kubectl = owner_kubectl(local, impersonate=user(namespace, identity))
    pod = kubectl.run("get", "pods", "-n", namespace, "-o", "name").split()[0]
    refusals = {}
    for what, argv in {
        "Secrets": ("get", "secrets", "-n", namespace),
        "pod exec": ("exec", "-n", namespace, pod, "--", "true"),
    }.items():
        with pytest.raises(TargetError) as refused:
            kubectl.run(*argv)
        refusals[what] = str(refused.value)
    record_property(
        "rbac", json.dumps({"identity": identity, "by": "RBAC, 403", "refused": sorted(refusals)})
    )
    assert 'cannot list resource "secrets"' in refusals["Secrets"]
    # kubectl exec asks over WebSockets first: the verb checked is get or create by version.
    assert 'resource "pods/exec"' in refusals["pod exec"]
    assert "forbidden" in refusals["pod exec"]


# -- the admission policy ---------------------------------------------------------------------


def test_the_policy_lets_the_runbook_identity_release_but_not_rewrite_the_pod_template(
    local: LocalTarget, policy: None, namespace: str, record_property: Record
) -> None:
    bind_identities(local, namespace)
    owner_kubectl(local).run("apply", "-n", namespace, "-f", "-", stdin=blue_green_manifest("b"))
    kube = _kube(local, namespace, RUNBOOKS)
    rollouts = Rollouts(kube, timeout=10)

    kube.patch(ROLLOUT, "b", _set_image(DEMO_IMAGE), content_type=JSON_PATCH)
    assert rollouts.read("b").images == {"app": DEMO_IMAGE}
    assert rollouts.pause("b").paused
    assert rollouts.abort("b").abort  # status subresource: the policy does not match it

    rewrites: dict[str, list[dict[str, object]]] = {
        "image": _set_image("docker.io/library/nginx:1.27"),
        "service account": [
            {"op": "add", "path": "/spec/template/spec/serviceAccountName", "value": "default"}
        ],
        "volume": [
            {
                "op": "add",
                "path": "/spec/template/spec/volumes",
                "value": [{"name": "host", "hostPath": {"path": "/"}}],
            }
        ],
        "env from a Secret": [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/env",
                "value": [
                    {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}}
                ],
            }
        ],
    }
    expected = {
        "image": "may only set images of the demo repository ghcr.io/bluegreen-harness/",
        "service account": "may not change the pod template's service account",
        "volume": "may not change the pod template's volumes",
        "env from a Secret": "env from Secrets and ConfigMaps",
    }
    denials = {}
    for what, patch in rewrites.items():
        with pytest.raises(ApiError) as refused:
            kube.patch(ROLLOUT, "b", patch, content_type=JSON_PATCH)
        denials[what] = str(refused.value)
    for what, message in denials.items():
        assert "bgh-runbooks-rollout-edits" in message, what
        assert expected[what] in " ".join(message.split()), what
    assert rollouts.read("b").images == {"app": DEMO_IMAGE}  # nothing got through
    refused = [f"Rollout edit: {what}" for what in denials]
    record_property(
        "rbac",
        json.dumps({"identity": RUNBOOKS, "by": "admission policy, 422", "refused": refused}),
    )

    # The policy binds the runbook identity, not the cluster's owner.
    owner = _kube(local, namespace, None)
    owner.patch(ROLLOUT, "b", _set_image("docker.io/library/nginx:1.27"), content_type=JSON_PATCH)


# -- credentials and empty namespaces ---------------------------------------------------------


def test_a_rejected_token_is_an_error_never_a_skip(
    local: LocalTarget, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = token_kubeconfig(local, "not-a-valid-token", tmp_path / "expired.kubeconfig")
    outcomes: list[Outcome] = []
    for feature in (FEATURES / "nightly.feature", FEATURES / "promote.feature"):
        outcomes += run_runbook(
            local, feature=feature, namespace=namespace, identity=None,
            workdir=tmp_path / feature.stem, kubeconfig=kubeconfig,
        )  # fmt: skip
    assert outcomes
    assert [o.scenario for o in outcomes if o.result not in ("failed", "error")] == []
    assert all("401 Unauthorized" in o.reason for o in outcomes), outcomes


def test_the_nightly_runbook_fails_when_there_is_nothing_to_check(
    local: LocalTarget, namespace: str, tmp_path: Path
) -> None:
    bind_identities(local, namespace)
    (outcome,) = run_runbook(
        local, feature=FEATURES / "nightly.feature", namespace=namespace, identity=NIGHTLY,
        workdir=tmp_path,
    )  # fmt: skip
    assert outcome.result == "failed"
    assert f'no Rollouts in namespace "{namespace}": nothing to check' in outcome.reason


@pytest.mark.slow
@pytest.mark.parametrize("feature", MUTATING, ids=lambda f: f.stem)
def test_every_mutating_runbook_passes_as_the_runbook_identity(
    local: LocalTarget,
    policy: None,
    feature: Path,
    tmp_path: Path,
    record_property: Record,
) -> None:
    """Scenario by scenario, each in a namespace of its own freshly deployed by the owner."""
    outcomes: list[Outcome] = []
    for index, scenario in enumerate(scenarios_of(feature, tmp_path / "collect")):
        namespace = _fresh_namespace(local)
        try:
            workdir = tmp_path / str(index)
            tree = deploy_demo(local, namespace, workdir)
            outcomes += run_runbook(
                local,
                feature=feature,
                namespace=namespace,
                identity=RUNBOOKS,
                workdir=workdir,
                gitops_dir=tree,
                select=scenario,
            )
        finally:
            _drop(local, namespace)
    _record(record_property, outcomes)
    assert [(o.scenario, o.result, o.reason) for o in outcomes if o.result != "passed"] == []
    assert outcomes
