"""How the environment a version file describes reaches a cluster, and the wait until it has.

``DirectApply`` renders the environment and server-side applies it with kubectl, as Argo CD's
sync would. ``ArgoCDDelivery`` is the demo system as Argo CD delivers it: a root Application over
a Git repository, and releases that are commits pushed there. Either way ``settle`` then waits
for each Rollout: a new one becomes Healthy, a changed one puts its new version on preview.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.argocd import Application, ArgoCD, Health, describe
from harness.errors import ConfigError, HarnessError, NotFound
from harness.git import GitRepository
from harness.gitops import GitOps, helm_binary, problems, read_documents
from harness.kube import HASH_LABEL, ROLLOUT, SERVICE, Rollout
from harness.rollouts import Phase, Rollouts, phase_of
from harness.target import Target

Report = Callable[[str], None]


@dataclass(frozen=True)
class Deployed:
    """One Rollout after a deploy: its name, version and the phase it settled in."""

    name: str
    image: str
    phase: str


class DirectApply:
    """The environment applied by the harness itself, with kubectl, to one target's namespace."""

    def __init__(self, target: Target, *, report: Report = lambda _line: None) -> None:
        self.target = target
        self.report = report

    def deploy(self, env: str) -> list[Deployed]:
        """Render ``env``, server-side apply it to the target, wait for every Rollout.

        A Rollout applied for the first time must become Healthy. One that was already there and
        whose pod template changed starts a blue-green release, which with manual promotion waits
        on preview: it must become Paused with the new version on preview (or Healthy, when
        nothing in its template changed).
        """
        settings = self.target.settings
        tree = GitOps(settings.gitops_dir)
        versions = tree.read_versions(env)
        namespace = settings.namespace
        objects = tree.render(
            env,
            helm=helm_binary(settings, self.report),
            namespace=namespace,
            values=self.target.chart_values(),
        )
        found = problems(objects, versions)
        if found:
            raise ConfigError(
                f"{versions.file} renders objects that would not work:\n  " + "\n  ".join(found)
            )
        kubectl = self.target.kubectl()
        kubectl.ensure_namespace(namespace)
        kube = self.target.kube(namespace)
        existing = {item["metadata"]["name"] for item in kube.list(ROLLOUT)[0]}
        objects = _keep_rollout_selectors(objects, kube.list(SERVICE)[0])
        kubectl.apply(objects, namespace=namespace)
        self.report(f"applied {len(objects)} objects of {env} to namespace {namespace}")
        rollouts = Rollouts(kube, timeout=settings.deadlines.rollout)
        names = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "Rollout"]
        return settle(rollouts, names, existing, report=self.report)


def settle(
    rollouts: Rollouts,
    names: Sequence[str],
    existing: Collection[str],
    *,
    report: Report = lambda _line: None,
) -> list[Deployed]:
    """Wait for each Rollout after its objects were applied (by the harness or by Argo CD).

    One that was not there before (not in ``existing``) must become Healthy; one that was must
    become Healthy, or Paused with the new version on preview, or be under its pre-promotion
    analysis. Degraded fails at once.
    """
    deployed = []
    for name in names:
        if name in existing:
            settled = rollouts.wait_for(
                name,
                _released,
                expecting="Healthy, or the new version on preview (Paused, or being analysed)",
                fail_if=_degraded,
            ).value
        else:
            settled = rollouts.wait_for_phase(name, Phase.HEALTHY)
        phase = phase_of(settled)[0].value
        image = next(iter(settled.images.values()), "")
        report(f"{name}: {phase} ({image})")
        deployed.append(Deployed(name, image, phase))
    return deployed


def _keep_rollout_selectors(
    objects: Sequence[Mapping[str, Any]], live_services: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The objects, each Service keeping the pod-template hash Argo Rollouts put in its selector.

    A Service's selector is an atomic map, so a server-side apply without the hash would drop it;
    an active Service without a hash makes the controller switch to the new ReplicaSet at once,
    skipping the manual-promotion pause. (Argo CD's client-side apply keeps keys it never set.)
    """
    hashes = {
        s["metadata"]["name"]: (s.get("spec") or {}).get("selector", {}).get(HASH_LABEL)
        for s in live_services
    }
    kept = []
    for obj in objects:
        live_hash = hashes.get(obj["metadata"]["name"]) if obj.get("kind") == "Service" else None
        if live_hash:
            spec = dict(obj["spec"])
            spec["selector"] = {**spec.get("selector", {}), HASH_LABEL: live_hash}
            obj = {**obj, "spec": spec}
        kept.append(dict(obj))
    return kept


def _released(rollout: Rollout) -> bool:
    """Settled after an apply: Healthy, or the new version on preview, either Paused or under
    its pre-promotion analysis (which pauses it only once it ends)."""
    phase = phase_of(rollout)[0]
    if phase is Phase.HEALTHY:
        return True
    on_preview = rollout.current_hash != rollout.stable_hash
    if phase is Phase.PAUSED:
        return bool(on_preview)
    analysis = rollout.pre_promotion_analysis
    return bool(
        on_preview
        and rollout.preview_selector == rollout.current_hash
        and analysis is not None
        and rollout.current_hash in analysis.name
        and analysis.status in ("Pending", "Running")
    )


def _degraded(rollout: Rollout) -> str | None:
    phase, message = phase_of(rollout)
    return f"the rollout is Degraded: {message}" if phase is Phase.DEGRADED else None


class ArgoCDDelivery:
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
        self.root_document = read_documents(repository.root_application(env))[0]
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
        self.wait_synced_at(revision)
        return revision

    def wait_synced_at(self, revision: str) -> list[Application]:
        """Ask the root and the children for a refresh; wait until each child is synced at
        ``revision`` (a commit already pushed) and settled. Argo CD syncs; this only asks it to
        look now and waits."""
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
