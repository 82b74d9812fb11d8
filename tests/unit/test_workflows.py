"""Every workflow under .github/workflows passes actionlint (built from the Go module proxy, at
the version harness/versions.py pins), and the release workflow does what its header says."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from harness import builds
from harness.settings import load_settings

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def test_every_workflow_passes_actionlint() -> None:
    settings = load_settings()
    actionlint = builds.ensure_built(
        builds.ACTIONLINT, cache_dir=settings.cache_dir, go=settings.local.go
    ).path("actionlint")
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert len(files) >= 2
    result = subprocess.run(
        [str(actionlint), "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        cwd=WORKFLOWS.parents[1],
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: an undefined step output and a bad runner are reported."""
    settings = load_settings()
    actionlint = builds.ensure_built(
        builds.ACTIONLINT, cache_dir=settings.cache_dir, go=settings.local.go
    ).path("actionlint")
    broken = tmp_path / ".github" / "workflows" / "broken.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ steps.nope.outputs.x }}\n"
    )
    result = subprocess.run(
        [str(actionlint), "-no-color", str(broken)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert 'property "nope" is not defined' in result.stdout


def test_the_release_builds_three_images_tagged_with_the_version_and_bumps_qa() -> None:
    workflow = yaml.safe_load((WORKFLOWS / "release.yaml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads "on" as True
    images = workflow["jobs"]["images"]
    assert images["strategy"]["matrix"]["service"] == ["gateway-a", "service-b", "service-c"]
    build = next(s for s in images["steps"] if s.get("id") == "push")
    assert build["with"]["file"] == "services/Dockerfile"
    assert "SERVICE=${{ matrix.service }}" in build["with"]["build-args"]
    assert build["with"]["provenance"] == "mode=max"
    meta = next(s for s in images["steps"] if s.get("id") == "meta")
    assert meta["with"]["tags"] == "type=semver,pattern={{version}}"
    bump = workflow["jobs"]["bump-qa"]
    script = next(s["run"] for s in bump["steps"] if "bgh bump" in s.get("run", ""))
    assert script.count("uv run bgh bump --env qa") == 3
    assert '--root-version "$TAG"' in script


def test_the_release_builds_each_version_with_the_arguments_services_builds_yaml_lists() -> None:
    """The step feeding GREETING reads services/builds.yaml by service, then version (yq v4, as
    on GitHub's runners), and that is the table's shape; the kind target reads the same table
    (tests/unit/test_kind_target.py)."""
    images = yaml.safe_load((WORKFLOWS / "release.yaml").read_text())["jobs"]["images"]
    build = next(s for s in images["steps"] if s.get("id") == "push")
    assert "GREETING=${{ steps.build.outputs.greeting }}" in build["with"]["build-args"]
    reader = next(s for s in images["steps"] if s.get("id") == "build")
    assert reader["env"] == {
        "SERVICE": "${{ matrix.service }}",
        "VERSION": "${{ steps.meta.outputs.version }}",
    }
    assert ".[strenv(SERVICE)][strenv(VERSION)].GREETING" in reader["run"]
    assert "services/builds.yaml" in reader["run"]
    table = yaml.safe_load((WORKFLOWS.parents[1] / "services" / "builds.yaml").read_text())
    assert set(table) <= set(images["strategy"]["matrix"]["service"])
    assert table["gateway-a"]["1.1.0"]["GREETING"]


def test_the_qa_bump_names_its_base_and_the_runbooks_run_on_kind_against_it() -> None:
    """Defects: a tag's checkout is a detached HEAD, so the pull request needs ``base``; and a
    pull request opened with GITHUB_TOKEN triggers no workflow, so kind must be called."""
    workflow = yaml.safe_load((WORKFLOWS / "release.yaml").read_text())
    bump = workflow["jobs"]["bump-qa"]
    create = next(s for s in bump["steps"] if "create-pull-request" in s.get("uses", ""))
    assert create["with"]["base"] == "${{ github.event.repository.default_branch }}"
    kind_job = workflow["jobs"]["runbooks-on-kind"]
    assert kind_job["needs"] == "bump-qa"
    assert kind_job["uses"] == "./.github/workflows/kind.yaml"
    assert kind_job["with"]["ref"] == create["with"]["branch"]
    kind = yaml.safe_load((WORKFLOWS / "kind.yaml").read_text())
    assert kind[True]["workflow_call"]["inputs"]["ref"]["required"] is True
    checkout = next(
        s for s in kind["jobs"]["suite-on-kind"]["steps"] if "checkout" in s.get("uses", "")
    )
    assert checkout["with"]["ref"] == "${{ inputs.ref || github.ref }}"


def test_the_analysis_image_production_runs_is_published_by_the_release() -> None:
    """Defect: prod turns on the in-cluster analysis server, whose image no workflow built."""
    root = WORKFLOWS.parents[1]
    prod = yaml.safe_load((root / "gitops/envs/prod_version.yaml").read_text())
    assert prod["analysis"]["server"]["enabled"] is True
    chart = yaml.safe_load((root / "gitops/charts/analysis/values.yaml").read_text())
    repository = chart["analysis"]["server"]["image"].rsplit(":", 1)[0]
    assert repository == "ghcr.io/bluegreen-harness/analysis"
    job = yaml.safe_load((WORKFLOWS / "release.yaml").read_text())["jobs"]["analysis-image"]
    meta = next(s for s in job["steps"] if s.get("id") == "meta")
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository_owner }}/analysis"
    push = next(s for s in job["steps"] if s.get("id") == "push")
    assert (push["with"]["context"], push["with"]["file"]) == (".", "analysis/Dockerfile")
    assert push["with"]["push"] is True


def test_every_download_in_a_workflow_fails_on_an_http_error() -> None:
    """Defect: `curl -sL` without -f saves a 404 page as the binary it was meant to install."""
    found = 0
    for path in WORKFLOWS.glob("*.y*ml"):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                for line in step.get("run", "").splitlines():
                    for call in line.split("curl ")[1:]:
                        found += 1
                        flags = "".join(
                            w[1:]
                            for w in call.split()
                            if w.startswith("-") and not w.startswith("--")
                        )
                        assert "f" in flags, f"{path.name}: curl without -f: {line.strip()}"
    assert found >= 2
