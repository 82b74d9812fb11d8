"""Argo Rollouts operations with exactly the semantics of ``kubectl argo rollouts``, and waits.

Each operation sends what the plugin sends (pkg/kubectl-argo-rollouts/cmd/* at the pinned
release): the same JSON merge patches, the status subresource first with the same fall-back, the
same JSON Patch for ``undo``, the same retry-on-conflict for ``set image``. The phase is computed
as the plugin's ``GetRolloutPhase`` does, so a runbook's "becomes Paused" means what the plugin's
user sees.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import enum
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness import kube
from harness.errors import (
    ConfigError,
    Expired,
    FailFast,
    HarnessError,
    NotFound,
    RolloutFailed,
    Unreachable,
    WaitTimeout,
)
from harness.kube import (
    ANALYSIS_RUN,
    HASH_LABEL,
    JSON_PATCH,
    MERGE_PATCH,
    REPLICA_SET,
    ROLLOUT,
    AnalysisRun,
    AnalysisRunRef,
    Conflict,
    Kube,
    Pod,
    ReplicaSet,
    Resource,
    Rollout,
    replica_set_from,
)
from harness.waits import Clock, Deadline, Waited, wait_for
from harness.words import parse_word

EPHEMERAL_METADATA = "rollout.argoproj.io/ephemeral-metadata"
"""The annotation on a ReplicaSet naming the labels and annotations the controller put on its
template from activeMetadata / previewMetadata."""

# The Rollouts controller records events through client-go's recorder, whose spam filter keeps
# at most this many events of one type per object, then one per five minutes
# (k8s.io/client-go tools/record: defaultSpamBurst, defaultSpamQPS). A Rollout that lives
# across many releases (a long-lived namespace) soon has its events dropped.
EVENT_SPAM_BURST = 25

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_seconds(text: str) -> float:
    """A Go duration (``2m``, ``1m30s``, ``500ms``) as the Rollouts CRDs write them, in seconds."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ConfigError(f"duration {text!r}: expected a Go duration such as 30s, 2m or 1m30s")
    return sum(float(n) * _GO_UNIT[u] for n, u in parts)


class AnalysisPhase(enum.StrEnum):
    """How an AnalysisRun ended, in Argo's words."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"

    @classmethod
    def parse(cls, word: str) -> AnalysisPhase:
        """The phase named by ``word``; a harness error (not ValueError) names the valid words."""
        return parse_word(cls, word, "analysis phase")


# How long the three-way revision check is retried (upstream's e2e: 3 s; more on a loaded machine).
SELECTOR_LAG = 10.0


class Gate(enum.StrEnum):
    """When a blue-green AnalysisRun runs: ``prePromotionAnalysis`` before the active Service
    switches, ``postPromotionAnalysis`` after it and before the new ReplicaSet becomes stable."""

    PRE_PROMOTION = "pre-promotion"
    POST_PROMOTION = "post-promotion"

    @classmethod
    def parse(cls, word: str) -> Gate:
        """The gate named by ``word``; a harness error (not ValueError) names the valid words."""
        return parse_word(cls, word, "analysis gate")


class Phase(enum.StrEnum):
    """The phase words of ``kubectl argo rollouts status``."""

    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    DEGRADED = "Degraded"

    @classmethod
    def parse(cls, word: str) -> Phase:
        """The phase named by ``word``; a harness error (not ValueError) names the valid words.

        pytest-bdd treats a ValueError from a step parameter converter as "no match", which would
        end in a misleading "step definition not found".
        """
        return parse_word(cls, word, "phase")


def phase_of(rollout: Rollout) -> tuple[Phase, str]:
    """The plugin's GetRolloutPhase: client-side checks first, then the controller's own phase."""
    if not _generation_observed(rollout):
        return Phase.PROGRESSING, "waiting for rollout spec update to be observed"
    if rollout.controller_pause and not rollout.pause_conditions:
        return Phase.PROGRESSING, "waiting for rollout to unpause"
    if rollout.template_resolved_from_ref and not _workload_generation_observed(rollout):
        return (
            Phase.PROGRESSING,
            "waiting for rollout spec update to be observed for the reference workload",
        )
    if rollout.status_phase:
        return Phase.parse(rollout.status_phase), rollout.status_message
    return calculate_phase(rollout)


def calculate_phase(rollout: Rollout) -> tuple[Phase, str]:
    """The controller's CalculateRolloutPhase, for a blue-green Rollout without status.phase."""
    for condition in rollout.conditions:
        if condition.type == "InvalidSpec":
            return Phase.DEGRADED, f"InvalidSpec: {condition.message}"
        if condition.reason in ("RolloutAborted", "ProgressDeadlineExceeded"):
            return Phase.DEGRADED, f"{condition.reason}: {condition.message}"
    if rollout.paused:
        return Phase.PAUSED, "manually paused"
    if rollout.pause_conditions:
        return Phase.PAUSED, rollout.pause_conditions[0].reason
    if rollout.restart_at is not None and rollout.restart_at != rollout.restarted_at:
        return Phase.PROGRESSING, "rollout is restarting"
    if rollout.updated_replicas < rollout.spec_replicas:
        return Phase.PROGRESSING, "more replicas need to be updated"
    if rollout.available_replicas < rollout.updated_replicas:
        return Phase.PROGRESSING, "updated replicas are still becoming available"
    if not rollout.active_selector or rollout.active_selector != rollout.current_hash:
        return Phase.PROGRESSING, "active service cutover pending"
    if not rollout.stable_hash or rollout.stable_hash != rollout.current_hash:
        post = rollout.post_promotion_analysis
        if rollout.has_post_promotion_analysis and (
            post is None or post.status not in ("Successful", "Failed", "Error", "Inconclusive")
        ):
            return Phase.PROGRESSING, "waiting for analysis to complete"
        return Phase.PROGRESSING, "waiting for post-promotion verification to complete"
    return Phase.HEALTHY, ""


def _generation_observed(rollout: Rollout) -> bool:
    try:
        observed = int(rollout.observed_generation)
    except ValueError:
        return True  # a pod-template hash, from releases before observedGeneration was numeric
    return observed >= rollout.generation


def _workload_generation_observed(rollout: Rollout) -> bool:
    wanted = rollout.annotations.get(kube.WORKLOAD_GENERATION_ANNOTATION)
    if wanted is None:
        return True
    try:
        return int(rollout.workload_observed_generation) == int(wanted)
    except ValueError:
        return True


def describe(rollout: Rollout) -> str:
    """One line with what a reader needs to see of a Rollout's state."""
    phase, message = phase_of(rollout)
    text = f"phase={phase.value}"
    if message:
        text += f', message="{message}"'
    text += (
        f" current={rollout.current_hash or '-'} stable={rollout.stable_hash or '-'}"
        f" active={rollout.active_selector or '-'} preview={rollout.preview_selector or '-'}"
    )
    if rollout.abort:
        text += " abort=true"
    return text


@dataclass(frozen=True)
class Revisions:
    """The three-way check upstream's e2e makes for one Service: status selector, Service
    selector and the hash label of the ReplicaSet with the expected revision must agree."""

    service: str
    status_selector: str
    service_selector: str
    replica_set_hash: str
    revision: int

    @property
    def agree(self) -> bool:
        return self.status_selector == self.service_selector == self.replica_set_hash != ""


class Rollouts:
    """Rollouts operations and waits bound to one namespace.

    Revision numbers given to and returned by these methods count from ``first_revision``: a
    Rollout's revision there is its revision 1, and older ReplicaSets are not its history. On a
    fresh namespace that is the identity; on a long-lived one a scenario's "revision 2" is the
    release it made, whatever the Rollout's history before it.
    """

    def __init__(
        self,
        kube_client: Kube,
        *,
        timeout: float,
        clock: Clock | None = None,
        now: Callable[[], datetime.datetime] | None = None,
        first_revision: Mapping[str, int] | None = None,
        events_after: int = 0,
    ) -> None:
        self.kube = kube_client
        self.first_revision = dict(first_revision or {})
        # Events written at or before this resourceVersion belong to earlier work on a
        # long-lived namespace; the event readers ignore them.
        self.events_after = events_after
        self.namespace = kube_client.namespace
        self.timeout = timeout
        self.clock = clock
        self.now = now or (lambda: datetime.datetime.now(datetime.UTC))
        self.resource = Resource(kube_client, ROLLOUT, kube.rollout_from)

    def counting_from(self, first_revision: Mapping[str, int]) -> Rollouts:
        """The same Rollouts, with each one's revision ``first_revision[name]`` as its 1."""
        return Rollouts(
            self.kube,
            timeout=self.timeout,
            clock=self.clock,
            now=self.now,
            first_revision=first_revision,
            events_after=self.events_after,
        )

    def events_mark(self) -> int:
        """The namespace's Event list version now: pass it as ``events_after`` to ignore
        every Event written so far (a long-lived namespace's history)."""
        _, version = self.kube.list(kube.EVENT)
        return int(version) if version.isdigit() else 0

    def _absolute(self, name: str, revision: int) -> int:
        return revision + self.first_revision.get(name, 1) - 1

    def _relative(self, name: str, revision: int) -> int:
        return revision - self.first_revision.get(name, 1) + 1

    def _history(self, name: str) -> dict[int, ReplicaSet]:
        """The Rollout's ReplicaSets by revision as this object counts them, oldest first."""
        first = self.first_revision.get(name, 1)
        return {
            self._relative(name, rs.revision): rs
            for rs in self.replica_sets(name)
            if rs.revision is not None and rs.revision >= first
        }

    # -- reads ------------------------------------------------------------------------------

    def read(self, name: str) -> Rollout:
        return kube.rollout_from(self.kube.get(ROLLOUT, name))

    def names(self) -> list[str]:
        """Every Rollout in the namespace."""
        return sorted(o["metadata"]["name"] for o in self.kube.list(ROLLOUT)[0])

    def names_to_check(self) -> list[str]:
        """Every Rollout in the namespace, for a check over all of them: none is a NotFound,
        since "every Rollout is Healthy" over zero Rollouts would pass having checked nothing."""
        names = self.names()
        if not names:
            raise NotFound(
                f'no Rollouts in namespace "{self.kube.namespace}": nothing to check, and a '
                "check over zero Rollouts is not a pass. Is the demo system deployed there, and "
                "is BGH_NAMESPACE (--bgh-namespace) its namespace?"
            )
        return names

    def version(self, name: str) -> str:
        """The tag of the Rollout's first container image (what the pod template asks for)."""
        image = next(iter(self.read(name).images.values()), "")
        return image.split("@", 1)[0].rpartition(":")[2] if ":" in image else "latest"

    def not_in_phase(self, phase: Phase) -> dict[str, str]:
        """Every Rollout not in ``phase`` now, with the phase and message it is in instead."""
        found = {}
        for name in self.names_to_check():
            current, message = self.read_status(name)
            if current is not phase:
                found[name] = f"{current.value}: {message}" if message else current.value
        return found

    def revision_mismatches(
        self, name: str, *, active: int, preview: int | None = None
    ) -> list[str]:
        """Where the three-way check fails: status selector, Service selector and the hash of
        the ReplicaSet with the revision asked for must be one and the same (``preview=None``:
        the active Service only)."""
        return [
            f"{r.service} (revision {r.revision}): status selector {r.status_selector or '-'}, "
            f"Service selector {r.service_selector or '-'}, ReplicaSet {r.replica_set_hash or '-'}"
            for r in self.revisions(name, active=active, preview=preview)
            if r is not None and not r.agree
        ]

    def wait_for_revisions(
        self,
        name: str,
        *,
        active: int,
        preview: int | None = None,
        within: float = SELECTOR_LAG,
    ) -> list[str]:
        """Block until the three-way check agrees (``revision_mismatches`` is empty), re-checked
        on each change of the Rollout; the mismatches still there at the deadline, or none.

        The status selectors are read back from the Services after they are switched, so right
        after a phase is reached they may lag: upstream's e2e retries this same check for 3 s
        ("switching the active service selector lags behind the Degraded/Promotion event",
        test/fixtures/then.go ``verifyBlueGreenSelectorRevision``).
        """
        found: list[str] = []

        def agree(_: Rollout) -> bool:
            found[:] = self.revision_mismatches(name, active=active, preview=preview)
            return not found

        expecting = f"revision {active} on active" + (
            f" and {preview} on preview" if preview is not None else ""
        )
        with contextlib.suppress(WaitTimeout):
            self.wait_for(name, agree, expecting=expecting, within=within)
        return found

    def selector_disagreements(self) -> list[str]:
        """Every Rollout whose status selectors differ from its Services' selectors."""
        found = []
        for name in self.names_to_check():
            rollout = self.read(name)
            for service, selector in (
                (rollout.active_service, rollout.active_selector),
                (rollout.preview_service, rollout.preview_selector),
            ):
                if not service:
                    continue
                live = kube.service_from(self.kube.get(kube.SERVICE, service)).pod_template_hash
                if live != selector:
                    found.append(
                        f'Rollout "{name}": status says {selector or "-"} for Service '
                        f'"{service}", whose selector has {live or "-"}'
                    )
        return found

    def wait_for_history_limit(
        self, name: str, *, within: float | None = None
    ) -> list[tuple[int, str]]:
        """Block until the controller has deleted the old ReplicaSets its
        ``revisionHistoryLimit`` lets it delete now; ``revision_versions`` then.

        rollout/sync.go ``reconcileRevisionHistoryLimit``, run on every reconcile: of the
        ReplicaSets neither current nor stable, as many as exceed the limit (default 10) are
        taken oldest first by creation time, ties (whole seconds) by name, and each one scaled
        to 0 is deleted (once its pods are gone); one that still has replicas is skipped, not
        replaced by a newer one.
        The trim comes on a reconcile after the one that made the new ReplicaSet stable, so
        right after Healthy there may be one too many. Watches the ReplicaSets for deletions.
        """
        rollout = self.read(name)
        limit = int((rollout.raw.get("spec") or {}).get("revisionHistoryLimit", 10))
        kept = {rollout.current_hash, rollout.stable_hash}
        selector = self._selector(name)
        deadline = Deadline(
            within if within is not None else self.timeout, self.clock or time.monotonic
        )
        while True:
            _, version = self.kube.list(kube.REPLICA_SET, label_selector=selector)
            old = sorted(
                (rs for rs in self.replica_sets(name) if rs.pod_template_hash not in kept),
                key=lambda rs: (rs.created, rs.name),
            )
            # Scaled to 0 but with pods still going (status.replicas > 0) is deleted once they
            # are gone; only a ReplicaSet asked to keep replicas holds the trim back.
            deletable = [rs.name for rs in old[: max(0, len(old) - limit)] if rs.replicas == 0]
            if not deletable:
                return self.revision_versions(name)
            if deadline.expired():
                raise WaitTimeout(
                    f'Rollout "{name}" in namespace "{self.namespace}"',
                    within=deadline.seconds,
                    last_seen=f"revisionHistoryLimit {limit}, not deleted yet: "
                    + ", ".join(deletable),
                    expecting="its history trimmed to revisionHistoryLimit",
                )
            with contextlib.suppress(Expired, Unreachable):
                for event, _ in self.kube.watch(
                    kube.REPLICA_SET,
                    resource_version=version,
                    timeout_seconds=max(1, math.ceil(deadline.left())),
                    label_selector=selector,
                ):
                    if event == "DELETED":
                        break

    def revision_versions(self, name: str) -> list[tuple[int, str]]:
        """(revision, image tag) of every ReplicaSet the Rollout keeps, oldest first: the
        revision history. An undo reuses the old ReplicaSet (its revision moves up); releasing an
        old version again makes a new one."""
        found = []
        for revision, rs in self._history(name).items():
            containers = ((rs.template.get("spec") or {}).get("containers")) or [{}]
            image = str(containers[0].get("image", ""))
            tag = image.split("@", 1)[0].rpartition(":")[2] if ":" in image else "latest"
            found.append((revision, tag))
        return found

    def revisions_with_pods(self, name: str) -> list[int]:
        """The revisions whose ReplicaSet is scaled up now."""
        return [revision for revision, rs in self._history(name).items() if rs.replicas > 0]

    def wait_for_scaled_down(
        self, name: str, revision: int, *, within: float | None = None
    ) -> ReplicaSet:
        """Block until the ReplicaSet of ``revision`` has no replicas (scaleDownDelaySeconds)."""
        by_revision = self._history(name)
        if revision not in by_revision:
            known = ", ".join(str(r) for r in by_revision) or "none"
            raise NotFound(f'Rollout "{name}" has no revision {revision}; revisions: {known}')
        target = by_revision[revision]
        return wait_for(
            Resource(self.kube, kube.REPLICA_SET, kube.replica_set_from),
            target.name,
            lambda rs: rs.replicas == 0,
            what=f"ReplicaSet {self.namespace}/{target.name} (revision {revision}): scaled down",
            describe=lambda rs: f"replicas={rs.replicas} ready={rs.ready_replicas}",
            within=within if within is not None else self.timeout,
            clock=self.clock or time.monotonic,
        ).value

    def _events(self, name: str) -> list[dict[str, Any]]:
        items, _ = self.kube.list(kube.EVENT)
        return [
            e
            for e in items
            if (e.get("involvedObject") or {}).get("kind") == "Rollout"
            and (e.get("involvedObject") or {}).get("name") == name
        ]

    def event_reasons(self, name: str, *, only: Iterable[str] | None = None) -> list[str]:
        """The reasons of the Rollout's events since ``events_after``, oldest first (``only``:
        just these reasons). An event seen again is one Event whose count and lastTimestamp
        grow, so it sorts where it was last seen."""
        wanted = set(only) if only is not None else None

        def version(event: Mapping[str, Any]) -> int:
            raw = str((event.get("metadata") or {}).get("resourceVersion") or "0")
            return int(raw) if raw.isdigit() else 0

        def when(event: Mapping[str, Any]) -> tuple[str, int]:
            return str(event.get("lastTimestamp") or event.get("eventTime") or ""), version(event)

        mine = [
            e
            for e in self._events(name)
            if version(e) > self.events_after and (wanted is None or e.get("reason") in wanted)
        ]
        return [str(e.get("reason", "")) for e in sorted(mine, key=when)]

    def events_recorded(self, name: str) -> int:
        """How many Normal events the controller has recorded for this Rollout object (the
        counts of its Events summed): from ``EVENT_SPAM_BURST`` on, it may be dropping them."""
        uid = self.kube.get(ROLLOUT, name)["metadata"]["uid"]
        return sum(
            int(e.get("count") or 1)
            for e in self._events(name)
            if (e.get("involvedObject") or {}).get("uid") == uid and e.get("type") == "Normal"
        )

    def read_status(self, name: str) -> tuple[Phase, str]:
        """What ``kubectl argo rollouts status`` would print: phase and message."""
        return phase_of(self.read(name))

    def replica_sets(self, name: str) -> list[ReplicaSet]:
        """The ReplicaSets the Rollout owns, oldest revision first."""
        raw = self.kube.get(ROLLOUT, name)
        labels = ((raw.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
        items, _ = self.kube.list(kube.REPLICA_SET, label_selector=selector)
        uid = raw["metadata"]["uid"]
        owned = [
            kube.replica_set_from(rs)
            for rs in items
            if any(
                o.get("uid") == uid and o.get("controller")
                for o in rs["metadata"].get("ownerReferences") or []
            )
        ]
        return sorted(owned, key=lambda rs: rs.revision or 0)

    def revisions(
        self, name: str, *, active: int, preview: int | None = None
    ) -> tuple[Revisions, Revisions | None]:
        """The three-way selector check for the active and (when ``preview`` is given) the
        preview Service; asking for a preview of a Rollout without a previewService is an
        error rather than a check that cannot fail."""
        rollout = self.read(name)
        if preview is not None and not rollout.preview_service:
            raise NotFound(
                f'Rollout "{name}" has no previewService; check its active revision only '
                "(preview=None)"
            )
        by_revision = self._history(name)

        def check(service: str, status_selector: str, revision: int) -> Revisions:
            live = kube.service_from(self.kube.get(kube.SERVICE, service))
            rs = by_revision.get(revision)
            return Revisions(
                service,
                status_selector,
                live.pod_template_hash,
                rs.pod_template_hash if rs else "",
                revision,
            )

        return (
            check(rollout.active_service, rollout.active_selector, active),
            check(rollout.preview_service, rollout.preview_selector, preview)
            if preview is not None
            else None,
        )

    def stable_revision(self, name: str) -> int:
        """The revision of the ReplicaSet ``status.stableRS`` names; NotFound before there is
        one."""
        stable = self.read(name).stable_hash
        for rs in self.replica_sets(name):
            if stable and rs.pod_template_hash == stable and rs.revision is not None:
                return rs.revision
        raise NotFound(f'Rollout "{name}" has no stable ReplicaSet yet (status.stableRS empty)')

    def pods_by_revision(self, name: str) -> dict[int, list[Pod]]:
        """The Rollout's pods that are not terminating, by the revision of their ReplicaSet
        (matched through the pod-template hash label); revisions without pods are left out."""
        hashes = {rs.pod_template_hash: rs.revision or 0 for rs in self.replica_sets(name)}
        items, _ = self.kube.list(kube.POD, label_selector=self._selector(name))
        found: dict[int, list[Pod]] = {}
        for pod in (kube.pod_from(item) for item in items):
            revision = hashes.get(pod.labels.get(HASH_LABEL, ""))
            if revision is not None and not pod.deleting:
                found.setdefault(revision, []).append(pod)
        return dict(sorted(found.items()))

    def analysis_runs(self, name: str) -> list[AnalysisRun]:
        """The AnalysisRuns the Rollout owns, oldest first."""
        uid = self.kube.get(ROLLOUT, name)["metadata"]["uid"]
        items, _ = self.kube.list(ANALYSIS_RUN)
        owned = [
            item
            for item in items
            if any(o.get("uid") == uid for o in item["metadata"].get("ownerReferences") or [])
        ]
        owned.sort(key=lambda item: str(item["metadata"].get("creationTimestamp", "")))
        return [kube.analysis_run_from(item) for item in owned]

    def wait_for_analysis_run_running(
        self, run: str, *, within: float | None = None
    ) -> AnalysisRun:
        """Block until AnalysisRun ``run`` is Running; one that ended already fails fast."""
        ended = {p.value for p in AnalysisPhase}
        return wait_for(
            Resource(self.kube, ANALYSIS_RUN, kube.analysis_run_from),
            run,
            lambda r: r.phase == "Running",
            what=f"AnalysisRun {self.namespace}/{run}: Running",
            describe=lambda r: (
                f"phase={r.phase or '-'}" + (f', message="{r.message}"' if r.message else "")
            ),
            fail_if=lambda r: f"it ended {r.phase}: {r.message}" if r.phase in ended else None,
            within=within if within is not None else self.timeout,
            clock=self.clock or time.monotonic,
        ).value

    def _selector(self, name: str) -> str | None:
        labels = ((self.kube.get(ROLLOUT, name).get("spec") or {}).get("selector") or {}).get(
            "matchLabels"
        ) or {}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None

    # -- operations (kubectl argo rollouts ...) --------------------------------------------

    def promote(self, name: str, *, full: bool = False) -> Rollout:
        """``promote [--full]``: clear pause conditions and unpause, or ask for a full promotion."""
        rollout = self.read(name)
        spec_patch: dict[str, Any] | None = None
        status_patch: dict[str, Any] | None = None
        unified: dict[str, Any]
        if full:
            if rollout.paused:
                spec_patch = {"spec": {"paused": False}}
            if rollout.current_hash != rollout.stable_hash:
                status_patch = {"status": {"promoteFull": True}}
            unified = {"spec": {"paused": False}, "status": {"promoteFull": True}}
        else:
            if rollout.paused:
                spec_patch = {"spec": {"paused": False}}
            if rollout.pause_conditions:
                status_patch = {"status": {"pauseConditions": None}}
            unified = {"spec": {"paused": False}, "status": {"pauseConditions": None}}
        if status_patch is not None:
            try:
                self.kube.patch(ROLLOUT, name, status_patch, subresource="status")
            except NotFound:
                spec_patch = unified  # no status subresource: one patch for both
        if spec_patch is not None:
            self.kube.patch(ROLLOUT, name, spec_patch)
        return self.read(name)

    def abort(self, name: str) -> Rollout:
        """``abort``: ``{"status":{"abort":true}}``, status subresource first."""
        return self._status_first(name, {"status": {"abort": True}})

    def retry(self, name: str) -> Rollout:
        """``retry rollout``: ``{"status":{"abort":false}}``, status subresource first."""
        return self._status_first(name, {"status": {"abort": False}})

    def pause(self, name: str) -> Rollout:
        """``pause``: ``{"spec":{"paused":true}}``."""
        return kube.rollout_from(self.kube.patch(ROLLOUT, name, {"spec": {"paused": True}}))

    def restart(self, name: str) -> Rollout:
        """``restart``: ``{"spec":{"restartAt":"<now, UTC, RFC 3339>"}}``."""
        at = self.now().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return kube.rollout_from(self.kube.patch(ROLLOUT, name, {"spec": {"restartAt": at}}))

    def set_image(self, name: str, container: str, image: str, *, attempts: int = 5) -> Rollout:
        """``set image NAME CONTAINER=IMAGE``: GET, set, PUT; retried on a 409 conflict."""
        for attempt in range(1, attempts + 1):
            raw = self.kube.get(ROLLOUT, name)
            updated = _with_image(raw, container, image)
            try:
                return kube.rollout_from(self.kube.replace(ROLLOUT, name, updated))
            except Conflict:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def set_image_version(self, name: str, version: str) -> Rollout:
        """Set every container's image tag to ``version``, keeping each image's repository."""
        rollout = self.read(name)
        for container, image in rollout.images.items():
            repository = _repository(image)
            self.set_image(name, container, f"{repository}:{version}")
        return self.read(name)

    def undo(
        self,
        name: str,
        *,
        to_revision: int | None = None,
        without_ephemeral_metadata: bool = False,
    ) -> str:
        """``undo [--to-revision=N]``: put an older ReplicaSet's pod template back.

        Returns the plugin's message; "skipped rollback ..." when the template already matches.

        The plugin copies the ReplicaSet's template as it is, with the labels the controller put
        there from activeMetadata / previewMetadata (``rollout.argoproj.io/ephemeral-metadata``
        names them); undoing to the stable ReplicaSet then makes a new pod-template hash. With
        ``without_ephemeral_metadata`` those labels and annotations stay out of the template
        put back, so the recorded ReplicaSet itself comes back (``harness.restore``).
        """
        raw = self.kube.get(ROLLOUT, name)
        history = self._history(name)
        replica_sets = list(history.values())
        if to_revision:
            target = history.get(to_revision)
            if target is None:
                known = ", ".join(str(r) for r in history) or "none"
                raise NotFound(
                    f'Rollout "{name}": unable to find specified revision {to_revision} in '
                    f"history; revisions there: {known}"
                )
        else:
            if len(replica_sets) < 2:
                raise NotFound(f'no revision found for rollout "{name}" to undo to')
            target = replica_sets[-2]
        template = copy.deepcopy(dict(target.template))
        if without_ephemeral_metadata:
            _drop_ephemeral_metadata(template, target.annotations.get(EPHEMERAL_METADATA))
        rollout_template = copy.deepcopy((raw.get("spec") or {}).get("template") or {})
        for side in (template, rollout_template):
            ((side.get("metadata") or {}).get("labels") or {}).pop(HASH_LABEL, None)
        if _derivative(rollout_template, template):
            matched = self._relative(name, target.revision or 0)
            return f"skipped rollback (current template already matches revision {matched})"
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        self.kube.patch(ROLLOUT, name, patch, content_type=JSON_PATCH)
        return f"rollout '{name}' undo"

    def _status_first(self, name: str, patch: Mapping[str, Any]) -> Rollout:
        try:
            raw = self.kube.patch(ROLLOUT, name, patch, subresource="status")
        except NotFound:
            raw = self.kube.patch(ROLLOUT, name, patch, content_type=MERGE_PATCH)
        return kube.rollout_from(raw)

    # -- waits ------------------------------------------------------------------------------

    def wait_for(
        self,
        name: str,
        ok: Callable[[Rollout], bool],
        *,
        expecting: str,
        fail_if: Callable[[Rollout], str | None] | None = None,
        excursion: Callable[[Rollout], str | None] | None = None,
        within: float | None = None,
    ) -> Waited[Rollout]:
        within = within if within is not None else self.timeout
        what = f"Rollout {self.namespace}/{name}: {expecting}"

        def failed(ended: WaitTimeout | FailFast) -> HarnessError:
            where = f'Rollout "{name}" in namespace "{self.namespace}"'
            if isinstance(ended, FailFast):
                return RolloutFailed(
                    where,
                    reason=ended.reason,
                    elapsed=ended.elapsed,
                    last_seen=ended.last_seen,
                    last=ended.last,
                    excursions=ended.excursions,
                )
            return WaitTimeout(
                where,
                within=ended.within,
                last_seen=ended.last_seen,
                expecting=expecting,
                excursions=ended.excursions,
            )

        return wait_for(
            self.resource,
            name,
            ok,
            what=what,
            describe=describe,
            within=within,
            fail_if=fail_if,
            excursion=excursion,
            error=failed,
            clock=self.clock or time.monotonic,
        )

    def wait_for_phase(self, name: str, phase: Phase, *, within: float | None = None) -> Rollout:
        """Block until the plugin would show ``phase``. A final Degraded (when not awaited)
        fails fast; one the controller recovers from is waited through and reported."""
        return self.waited_for_phase(name, phase, within=within).value

    def waited_for_phase(
        self, name: str, phase: Phase, *, within: float | None = None
    ) -> Waited[Rollout]:
        """``wait_for_phase``, returning what the wait observed: how long it took and every
        excursion through a recoverable Degraded (when, why, how long)."""
        return self.wait_for(
            name,
            lambda r: phase_of(r)[0] is phase,
            expecting=phase.value,
            fail_if=lambda r: _gives_up_on(phase, r),
            excursion=lambda r: _waits_through(phase, r),
            within=within,
        )

    def wait_for_every_phase(self, names: Iterable[str], phase: Phase) -> list[Rollout]:
        """``wait_for_phase`` for each Rollout in turn (the deadline applies to each)."""
        return [self.wait_for_phase(name, phase) for name in names]

    def wait_until_settled(self, names: Iterable[str]) -> list[Rollout]:
        """Each Rollout Healthy, and its older ReplicaSets stripped of their ephemeral metadata.

        What "released and promoted" means before the next operation: an undo, a restore or the
        next release then starts from the template the controller keeps, not one that still
        carries the previous side's ``role``.
        """
        settled = []
        for name in names:
            settled.append(self.wait_for_phase(name, Phase.HEALTHY))
            self.wait_for_ephemeral_metadata_moved(name)
        return settled

    def wait_for_ephemeral_metadata_moved(self, name: str) -> None:
        """Block until no ReplicaSet of ``name`` but the stable one carries ephemeral metadata.

        Healthy is reported on the reconcile that marks the new ReplicaSet stable; the controller
        strips ``role`` from the older ReplicaSets' templates a reconcile later
        (rollout/ephemeralmetadata.go). An undo in between copies that label into the Rollout's
        template (the plugin copies the template as it is), which makes a new pod-template hash
        instead of the fast rollback to the ReplicaSet still up.
        """
        stable = self.read(name).stable_hash
        source = Resource(self.kube, REPLICA_SET, replica_set_from)
        for rs in self.replica_sets(name):
            if rs.pod_template_hash == stable or EPHEMERAL_METADATA not in rs.annotations:
                continue
            wait_for(
                source,
                rs.name,
                lambda r: EPHEMERAL_METADATA not in r.annotations,
                what=f"ReplicaSet {rs.namespace}/{rs.name}: ephemeral metadata removed",
                describe=lambda r: f"annotations {sorted(r.annotations)}",
                within=self.timeout,
                clock=self.clock or time.monotonic,
            )

    def promote_each(self, names: Iterable[str], *, full: bool = False) -> list[Rollout]:
        return [self.promote(name, full=full) for name in names]

    def abort_each(self, names: Iterable[str]) -> list[Rollout]:
        return [self.abort(name) for name in names]

    def retry_each(self, names: Iterable[str]) -> list[Rollout]:
        return [self.retry(name) for name in names]

    def wait_for_analysis(
        self, name: str, gate: Gate = Gate.PRE_PROMOTION, *, within: float | None = None
    ) -> AnalysisRunRef:
        """Block until the current revision's AnalysisRun of ``gate`` has ended (as
        ``status.blueGreen.<gate>AnalysisRunStatus`` reports it); returns how it ended."""
        ended = {p.value for p in AnalysisPhase}

        def current_run(rollout: Rollout) -> AnalysisRunRef | None:
            return _current_run(rollout, gate)

        def has_ended(rollout: Rollout) -> bool:
            run = current_run(rollout)
            return run is not None and run.status in ended

        if within is None:
            # The run cannot end before its metrics' initialDelay: the deadline counts from
            # when it could, not from when it began.
            started = self.wait_for(
                name,
                lambda r: current_run(r) is not None,
                expecting=f"its {gate} analysis to start",
            ).value
            run = current_run(started)
            within = self.timeout + (self._initial_delay(run.name) if run is not None else 0.0)
        rollout = self.wait_for(
            name, has_ended, expecting=f"its {gate} analysis to end", within=within
        ).value
        found = current_run(rollout)
        if found is None:  # the wait returns only once there is one
            raise NotFound(f'Rollout "{name}" has no {gate} AnalysisRun')
        return found

    def wait_for_analysis_running(self, name: str, gate: Gate = Gate.PRE_PROMOTION) -> AnalysisRun:
        """Block until the current revision's AnalysisRun of ``gate`` exists and is Running;
        one that ended already (say, cancelled) fails fast, naming how it ended."""

        started = self.wait_for(
            name,
            lambda r: _current_run(r, gate) is not None,
            expecting=f"its {gate} analysis to start",
        ).value
        run = _current_run(started, gate)
        if run is None:  # the wait returns only once there is one
            raise NotFound(f'Rollout "{name}" has no {gate} AnalysisRun')
        return self.wait_for_analysis_run_running(run.name)

    def _initial_delay(self, run: str) -> float:
        """The longest ``initialDelay`` of AnalysisRun ``run``'s metrics, in seconds."""
        try:
            raw = self.kube.get(ANALYSIS_RUN, run)
        except NotFound:
            return 0.0
        metrics = (raw.get("spec") or {}).get("metrics") or []
        delays = [go_duration_seconds(m.get("initialDelay") or "0s") for m in metrics]
        return max(delays, default=0.0)

    def wait_for_active_revision(
        self, name: str, revision: int, *, within: float | None = None
    ) -> Rollout:
        """Block until the active Service's selector is the hash of ``revision``'s ReplicaSet,
        waiting for that ReplicaSet to exist (right after ``set_image`` it may not yet);
        NotFound at once for a revision that cannot come (the controller has made the
        ReplicaSet of the template it observed, and it is not that one)."""
        return self._wait_for_selector(name, "active", revision, within)

    def wait_for_preview_revision(
        self, name: str, revision: int, *, within: float | None = None
    ) -> Rollout:
        """As ``wait_for_active_revision``, for the preview Service."""
        return self._wait_for_selector(name, "preview", revision, within)

    def _wait_for_selector(
        self, name: str, side: str, revision: int, within: float | None
    ) -> Rollout:
        hashes: dict[int, str] = {}

        def selector(rollout: Rollout) -> str:
            return rollout.active_selector if side == "active" else rollout.preview_selector

        def on_revision(rollout: Rollout) -> bool:
            # A new ReplicaSet shows in the Rollout's status (currentPodHash) when it is
            # created, so reading the ReplicaSets again on each change of the Rollout sees it;
            # an undo moves an old ReplicaSet's revision up, so the map is never cached.
            hashes.clear()
            hashes.update({r: rs.pod_template_hash for r, rs in self._history(name).items()})
            return revision in hashes and selector(rollout) == hashes[revision]

        def state(rollout: Rollout) -> str:
            known = ", ".join(f"{r}={h}" for r, h in sorted(hashes.items()) if r) or "none"
            return f"{describe(rollout)} revisions: {known}"

        def never_comes(rollout: Rollout) -> str | None:
            # Once the controller has observed the template and made its ReplicaSet (status
            # says so in one write), no other revision appears without a new template.
            if revision in hashes or rollout.observed_generation != str(rollout.generation):
                return None
            if not rollout.current_hash or rollout.current_hash not in hashes.values():
                return None
            known = ", ".join(str(r) for r in sorted(hashes)) or "none"
            return f"has no ReplicaSet with revision {revision}; revisions: {known}"

        def failed(ended: WaitTimeout | FailFast) -> HarnessError:
            if isinstance(ended, FailFast):
                return NotFound(f'Rollout "{name}" {ended.reason}')
            return ended

        return wait_for(
            self.resource,
            name,
            on_revision,
            what=f"Rollout {self.namespace}/{name}: {side} on revision {revision}",
            describe=state,
            within=within if within is not None else self.timeout,
            fail_if=never_comes,
            error=failed,
            clock=self.clock or time.monotonic,
        ).value


def _current_run(rollout: Rollout, gate: Gate) -> AnalysisRunRef | None:
    """The AnalysisRun of ``gate`` the Rollout's status names, if it is the current revision's
    (its name carries the pod-template hash)."""
    run = (
        rollout.pre_promotion_analysis
        if gate is Gate.PRE_PROMOTION
        else rollout.post_promotion_analysis
    )
    return run if run is not None and rollout.current_hash in run.name else None


def _gives_up_on(phase: Phase, rollout: Rollout) -> str | None:
    """Why a wait for ``phase`` should stop at once on this state, or None to keep waiting.

    Final: aborted, InvalidSpec, a progress deadline with ``progressDeadlineAbort``. Waited
    through (see ``_waits_through``): ProgressDeadlineExceeded without it, which the controller
    clears by itself as soon as the ReplicaSet makes progress (rollout/sync.go
    ``calculateRolloutConditions``: any change counted by ``conditions.RolloutProgressing``
    replaces the condition; only ``evaluateProgressDeadlineAbort`` turns it into an abort).
    """
    seen, message = phase_of(rollout)
    if phase is Phase.DEGRADED or seen is not Phase.DEGRADED:
        return None
    if message.startswith("ProgressDeadlineExceeded") and not rollout.progress_deadline_abort:
        return None
    if message.startswith("RolloutAborted") and not rollout.abort:
        return None  # `retry` cleared status.abort; the controller has yet to act on it
    if message.startswith("InvalidSpec") and "not found" in message:
        # A Service applied with the Rollout may reach the controller's cache after the
        # Rollout does; it re-checks when the Service appears. A Service that never
        # appears ends the wait at its deadline, with this message as the last state.
        return None
    return f"the rollout is Degraded: {message}"


def _waits_through(phase: Phase, rollout: Rollout) -> str | None:
    """The reason of a Degraded that a wait for ``phase`` keeps waiting through, else None."""
    seen, message = phase_of(rollout)
    if phase is Phase.DEGRADED or seen is not Phase.DEGRADED or _gives_up_on(phase, rollout):
        return None
    return f"Degraded ({message})"


def _with_image(raw: Mapping[str, Any], container: str, image: str) -> dict[str, Any]:
    updated = copy.deepcopy(dict(raw))
    pod_spec = updated.get("spec", {}).get("template", {}).get("spec", {})
    found = False
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for item in pod_spec.get(key) or []:
            if item.get("name") == container or container == "*":
                item["image"] = image
                found = True
    if not found:
        names = [
            item.get("name", "")
            for key in ("initContainers", "containers", "ephemeralContainers")
            for item in pod_spec.get(key) or []
        ]
        raise NotFound(
            f'unable to find container named "{container}" in Rollout '
            f'"{raw["metadata"]["name"]}"; containers: {", ".join(names) or "none"}'
        )
    return updated


def _repository(image: str) -> str:
    """``registry:5000/app:1.0`` -> ``registry:5000/app``; a digest is dropped as well."""
    image = image.split("@", 1)[0]
    slash = image.rfind("/")
    colon = image.rfind(":")
    return image[:colon] if colon > slash else image


def _drop_ephemeral_metadata(template: dict[str, Any], recorded: str | None) -> None:
    """Remove from ``template`` the labels and annotations the controller recorded as ephemeral
    (the ReplicaSet's ``rollout.argoproj.io/ephemeral-metadata``: ``{"labels": {...}}``)."""
    if not recorded:
        return
    try:
        ephemeral = json.loads(recorded)
    except ValueError as exc:
        raise HarnessError(
            f"{EPHEMERAL_METADATA} is not JSON: {recorded!r}; expected "
            '{"labels": {...}, "annotations": {...}} as Argo Rollouts writes it'
        ) from exc
    metadata = template.get("metadata") or {}
    for field_name in ("labels", "annotations"):
        present = metadata.get(field_name) or {}
        for key in ephemeral.get(field_name) or {}:
            present.pop(key, None)


def _derivative(a: Any, b: Any) -> bool:
    """apimachinery's Semantic.DeepDerivative: fields unset in ``a`` are ignored."""
    if a is None or (isinstance(a, str | dict | list) and not a):
        return True
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping):
            return False
        return all(_derivative(value, b.get(key)) for key, value in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(_derivative(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
