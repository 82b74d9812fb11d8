"""Argo CD Applications, and the Git repository the local target's Argo CD syncs from.

``ArgoCD`` reads an Application's sync and health as Argo CD reports them (``status.sync``,
``status.health``, ``status.operationState``), asks for a refresh the way ``argocd app get
--refresh`` does (the ``argocd.argoproj.io/refresh`` annotation, which the application controller
removes once it has compared again), and waits on a watch until a revision is synced. A paused
blue-green Rollout is Suspended in Argo CD's health (its built-in Rollout health check), so the
waits accept Suspended beside Healthy unless told otherwise.

``GitRepository`` is a bare repository served over ``file://`` (Argo CD's own end-to-end tests
use such URLs) with a working clone beside it: seeded from ``gitops/``, with every Application's
``repoURL`` pointed at it; bumps are committed in the clone and pushed, as a person would.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from ruamel.yaml import YAML

from harness.errors import ConfigError, HarnessError, NotFound, WaitTimeout
from harness.gitops import git, round_trip_yaml
from harness.kube import Kind, Kube, Resource
from harness.rollouts import parse_word
from harness.waits import Clock, Waited, wait_for

APPLICATION = Kind("Application", "argoproj.io", "v1alpha1", "applications")
APP_PROJECT = Kind("AppProject", "argoproj.io", "v1alpha1", "appprojects")
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
ARGOCD_NAMESPACE = "argocd"
# The destination Argo CD gives the cluster it runs in.
IN_CLUSTER = "https://kubernetes.default.svc"


class SyncFailed(HarnessError):
    """Argo CD's sync of an Application failed (its operation or a SyncError condition)."""


class Sync(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class Health(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    SUSPENDED = "Suspended"
    DEGRADED = "Degraded"
    MISSING = "Missing"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, text: str) -> Health:
        """A health status as Argo CD spells it; anything else is an error naming them all."""
        return parse_word(cls, text, "Argo CD health")


SETTLED = (Health.HEALTHY, Health.SUSPENDED)
E = TypeVar("E", Sync, Health)


@dataclass(frozen=True)
class Application:
    """What a reader needs of one Argo CD Application."""

    name: str
    sync: Sync
    health: Health
    health_message: str
    revision: str  # the commit status.sync compared against
    operation_phase: str  # Running, Succeeded, Failed, Error, Terminating; "" when none yet
    operation_message: str
    operation_revision: str  # the commit the last operation synced (its result)
    operation_target: str  # the commit the last (or running) operation is syncing
    retry_count: int  # failed attempts of the running operation that Argo CD is retrying
    conditions: tuple[tuple[str, str], ...]
    refresh_requested: bool  # the refresh annotation is still there: not compared again yet
    resources: tuple[tuple[str, str, str, str], ...]  # kind, name, sync status, health
    destination: str  # the destination's server URL, or its cluster name

    @property
    def in_cluster(self) -> bool:
        """Whether it deploys into the cluster Argo CD runs in."""
        return self.destination in (IN_CLUSTER, "in-cluster")

    def synced_at(self, revision: str | None) -> bool:
        """Synced, at ``revision`` (a full or abbreviated commit) when one is given."""
        if self.sync is not Sync.SYNCED or self.refresh_requested:
            return False
        return revision is None or self.revision.startswith(revision)


def application_from(obj: Mapping[str, Any]) -> Application:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    sync = status.get("sync") or {}
    health = status.get("health") or {}
    operation = status.get("operationState") or {}
    destination = (obj.get("spec") or {}).get("destination") or {}
    return Application(
        name=str(meta.get("name", "")),
        sync=_parse(Sync, sync.get("status"), Sync.UNKNOWN),
        health=_parse(Health, health.get("status"), Health.UNKNOWN),
        health_message=str(health.get("message") or ""),
        revision=str(sync.get("revision") or ""),
        operation_phase=str(operation.get("phase") or ""),
        operation_message=str(operation.get("message") or ""),
        operation_revision=str(((operation.get("syncResult") or {}).get("revision")) or ""),
        operation_target=str(
            (((operation.get("operation") or {}).get("sync") or {}).get("revision")) or ""
        ),
        retry_count=int(operation.get("retryCount") or 0),
        conditions=tuple(
            (str(c.get("type", "")), str(c.get("message", "")))
            for c in status.get("conditions") or []
        ),
        refresh_requested=REFRESH_ANNOTATION in (meta.get("annotations") or {}),
        resources=tuple(
            (
                str(r.get("kind", "")),
                str(r.get("name", "")),
                str(r.get("status", "")),
                str((r.get("health") or {}).get("status", "")),
            )
            for r in status.get("resources") or []
        ),
        destination=str(destination.get("server") or destination.get("name") or ""),
    )


def _parse(enum: type[E], value: object, default: E) -> E:
    try:
        return enum(str(value))
    except ValueError:
        return default


def describe(app: Application) -> str:
    """One line: sync, health, revision, the last operation and any condition."""
    text = f"sync={app.sync.value} health={app.health.value}"
    if app.health_message:
        text += f' ("{app.health_message}")'
    text += f" revision={app.revision[:7] or '-'}"
    if app.operation_phase:
        text += f" operation={app.operation_phase}"
        if app.retry_count:
            text += f" (attempt {app.retry_count + 1})"
        if (app.operation_phase != "Succeeded" or app.retry_count) and app.operation_message:
            text += f' ("{app.operation_message}")'
    if app.refresh_requested:
        text += " refresh=pending"
    for kind, message in app.conditions:
        text += f"; {kind}: {message}"
    return text


def sync_failure(app: Application, revision: str | None) -> str | None:
    """Why waiting longer for ``revision`` is pointless: its sync failed.

    That includes a failed attempt Argo CD is retrying (automated syncs retry, five times with
    back-off by default in Argo CD 3): the same commit's manifests are retried as they are, and
    waiting for the last attempt would take minutes to say what the first one said.
    """
    for kind, message in app.conditions:
        if kind == "SyncError":
            return f"SyncError: {message}"
    if app.operation_phase in ("Failed", "Error") and (
        revision is None or app.operation_revision.startswith(revision)
    ):
        return f"sync {app.operation_phase}: {app.operation_message}"
    if (
        app.operation_phase == "Running"
        and app.retry_count
        and (revision is None or app.operation_target.startswith(revision))
    ):
        return (
            f"sync Failed on attempt {app.retry_count} (Argo CD retries it): "
            f"{app.operation_message}"
        )
    return None


class ArgoCD:
    """Argo CD Applications in one namespace (``argocd`` unless installed elsewhere)."""

    def __init__(self, kube_client: Kube, *, timeout: float, clock: Clock | None = None) -> None:
        self.kube = kube_client
        self.namespace = kube_client.namespace
        self.timeout = timeout
        self.clock = clock or time.monotonic
        self.resource = Resource(kube_client, APPLICATION, application_from)

    def read(self, name: str) -> Application:
        return application_from(self.kube.get(APPLICATION, name))

    def applications(self, label_selector: str | None = None) -> list[Application]:
        items, _ = self.kube.list(APPLICATION, label_selector=label_selector)
        return sorted((application_from(o) for o in items), key=lambda a: a.name)

    def refresh(self, name: str, *, hard: bool = False) -> None:
        """Ask the application controller to compare with Git now rather than at its next poll
        (three minutes by default): what ``argocd app get --refresh`` (``--hard-refresh``) does."""
        body = {"metadata": {"annotations": {REFRESH_ANNOTATION: "hard" if hard else "normal"}}}
        try:
            self.kube.patch(APPLICATION, name, body)
        except NotFound as exc:
            raise NotFound(self._unknown(name)) from exc

    def apply(self, document: Mapping[str, Any]) -> None:
        """Create or update an Application (or AppProject) by server-side apply."""
        kind = APP_PROJECT if document.get("kind") == "AppProject" else APPLICATION
        self.kube.apply(kind, document, field_manager="bgh")

    def terminate(self, name: str) -> None:
        """Stop a running sync, as ``argocd app terminate-op`` does (a retried failing sync
        would otherwise hold the Application's deletion)."""
        body = {"status": {"operationState": {"phase": "Terminating"}}}
        try:
            self.kube.patch(APPLICATION, name, body)
        except NotFound:
            return

    def stop_syncing(self, name: str) -> None:
        """Turn automated sync off and terminate a running sync: an Application that holds still
        before it is deleted (a failing sync being retried would hold its deletion)."""
        try:
            self.kube.patch(APPLICATION, name, {"spec": {"syncPolicy": {"automated": None}}})
            if self.read(name).operation_phase == "Running":
                self.terminate(name)
        except NotFound:
            return

    def delete(self, name: str, *, within: float | None = None) -> None:
        """Delete an Application and wait until it is gone; with Argo CD's resources finalizer
        (as every Application here has) that is after everything it deployed is deleted."""
        self.kube.delete(APPLICATION, name)
        self.kube.wait_deleted(
            APPLICATION, name, within=within if within is not None else self.timeout
        )

    def wait_synced(
        self,
        name: str,
        *,
        revision: str | None = None,
        health: Iterable[Health] = SETTLED,
        within: float | None = None,
    ) -> Waited[Application]:
        """Wait until ``name`` is Synced (at ``revision`` when given) with a health in ``health``
        (Healthy or Suspended by default). A failed sync ends the wait at once."""
        wanted = tuple(health)
        at = f" at {revision[:7]}" if revision else ""
        expecting = f"Synced{at} and {' or '.join(h.value for h in wanted)}"

        def error(message: str, _last: Application | None) -> HarnessError:
            if "gave up" in message:
                return SyncFailed(message)
            return WaitTimeout(message)

        return wait_for(
            self.resource,
            name,
            lambda app: app.synced_at(revision) and app.health in wanted,
            what=f"Application {self.namespace}/{name}: {expecting}",
            describe=describe,
            within=within if within is not None else self.timeout,
            fail_if=lambda app: sync_failure(app, revision),
            error=error,
            clock=self.clock,
        )

    def _unknown(self, name: str) -> str:
        known = ", ".join(a.name for a in self.applications()) or "none"
        return (
            f'Argo CD Application "{name}" not found in namespace "{self.namespace}"; '
            f"Applications there: {known}."
        )


# -- the Git repository ------------------------------------------------------------------------


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

    def seed(self, source: Path, *, suffix: str = "", namespace: str | None = None) -> str:
        """A fresh repository holding ``source`` (a ``gitops/`` tree) as ``gitops/``, committed
        and pushed; returns the commit. Every Application's ``repoURL`` becomes this repository.
        ``suffix`` is appended to every Application's name (so two copies can live in one Argo CD)
        and ``namespace`` replaces the destination namespace of the Applications that deploy into
        the cluster Argo CD runs in (the root keeps ``argocd``)."""
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
            _rewrite_applications(file, self.url, suffix, namespace)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "-m", f"Seed from {source}")
        return self.push()

    def commit(self, file: Path, message: str) -> str:
        """Commit ``file`` of the working clone alone; returns the new commit."""
        git(self.work, "commit", "--quiet", "-m", message, "--", str(file))
        return self.head()

    def push(self) -> str:
        """Push the working clone's branch; returns the commit pushed."""
        git(self.work, "push", "--quiet", "--set-upstream", "origin", "main")
        return self.head()

    def head(self) -> str:
        return git(self.work, "rev-parse", "HEAD").strip()


def push(work_tree: Path) -> str:
    """``git push`` the branch of the clone ``work_tree`` is in to its upstream; the commit."""
    git(work_tree, "push", "--quiet", what=f"git push from {work_tree}")
    return git(work_tree, "rev-parse", "HEAD").strip()


def _rewrite_applications(file: Path, url: str, suffix: str, namespace: str | None) -> None:
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
        if (
            namespace
            and destination.get("server") == IN_CLUSTER
            and destination.get("namespace") != ARGOCD_NAMESPACE
        ):
            destination["namespace"] = namespace
            changed = True
    if changed:
        out = io.StringIO()
        yaml.dump_all(documents, out)
        file.write_text(out.getvalue())


def applications_in(file: Path) -> list[dict[str, Any]]:
    """The Application documents of one file, as plain data."""
    yaml = YAML(typ="safe")
    return [d for d in yaml.load_all(file.read_text()) if isinstance(d, dict)]


# -- releases delivered by Argo CD ------------------------------------------------------------


class GitOpsDelivery:
    """The demo system as Argo CD delivers it: a root Application over a Git repository, and
    releases that are commits pushed to it.

    ``bootstrap`` applies the root and waits until every child Application of the cluster Argo CD
    runs in is synced; ``deliver`` commits a changed file, pushes it, asks each child for a
    refresh and waits until each is synced at that commit, then leaves the Rollouts to the
    caller's wait (Argo CD's health says Suspended for a paused blue-green Rollout).
    """

    def __init__(
        self,
        argocd: ArgoCD,
        repository: GitRepository,
        *,
        env: str = "qa",
        report: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.argocd = argocd
        self.repository = repository
        self.env = env
        self.report = report
        self.root_document = applications_in(repository.root_application(env))[0]
        self.root = str(self.root_document["metadata"]["name"])

    def children(self) -> list[Application]:
        """The environment's child Applications that deploy into this cluster: those the root
        lists among its resources, as Argo CD tracks them."""
        owned = {
            name
            for kind, name, _, _ in self.argocd.read(self.root).resources
            if kind == "Application"
        }
        return [
            app
            for app in self.argocd.applications()
            if app.name in owned and app.in_cluster and app.name.startswith(f"{self.env}-")
        ]

    def application_of(self, rollout: str) -> str:
        """The child Application that deploys Rollout ``rollout``."""
        children = self.children()
        for child in children:
            if any(kind == "Rollout" and name == rollout for kind, name, _, _ in child.resources):
                return child.name
        deployed = sorted(
            name for child in children for kind, name, _, _ in child.resources if kind == "Rollout"
        )
        raise NotFound(
            f'no {self.env} Application of root {self.root} deploys a Rollout "{rollout}"; '
            f"Rollouts they deploy: {', '.join(deployed) or 'none'}"
        )

    def wait_settled(
        self, health: Iterable[Health] = (Health.HEALTHY,), *, names: Iterable[str] = ()
    ) -> list[Application]:
        """Every child (or those named) Synced at the repository's head with one of ``health``."""
        revision = self.repository.head()
        wanted = tuple(health)
        return [
            self.argocd.wait_synced(name, revision=revision, health=wanted).value
            for name in (tuple(names) or tuple(c.name for c in self.children()))
        ]

    def bootstrap(self) -> list[Application]:
        """Apply the root Application and wait for it and its children to be synced and healthy."""
        revision = self.repository.head()
        self.argocd.apply(self.root_document)
        self.argocd.refresh(self.root)
        root = self.argocd.wait_synced(self.root, revision=revision)
        self.report(f"root Application {self.root}: {describe(root.value)} in {root.seconds:.1f}s")
        return self._wait_children(revision, refresh=False)

    def deliver(self, file: Path, message: str) -> str:
        """Commit ``file`` (alone) and push it; wait until Argo CD has synced that commit into
        every child Application. Returns the commit."""
        self.repository.commit(file, message)
        revision = self.repository.push()
        self.report(f"pushed {revision[:7]}: {message}")
        self.sync(revision)
        return revision

    def sync(self, revision: str) -> list[Application]:
        """Ask the root and the children for a refresh; wait until each child is synced at
        ``revision`` (a commit already pushed) and settled."""
        return self._wait_children(revision, refresh=True)

    def teardown(self) -> None:
        """Delete the root Application; its finalizer deletes the children and what they made.

        First the root and then every child stop syncing: with automated sync on, a child could
        start syncing a failing commit (and retry it for minutes) after a running sync had been
        terminated, and that holds its deletion; the root's self-heal would turn a child's
        automated sync back on."""
        self.argocd.stop_syncing(self.root)
        for kind, name, _, _ in self.argocd.read(self.root).resources:
            if kind == "Application":
                self.argocd.stop_syncing(name)
        self.argocd.delete(self.root)

    def _wait_children(self, revision: str, *, refresh: bool) -> list[Application]:
        children = self.children()
        if not children:
            there = ", ".join(a.name for a in self.argocd.applications())
            raise HarnessError(
                f"the root Application {self.root} made no {self.env}-* Applications for this "
                f"cluster; Applications there: {there}"
            )
        if refresh:
            # Refreshing the root too: it would otherwise compare the app of apps at its next poll.
            for app in (self.root, *(c.name for c in children)):
                self.argocd.refresh(app)
        synced = []
        for child in children:
            waited = self.argocd.wait_synced(child.name, revision=revision)
            self.report(f"{child.name}: {describe(waited.value)} in {waited.seconds:.1f}s")
            synced.append(waited.value)
        return synced
