"""docs/nightly.md's examples are what they claim: the scheduled workflow passes actionlint and
runs the runbooks on the existing target; the CronJob binds the Roles gitops/rbac/ defines."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from harness import builds
from harness.settings import load_settings

CHECKOUT = Path(__file__).resolve().parents[2]
EXAMPLES = CHECKOUT / "docs" / "examples"
ROLES = CHECKOUT / "gitops" / "rbac" / "harness-roles.yaml"


def test_the_nightly_workflow_passes_actionlint_and_runs_on_existing() -> None:
    settings = load_settings()
    actionlint = builds.ensure_built(
        builds.ACTIONLINT, cache_dir=settings.cache_dir, go=settings.local.go
    ).path("actionlint")
    workflow = EXAMPLES / "nightly-workflow.yaml"
    result = subprocess.run(
        [str(actionlint), "-no-color", str(workflow)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = yaml.safe_load(workflow.read_text())
    assert document[True]["schedule"]  # YAML 1.1 reads the key "on" as True
    job = document["jobs"]["runbooks"]
    assert job["env"]["BGH_TARGET"] == "existing"
    assert any("bgh run --target existing" in step.get("run", "") for step in job["steps"])


def test_the_cronjob_binds_the_roles_of_gitops_rbac_to_its_service_account() -> None:
    roles = {d["metadata"]["name"] for d in yaml.safe_load_all(ROLES.read_text()) if d}
    documents = [d for d in yaml.safe_load_all((EXAMPLES / "nightly-cronjob.yaml").read_text())]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    (cronjob,) = by_kind["CronJob"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    bound = {b["roleRef"]["name"] for b in by_kind["RoleBinding"]
             if any(s["name"] == pod["serviceAccountName"] for s in b["subjects"])}  # fmt: skip
    assert bound == {"bgh-nightly", "bgh-runbooks"} <= roles
    (container,) = pod["containers"]
    assert container["command"][:4] == ["bgh", "run", "--target", "existing"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
