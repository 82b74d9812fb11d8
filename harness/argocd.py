"""Argo CD Applications: their sync and health as Argo CD reports them, refreshes, and waits.

``ArgoCD`` reads an Application's sync and health as Argo CD reports them (``status.sync``,
``status.health``, ``status.operationState``), asks for a refresh the way ``argocd app get
--refresh`` does (the ``argocd.argoproj.io/refresh`` annotation, which the application controller
removes once it has compared again), and waits on a watch until a revision is synced. A paused
blue-green Rollout is Suspended in Argo CD's health (its built-in Rollout health check), so the
waits accept Suspended beside Healthy unless told otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.errors import FailFast, HarnessError, NotFound, SyncFailed, WaitTimeout
from harness.kube import Kind, Kube, Resource
from harness.waits import Clock, Waited, wait_for
from harness.words import parse_word, read_word

APPLICATION = Kind("Application", "argoproj.io", "v1alpha1", "applications")
APP_PROJECT = Kind("AppProject", "argoproj.io", "v1alpha1", "appprojects")
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
ARGOCD_NAMESPACE = "argocd"
# The destination Argo CD gives the cluster it runs in.
IN_CLUSTER = "https://kubernetes.default.svc"


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
        sync=read_word(Sync, sync.get("status"), Sync.UNKNOWN),
        health=read_word(Health, health.get("status"), Health.UNKNOWN),
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

        def error(ended: WaitTimeout | FailFast) -> HarnessError:
            if isinstance(ended, FailFast):
                return SyncFailed(
                    ended.what,
                    reason=ended.reason,
                    elapsed=ended.elapsed,
                    last_seen=ended.last_seen,
                    last=ended.last,
                )
            return ended

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
