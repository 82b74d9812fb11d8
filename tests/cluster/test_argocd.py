"""Argo CD on the local target: the real application controller and repo server, syncing from a
Git repository on this machine."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.argocd import ArgoCD, Health
from harness.cli import app
from harness.delivery import ArgoCDDelivery
from harness.errors import NotFound, SyncFailed
from harness.git import GitRepository
from harness.gitops import GitOps
from harness.targets.local import LocalTarget
from tests.cluster.conftest import Cluster

TREE = Path(__file__).resolve().parents[2] / "gitops"


@pytest.fixture(scope="module")
def target(cluster: Cluster) -> LocalTarget:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("Argo CD runs as processes on the local target only")
    cluster.target.start_argocd()
    return cluster.target


@pytest.fixture
def delivery(target: LocalTarget, tmp_path: Path) -> Iterator[ArgoCDDelivery]:
    """QA as Argo CD delivers it into a namespace of its own, from a repository of its own."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    repository = GitRepository(tmp_path / "repository")
    repository.seed(TREE, suffix=namespace, namespace=namespace)
    delivery = ArgoCDDelivery(target.argocd_client(), repository)
    delivery.bootstrap()
    yield delivery
    delivery.teardown()


def test_status_lists_argo_cds_components_running(target: LocalTarget) -> None:
    status = {line.name: line for line in target.status()}
    for name in ("argocd-redis", "argocd-repo-server", "argocd-application-controller"):
        assert status[name].running, status[name].detail


def test_a_pushed_commit_is_synced_and_its_rollout_pauses_on_preview(
    delivery: ArgoCDDelivery,
) -> None:
    tree = GitOps(delivery.repository.gitops_dir)
    bump = tree.bump("qa", "service-c", "1.1.0", root_version="v2.2.0")
    started = time.monotonic()
    revision = delivery.deliver(bump.file, bump.message)
    app = delivery.argocd.read(delivery.application_of("service-c"))
    assert app.synced_at(revision)
    assert app.health is Health.SUSPENDED, app
    # Well within Argo CD's three-minute poll: the refresh made it compare at once.
    assert time.monotonic() - started < 60


def test_bump_push_asks_the_local_argo_cd_to_refresh(
    delivery: ArgoCDDelivery, target: LocalTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BGH_GITOPS_DIR", str(delivery.repository.gitops_dir))
    monkeypatch.setenv("BGH_STATE_DIR", str(target.settings.state_dir))
    argv = ["bump", "--env", "qa", "--service", "service-b", "--version", "1.1.0"]
    result = CliRunner().invoke(app, [*argv, "--root-version", "v2.2.0", "--push"])
    assert result.exit_code == 0, result.output
    assert "asked the local target's Argo CD to refresh" in " ".join(result.output.split())
    # Without the refresh Argo CD would compare at its next poll, minutes away.
    waited = delivery.argocd.wait_synced(
        delivery.application_of("service-b"), revision=delivery.repository.head(), within=60
    )
    assert waited.value.health is Health.SUSPENDED


def test_a_commit_that_cannot_be_applied_fails_the_wait_with_argo_cds_message(
    delivery: ArgoCDDelivery,
) -> None:
    tree = GitOps(delivery.repository.gitops_dir)
    bad = tree.set_values("qa", {"replicas": "two"})  # a Rollout's replicas is an integer
    delivery.repository.commit(bad.file, bad.message)
    revision = delivery.repository.push()
    name = delivery.application_of("service-b")
    delivery.argocd.refresh(name)
    started = time.monotonic()
    with pytest.raises(SyncFailed, match=r"sync (Failed|Error)") as failed:
        delivery.argocd.wait_synced(name, revision=revision, within=120)
    assert "replicas" in str(failed.value)
    # Ended by the failure, not by the deadline.
    assert time.monotonic() - started < 110


def test_refreshing_an_unknown_application_names_the_ones_there(target: LocalTarget) -> None:
    client: ArgoCD = target.argocd_client()
    with pytest.raises(NotFound, match=r'Application "qa-service-x" not found.*Applications there'):
        client.refresh("qa-service-x")
