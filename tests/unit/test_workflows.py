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
