"""Every git command the harness runs, and the Git repository the local target's Argo CD reads.

``git`` runs one command and turns a failure into a ``HarnessError`` with git's own words.
``commit`` commits a bumped version file alone; ``push`` pushes a clone's branch.
``GitRepository`` is a bare repository served over ``file://`` (Argo CD's own end-to-end tests
use such URLs) with a working clone beside it: seeded from ``gitops/``, with every Application's
``repoURL`` pointed at it; bumps are committed in the clone and pushed, as a person would.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from harness.argocd import ARGOCD_NAMESPACE, IN_CLUSTER
from harness.errors import ConfigError, HarnessError
from harness.gitops import Bump, round_trip_yaml


def commit(bump: Bump) -> str:
    """``git commit`` the bumped version file alone (other staged changes stay staged); the
    commit."""
    return commit_file(bump.file, bump.message)


def commit_file(file: Path, message: str) -> str:
    """``git commit`` ``file`` alone in the repository it is in; the new commit."""
    where = file.parent
    git(where, "commit", "--quiet", "-m", message, "--", file.name, what=f"git commit of {file}")
    return head(where)


def push(work_tree: Path, *upstream: str) -> str:
    """``git push`` the branch of the clone ``work_tree`` is in (to ``upstream``, e.g. ``origin
    main``, which it then tracks; else to the branch's upstream); the commit pushed."""
    argv = ["push", "--quiet", *(("--set-upstream", *upstream) if upstream else ())]
    git(work_tree, *argv, what=f"git push from {work_tree}")
    return head(work_tree)


def head(work_tree: Path) -> str:
    """The commit checked out in ``work_tree``."""
    return git(work_tree, "rev-parse", "HEAD").strip()


def git(where: Path, *args: str, what: str | None = None) -> str:
    """Run ``git -C where args``; its output, or a HarnessError saying ``what`` failed (``git
    <subcommand>`` unless told) with git's own message and the command."""
    argv = ["git", "-C", str(where), *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HarnessError(
            f"{what or f'git {args[0]}'} failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}\n  command: {' '.join(argv)}"
        )
    return result.stdout


class GitRepository:
    """A bare repository Argo CD reads over ``file://``, and the working clone bumps happen in."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.bare = self.root / "gitops.git"
        self.work = self.root / "work"

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    @property
    def gitops_dir(self) -> Path:
        """``gitops/`` in the working clone: where ``bgh bump --commit --push`` edits."""
        return self.work / "gitops"

    def root_application(self, env: str) -> Path:
        """The root Application of one environment (one per environment, see gitops/)."""
        return self.gitops_dir / "app-of-apps" / f"root-{env}.yaml"

    def exists(self) -> bool:
        return (self.bare / "HEAD").is_file() and (self.work / ".git").is_dir()

    def seed(
        self,
        source: Path,
        *,
        suffix: str = "",
        namespace: str | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> str:
        """A fresh repository holding ``source`` (a ``gitops/`` tree) as ``gitops/``, committed
        and pushed; returns the commit. Every Application's ``repoURL`` becomes this repository.
        ``suffix`` is appended to every Application's name (so two copies can live in one Argo CD)
        and ``namespace`` replaces the destination namespace of the Applications that deploy into
        the cluster Argo CD runs in (the root keeps ``argocd``); those of them that render a Helm
        chart also get ``parameters`` (a target's ``chart_values``) as helm parameters."""
        if not (source / "app-of-apps").is_dir():
            raise ConfigError(
                f"{source} is not a gitops tree: it has no app-of-apps/ (expected the project's "
                "gitops/ directory)"
            )
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        git(self.root, "init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git(self.root, "clone", "--quiet", str(self.bare), str(self.work))
        git(self.work, "symbolic-ref", "HEAD", "refs/heads/main")
        git(self.work, "config", "user.name", "bgh")
        git(self.work, "config", "user.email", "bgh@localhost")
        shutil.copytree(source, self.gitops_dir)
        for file in sorted(self.gitops_dir.glob("app*/**/*.yaml")):  # app-of-apps/ and apps/
            _rewrite_applications(file, self.url, suffix, namespace, parameters or {})
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "-m", f"Seed from {source}")
        return self.push()

    def commit(self, file: Path, message: str) -> str:
        """Commit ``file`` of the working clone alone; returns the new commit."""
        return commit_file(self.work / file, message)

    def push(self) -> str:
        """Push the working clone's branch; returns the commit pushed."""
        return push(self.work, "origin", "main")

    def head(self) -> str:
        return head(self.work)


def _rewrite_applications(
    file: Path, url: str, suffix: str, namespace: str | None, parameters: Mapping[str, str]
) -> None:
    """Point the Applications in ``file`` at ``url``, keeping comments and order."""
    yaml = round_trip_yaml()
    text = file.read_text()
    if "kind: Application" not in text:
        return
    documents = list(yaml.load_all(text))
    changed = False
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") != "Application":
            continue
        spec = doc.get("spec") or {}
        for source in [spec.get("source"), *(spec.get("sources") or [])]:
            if isinstance(source, dict) and "repoURL" in source and "chart" not in source:
                source["repoURL"] = url
                changed = True
        if suffix:
            doc["metadata"]["name"] = f"{doc['metadata']['name']}-{suffix}"
            changed = True
        destination = spec.get("destination") or {}
        here = (
            destination.get("server") == IN_CLUSTER
            and destination.get("namespace") != ARGOCD_NAMESPACE
        )
        if namespace and here:
            destination["namespace"] = namespace
            changed = True
        helm = (spec.get("source") or {}).get("helm")
        if parameters and here and isinstance(helm, dict):
            given = {str(p["name"]): p for p in helm.get("parameters") or []}
            for name, value in parameters.items():
                given[name] = {"name": name, "value": value}
            helm["parameters"] = list(given.values())
            changed = True
    if changed:
        out = io.StringIO()
        yaml.dump_all(documents, out)
        file.write_text(out.getvalue())
