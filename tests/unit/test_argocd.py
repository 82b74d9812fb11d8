"""Argo CD Applications read from a recorded object, and the Git repository the local Argo CD
reads, seeded from the real gitops/ tree: no cluster."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from harness.argocd import (
    REFRESH_ANNOTATION,
    Health,
    Sync,
    application_from,
    describe,
    sync_failure,
)
from harness.cli import app
from harness.errors import ConfigError
from harness.git import GitRepository
from harness.gitops import read_documents

RECORDED = Path(__file__).parent / "recorded" / "application-suspended.json"
TREE = Path(__file__).resolve().parents[2] / "gitops"
REVISION = "53f07793e7e664a697e786c11684edd7beabe5e0"


@pytest.fixture
def recorded() -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(RECORDED.read_text())
    return obj


def test_a_paused_blue_green_rollout_is_a_synced_suspended_application(
    recorded: dict[str, Any],
) -> None:
    app = application_from(recorded)
    assert (app.sync, app.health) == (Sync.SYNCED, Health.SUSPENDED)
    assert app.revision == REVISION
    assert app.in_cluster
    assert ("Rollout", "service-b") in {(kind, name) for kind, name, _, _ in app.resources}
    assert app.synced_at(REVISION[:7]) and app.synced_at(None)
    assert not app.synced_at("0000000")
    assert describe(app).startswith("sync=Synced health=Suspended")
    assert "revision=53f0779" in describe(app)


def test_a_requested_refresh_means_not_compared_yet(recorded: dict[str, Any]) -> None:
    recorded["metadata"].setdefault("annotations", {})[REFRESH_ANNOTATION] = "normal"
    app = application_from(recorded)
    assert not app.synced_at(REVISION)
    assert "refresh=pending" in describe(app)


def test_unknown_statuses_read_as_unknown(recorded: dict[str, Any]) -> None:
    recorded["status"]["sync"]["status"] = "Sideways"
    del recorded["status"]["health"]
    app = application_from(recorded)
    assert (app.sync, app.health) == (Sync.UNKNOWN, Health.UNKNOWN)


def test_a_failed_sync_of_the_awaited_revision_ends_the_wait(recorded: dict[str, Any]) -> None:
    failed = copy.deepcopy(recorded)
    failed["status"]["operationState"]["phase"] = "Failed"
    failed["status"]["operationState"]["message"] = "one or more objects failed to apply"
    app = application_from(failed)
    assert sync_failure(app, REVISION) == "sync Failed: one or more objects failed to apply"
    # A failure of an older commit says nothing about the one awaited.
    assert sync_failure(app, "1234567") is None
    assert sync_failure(application_from(recorded), REVISION) is None


def test_a_sync_error_condition_ends_the_wait(recorded: dict[str, Any]) -> None:
    recorded["status"]["conditions"] = [{"type": "SyncError", "message": "quota exceeded"}]
    app = application_from(recorded)
    assert sync_failure(app, None) == "SyncError: quota exceeded"
    assert "; SyncError: quota exceeded" in describe(app)


def test_a_misspelt_health_names_the_known_ones() -> None:
    assert Health.parse("Suspended") is Health.SUSPENDED
    with pytest.raises(ConfigError, match=r'"Supsended".*Healthy, Progressing, Suspended'):
        Health.parse("Supsended")


def test_seeding_points_every_application_at_the_repository(tmp_path: Path) -> None:
    repository = GitRepository(tmp_path / "repo")
    head = repository.seed(TREE)
    assert repository.exists()
    assert head == _git(repository.bare, "rev-parse", "main")
    files = sorted(repository.gitops_dir.glob("app*/**/*.yaml"))
    documents = [d for f in files for d in read_documents(f) if d.get("kind") == "Application"]
    assert len(documents) == 10  # a root and four children in each of qa and prod
    assert {d["spec"]["source"]["repoURL"] for d in documents} == {repository.url}
    # Nothing else changed, comments included.
    original = (TREE / "apps" / "qa" / "service-b.yaml").read_text()
    seeded = (repository.gitops_dir / "apps" / "qa" / "service-b.yaml").read_text()
    assert seeded.replace(repository.url, "URL") == original.replace(
        "https://github.com/bluegreen-harness/bluegreen-harness.git", "URL"
    )


def test_a_suffix_and_namespace_keep_two_copies_apart(tmp_path: Path) -> None:
    repository = GitRepository(tmp_path / "repo")
    repository.seed(TREE, suffix="rb-1", namespace="rb-1")
    (root,) = read_documents(repository.root_application("qa"))
    assert root["metadata"]["name"] == "bluegreen-demo-qa-rb-1"
    assert root["spec"]["destination"]["namespace"] == "argocd"
    (qa,) = read_documents(repository.gitops_dir / "apps" / "qa" / "service-b.yaml")
    assert qa["metadata"]["name"] == "qa-service-b-rb-1"
    assert qa["spec"]["destination"]["namespace"] == "rb-1"
    (prod,) = read_documents(repository.gitops_dir / "apps" / "prod" / "service-b.yaml")
    # Production deploys to another cluster: its namespace there is not this scenario's.
    assert prod["spec"]["destination"] == {"name": "prod", "namespace": "demo"}


def test_seeding_gives_the_charts_deployed_here_the_targets_values(tmp_path: Path) -> None:
    repository = GitRepository(tmp_path / "repo")
    url = "http://127.0.0.1:23456"
    repository.seed(TREE, namespace="rb-1", parameters={"analysis.judgeUrl": url})
    (analysis,) = read_documents(repository.gitops_dir / "apps" / "qa" / "analysis.yaml")
    parameters = analysis["spec"]["source"]["helm"]["parameters"]
    assert {"name": "analysis.judgeUrl", "value": url} in parameters
    (prod,) = read_documents(repository.gitops_dir / "apps" / "prod" / "analysis.yaml")
    # Production's Applications deploy to another cluster: this target's URLs mean nothing there.
    assert "parameters" not in prod["spec"]["source"]["helm"]
    (root,) = read_documents(repository.root_application("qa"))
    assert "helm" not in root["spec"]["source"]


def test_seeding_refuses_a_directory_that_is_not_a_gitops_tree(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has no app-of-apps/"):
        GitRepository(tmp_path / "repo").seed(tmp_path)


def test_bump_push_commits_the_version_file_and_pushes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = GitRepository(tmp_path / "repo")
    seeded = repository.seed(TREE)
    monkeypatch.setenv("BGH_GITOPS_DIR", str(repository.gitops_dir))
    monkeypatch.setenv("BGH_STATE_DIR", str(tmp_path / "no-target"))  # no Argo CD to refresh
    result = CliRunner().invoke(
        app, ["bump", "--env", "qa", "--service", "service-b", "--version", "1.1.0", "--push"]
    )
    assert result.exit_code == 0, result.output
    pushed = _git(repository.bare, "rev-parse", "main")
    assert pushed != seeded and pushed == repository.head()
    assert f"pushed {pushed[:7]}" in result.output
    assert "at its next refresh" in " ".join(result.output.split())
    changed = _git(repository.bare, "diff", "--name-only", seeded, pushed).split()
    assert changed == ["gitops/envs/qa_version.yaml"]


def test_push_with_dry_run_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repository = GitRepository(tmp_path / "repo")
    repository.seed(TREE)
    monkeypatch.setenv("BGH_GITOPS_DIR", str(repository.gitops_dir))
    result = CliRunner().invoke(
        app,
        [
            "bump",
            "--env",
            "qa",
            "--service",
            "service-b",
            "--version",
            "1.1.0",
            "--push",
            "--dry-run",
        ],
    )
    assert result.exit_code == 2
    assert "--push and --dry-run exclude each other" in result.output
    assert _git(repository.bare, "rev-parse", "main") == repository.head()


def _git(where: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(where), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_failed_attempt_argo_cd_is_retrying_ends_the_wait(recorded: dict[str, Any]) -> None:
    state = recorded["status"]["operationState"]
    state["phase"] = "Running"
    state["retryCount"] = 1
    state["message"] = 'Rollout "service-b" is invalid: spec.replicas. Retrying attempt #1'
    state["operation"] = {"sync": {"revision": "c0ffee0" + "0" * 33}}
    app = application_from(recorded)
    failure = sync_failure(app, "c0ffee0")
    assert failure is not None and failure.startswith("sync Failed on attempt 1")
    assert "spec.replicas" in failure
    assert "(attempt 2)" in describe(app)
    # A retried sync of another commit is not the awaited one's failure.
    assert sync_failure(app, "1234567") is None


def test_with_argocd_is_refused_off_the_local_target() -> None:
    result = CliRunner().invoke(app, ["up", "--target", "kind", "--with-argocd"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "--with-argocd is for the local target; the kind target installs Argo CD itself" in said
