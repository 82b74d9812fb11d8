"""Who answered: each hop of gateway A's answer resolved to its ReplicaSet and judged.

Gateway A's ``/versions`` names the pod that answered for A, B and C. A ``History`` of the
namespace's Rollouts, Services, ReplicaSets and Pods (fed by watches, stamped with the time each
change was seen) says which ReplicaSet a pod belongs to (its ``rollouts-pod-template-hash`` label,
the ReplicaSet's ``rollout.argoproj.io/revision``) and, at any moment, which ReplicaSet is active
and which is preview for each Rollout: by the Rollout's ``status.blueGreen.activeSelector`` /
``previewSelector``, the controller's record, with the hash in the active and preview Services'
selectors as evidence (a disagreement, such as a selector patched by hand, is named). A hop is
**active**, **preview** (preview and not active) or **stale** (neither, e.g. the old active still
draining), with that evidence.

The isolation invariants are judged over recorded answers (``judge``):

1. no user request (through gateway A's active Service) reaches a ReplicaSet that is preview-only;
2. a preview request (through gateway A's preview Service) reaches the preview of every service
   released together with gateway A (the release: gateway A has a preview of its own, and the
   service's preview carries the same ``root-version`` label) and the active of every other one;
3. no user request reaches a stale ReplicaSet (the old active after a switch), except on a
   connection that was routed there: opened before the switch ("drained"), or opened after it
   while the node still routed new connections to the old active (the propagation upstream's
   ``scaleDownDelaySeconds`` waits for: "propagated"), each tolerated within the Rollout's
   ``scaleDownDelaySeconds`` and counted. Gateway A names, with each answer, the connection it
   reached B and C on and when it dialled it; a connection opened after the same gateway pod
   had already been routed to the new ReplicaSet is a violation. An answer without that
   evidence is tolerated only within ``grace`` seconds of the switch.

Each judgement looks at every moment in force while the request ran, widened by ``tolerance``
seconds for the watches' delivery lag: a hop is wrong only if it was wrong throughout.
Pure apart from ``Recorder``, which feeds a ``History`` from the API server.
"""

from __future__ import annotations

import bisect
import enum
import logging
import statistics
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.dataplane.informer import Informer
from harness.errors import ConfigError, WaitTimeout
from harness.kube import (
    HASH_LABEL,
    POD,
    REPLICA_SET,
    ROLLOUT,
    SERVICE,
    Kind,
    Kube,
    pod_from,
    replica_set_from,
    rollout_from,
    service_from,
)
from harness.probes import SERVICES, Answer, Conn, Side

log = logging.getLogger("bgh.provenance")

ROOT_VERSION_LABEL = "root-version"
GATEWAY = SERVICES["a"]


class Role(enum.StrEnum):
    """What a ReplicaSet is to its Rollout at one moment."""

    ACTIVE = "active"
    PREVIEW = "preview"
    STALE = "stale"


# -- what was seen, and when -----------------------------------------------------------------


@dataclass(frozen=True)
class Selectors:
    """One Rollout's two views of its active and preview ReplicaSets (pod-template hashes)."""

    rollout: str
    active_selector: str  # status.blueGreen.activeSelector
    preview_selector: str  # status.blueGreen.previewSelector
    active_service: str  # the active Service's rollouts-pod-template-hash ("" unknown)
    preview_service: str
    # The hash the controller has just switched the active Service to, while the status still
    # names the old one (``History.selectors``); "" otherwise.
    switching: str = ""

    @property
    def active(self) -> str:
        """The active ReplicaSet as the controller recorded it (the Service's before it has)."""
        return self.switching or self.active_selector or self.active_service

    @property
    def preview(self) -> str:
        return self.preview_selector or self.preview_service

    def role(self, pod_hash: str) -> Role:
        # The Rollout's status is the controller's record; a Service selector that disagrees is
        # evidence: patched by hand (``History.role``), or switched by the controller, whose
        # status follows later in the same reconcile (``switching``).
        if pod_hash == self.active:
            return Role.ACTIVE
        if pod_hash == self.preview:
            return Role.PREVIEW
        return Role.STALE

    @property
    def releasing(self) -> bool:
        """A preview that is not the active ReplicaSet."""
        return bool(self.preview) and self.preview != self.active

    def describe(self) -> str:
        text = (
            f"Rollout {self.rollout}: activeSelector={self.active_selector or '-'} "
            f"previewSelector={self.preview_selector or '-'}; Service {self.rollout} selects "
            f"{self.active_service or '-'}, {self.rollout}-preview selects "
            f"{self.preview_service or '-'}"
        )
        if self.switching:
            text += (
                f" (switched by the controller: status.blueGreen.activeSelector follows in the "
                f"same reconcile, so {self.switching} is active)"
            )
        elif self.active_service and self.active_service != self.active_selector:
            text += " (the active Service disagrees with the Rollout)"
        if self.preview_service and self.preview_service != self.preview_selector:
            text += " (the preview Service disagrees with the Rollout)"
        return text


@dataclass(frozen=True)
class Moment:
    """Every Rollout's selectors from ``at`` (wall clock) until the next moment."""

    at: float
    selectors: Mapping[str, Selectors]


@dataclass(frozen=True)
class Origin:
    """The ReplicaSet a pod belongs to."""

    pod: str
    rollout: str
    pod_template_hash: str
    replica_set: str = ""
    revision: int | None = None
    root_version: str = ""

    def describe(self) -> str:
        revision = "?" if self.revision is None else str(self.revision)
        name = self.replica_set or f"{self.rollout}-{self.pod_template_hash}"
        return f"{self.pod} in ReplicaSet {name} (rev {revision})"


@dataclass(frozen=True)
class Switch:
    """The active Service of ``rollout`` moved from one ReplicaSet to another at ``at``."""

    rollout: str
    at: float
    old: str
    new: str
    resource_version: int = 0  # the Service's, to order the switch against the Rollout's updates


class History:
    """What the namespace looked like over time, from the objects observed (``observe``)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.moments: list[Moment] = []
        self.pods: dict[str, tuple[str, str]] = {}  # pod -> (rollout, hash); kept after deletion
        self.replica_sets: dict[tuple[str, str], tuple[str, int | None, str]] = {}
        self.switches: list[Switch] = []
        self.scale_down_delays: dict[str, int] = {}  # Rollout -> scaleDownDelaySeconds
        # name -> [(resourceVersion, held, stableRS)]: whether the controller was holding the
        # Rollout (a pause, no promote --full, no abort) at each version seen.
        self.holds: dict[str, list[tuple[int, bool, str]]] = {}
        self._rollouts: dict[str, tuple[str, str, str, str]] = {}  # name -> status, services
        self._services: dict[str, str] = {}  # Service name -> hash in its selector
        self._lock = threading.Lock()

    def observe(self, kind: Kind, obj: Mapping[str, Any], *, at: float) -> None:
        """Record one object as seen at ``at``; deletions keep what was learnt of pods."""
        if (obj.get("metadata") or {}).get("namespace", self.namespace) != self.namespace:
            return
        with self._lock:
            if kind is POD:
                pod = pod_from(obj)
                app, pod_hash = pod.labels.get("app", ""), pod.labels.get(HASH_LABEL, "")
                if app and pod_hash:
                    self.pods[pod.name] = (app, pod_hash)
            elif kind is REPLICA_SET:
                rs = replica_set_from(obj)
                if rs.owner and rs.pod_template_hash:
                    labels = (rs.template.get("metadata") or {}).get("labels") or {}
                    self.replica_sets[(rs.owner, rs.pod_template_hash)] = (
                        rs.name,
                        rs.revision,
                        str(labels.get(ROOT_VERSION_LABEL, "")),
                    )
            elif kind is ROLLOUT:
                r = rollout_from(obj)
                self.scale_down_delays[r.name] = r.scale_down_delay_seconds
                held = (bool(r.pause_conditions) or r.paused) and not (r.promote_full or r.abort)
                self.holds.setdefault(r.name, []).append(
                    (_version(r.resource_version), held, r.stable_hash)
                )
                self._rollouts[r.name] = (
                    r.active_selector,
                    r.preview_selector,
                    r.active_service,
                    r.preview_service,
                )
                self._moment(at)
            elif kind is SERVICE:
                service = service_from(obj)
                before = self._services.get(service.name, "")
                self._services[service.name] = service.pod_template_hash
                owner = next((n for n, v in self._rollouts.items() if v[2] == service.name), None)
                if owner and before and before != service.pod_template_hash:
                    self.switches.append(
                        Switch(
                            owner,
                            at,
                            before,
                            service.pod_template_hash,
                            _version(service.resource_version),
                        )
                    )
                self._moment(at)

    def _moment(self, at: float) -> None:
        selectors = {
            name: Selectors(
                rollout=name,
                active_selector=active,
                preview_selector=preview,
                active_service=self._services.get(active_service, ""),
                preview_service=self._services.get(preview_service, ""),
            )
            for name, (active, preview, active_service, preview_service) in self._rollouts.items()
        }
        if self.moments and self.moments[-1].selectors == selectors:
            return
        if self.moments and at < self.moments[-1].at:
            at = self.moments[-1].at  # watches of two kinds may deliver a hair out of order
        self.moments.append(Moment(at, selectors))

    def during(self, start: float, end: float) -> list[Moment]:
        """The moments in force at some time in [start, end], oldest first."""
        with self._lock:
            times = [m.at for m in self.moments]
            first = max(0, bisect.bisect_right(times, start) - 1)
            last = bisect.bisect_right(times, end)
            return self.moments[first:last]

    def _made_by_hand(self, switch: Switch) -> bool | None:
        """Whether someone other than the controller made ``switch``; None: cannot tell.

        The controller only moves the active Service once promoted (pause cleared), on
        ``promote --full``, or back to stableRS on abort; a switch to anything else while it
        holds the Rollout paused was made by someone else. Decided from the Rollout's last
        version before the Service's: resourceVersions are etcd's revision, one counter for
        every object (opaque by contract, ordered in practice on every etcd-backed API server),
        so the watches' delivery order does not matter. No version of the Rollout seen before
        the Service's (the recording began after the switch): cannot tell.
        """
        with self._lock:
            earlier = [
                h for h in self.holds.get(switch.rollout, []) if 0 < h[0] < switch.resource_version
            ]
        if not earlier or not switch.resource_version:
            return None
        _, held, stable = max(earlier)
        return held and switch.new != stable

    def by_hand(self, switch: Switch) -> bool:
        """Whether ``switch`` was made by someone other than the controller, as far as known."""
        return self._made_by_hand(switch) is True

    def _switch_in_force(self, rollout: str, at: float) -> Switch | None:
        with self._lock:
            made = [s for s in self.switches if s.rollout == rollout and s.at <= at]
        return made[-1] if made else None

    def switched_from(self, rollout: str, pod_hash: str, *, before: float) -> Switch | None:
        """The last switch of ``rollout``'s active Service away from ``pod_hash`` seen before
        ``before``, if the Service has not come back to it since."""
        with self._lock:
            made = [s for s in self.switches if s.rollout == rollout and s.at <= before]
        if not made or made[-1].new == pod_hash:
            return None
        away = [s for s in made if s.old == pod_hash]
        if not away or any(s.new == pod_hash for s in made if s.at > away[-1].at):
            return None
        return away[-1]

    def previous_switch(self, switch: Switch) -> Switch | None:
        with self._lock:
            earlier = [s for s in self.switches if s.rollout == switch.rollout and s.at < switch.at]
        return earlier[-1] if earlier else None

    def hand_switched(self, rollout: str, at: float) -> Switch | None:
        """The switch of ``rollout``'s active Service in force at ``at``, if made by hand."""
        switch = self._switch_in_force(rollout, at)
        return switch if switch is not None and self.by_hand(switch) else None

    def selectors(self, moment: Moment, rollout: str) -> Selectors | None:
        """``rollout``'s selectors at ``moment``, with the controller's own switch of the active
        Service in force before its status says so.

        Argo Rollouts' bluegreen reconcile (rollout/bluegreen.go ``rolloutBlueGreen``) switches
        the active Service first (``reconcileActiveService``, a patch of the Service), then
        relabels pods (``reconcileEphemeralMetadata``) and only at its end writes
        ``status.blueGreen.activeSelector``, read back from that Service
        (``syncRolloutStatusBlueGreen``). In between, about a second on a busy machine, users
        already reach the new ReplicaSet through the Service the controller switched: it is
        the active one. Only a switch known to be the controller's counts; one made by hand
        stays what ``role`` says it is.
        """
        found = moment.selectors.get(rollout)
        if found is None or not found.active_selector:
            return found
        switch = self._switch_in_force(rollout, moment.at)
        if (
            switch is not None
            and found.active_service == switch.new != found.active_selector
            and self._made_by_hand(switch) is False
        ):
            return replace(found, switching=switch.new)
        return found

    def role(self, moment: Moment, rollout: str, pod_hash: str) -> tuple[Role, str] | None:
        """The role of a ReplicaSet at ``moment`` and the evidence; None if the Rollout was not
        seen. A ReplicaSet put behind the active Service by hand stays what the controller had
        made it: the preview."""
        selectors = self.selectors(moment, rollout)
        if selectors is None:
            return None
        evidence = selectors.describe()
        switch = self.hand_switched(rollout, moment.at)
        if switch is not None and pod_hash == switch.new:
            return Role.PREVIEW, (
                f"{evidence}; the active Service was switched {switch.old} -> {switch.new} "
                "while the Rollout was paused: not by Argo Rollouts (no promote)"
            )
        return selectors.role(pod_hash), evidence

    def origin(self, pod: str) -> Origin | None:
        with self._lock:
            found = self.pods.get(pod)
            if found is None:
                return None
            rollout, pod_hash = found
            name, revision, root = self.replica_sets.get((rollout, pod_hash), ("", None, ""))
            return Origin(pod, rollout, pod_hash, name, revision, root)

    def root_version(self, rollout: str, pod_hash: str) -> str:
        with self._lock:
            return self.replica_sets.get((rollout, pod_hash), ("", None, ""))[2]


# -- judging answers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One service's part in an answer, resolved and classified at the answer's start."""

    service: str
    pod: str
    version: str
    origin: Origin | None
    role: Role | None  # None: the pod or its Rollout was never seen
    evidence: str

    def describe(self) -> str:
        where = self.origin.describe() if self.origin else f"{self.pod} (never seen)"
        role = self.role.value if self.role else "unresolved"
        return f"{self.service} {self.version}: {where}: {role}; {self.evidence}"


@dataclass(frozen=True)
class Provenance:
    """An answer with each hop resolved."""

    answer: Answer
    hops: tuple[Hop, ...]

    def describe(self) -> str:
        lines = [f"{self.answer.side} answer at {_clock(self.answer.at)}: {self.answer.describe()}"]
        lines += [f"    {hop.describe()}" for hop in self.hops]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.answer.as_dict(),
            "hops": [
                {
                    "service": h.service,
                    "pod": h.pod,
                    "version": h.version,
                    "replica_set": h.origin.replica_set if h.origin else "",
                    "pod_template_hash": h.origin.pod_template_hash if h.origin else "",
                    "revision": h.origin.revision if h.origin else None,
                    "role": h.role.value if h.role else "unresolved",
                    "evidence": h.evidence,
                }
                for h in self.hops
            ],
        }


def resolve(
    answer: Answer, history: History, *, over: Sequence[Moment] | None = None
) -> Provenance:
    """Each hop of ``answer`` resolved to its ReplicaSet and role when the request started, or,
    given ``over`` (the moments a judgement looked at), its role at the last of them with the
    evidence of each, so that a violation shows everything it rests on."""
    if over is None:
        over = history.during(answer.at, answer.at)[-1:]
    hops = []
    for service, pod in sorted(answer.pods.items()):
        version = answer.versions.get(service, "")
        origin = history.origin(pod)
        judged = [
            (m.at, found)
            for m in over
            if origin is not None
            and (found := history.role(m, origin.rollout, origin.pod_template_hash)) is not None
        ]
        if origin is None or not judged:
            what = "pod never seen" if origin is None else f"Rollout {origin.rollout} not seen"
            hops.append(Hop(service, pod, version, origin, None, what))
            continue
        role = judged[-1][1][0]
        seen: dict[str, float] = {}
        for at, (_, evidence) in judged:
            seen.setdefault(evidence, at)
        evidence = (
            next(iter(seen))
            if len(seen) == 1
            else "; then ".join(f"[from {_clock(at)}] {text}" for text, at in seen.items())
        )
        hops.append(Hop(service, pod, version, origin, role, evidence))
    return Provenance(answer, tuple(hops))


@dataclass(frozen=True)
class Violation:
    """An answer that broke an invariant, with its chain and the selectors at that moment."""

    invariant: int
    why: str
    provenance: Provenance

    def describe(self) -> str:
        return f"invariant {self.invariant}: {self.why}\n  {self.provenance.describe()}"


@dataclass(frozen=True)
class SideCount:
    side: Side
    checked: int  # answers with at least one hop, judged
    unanswered: int  # answers without any hop (transport errors, A failing): nothing to judge


@dataclass(frozen=True)
class Tolerated:
    """A user answer from the old active after a switch, on a connection routed there."""

    late: float  # seconds after the switch
    # Opened after the switch while the node still routed new connections to the old active.
    propagated: bool = False


@dataclass(frozen=True)
class Verdict:
    """The invariants over a run of answers."""

    counts: tuple[SideCount, ...]
    violations: tuple[Violation, ...]
    drained: tuple[Provenance, ...]  # user answers from the old active on an already-open path
    drained_late: float  # the longest such answer after its switch, seconds
    lags: tuple[float, ...]  # per switch: seconds to the first user answer from the new RS
    grace: float
    provenance: tuple[Provenance, ...] = field(repr=False, default=())
    # Invariants this cluster cannot be judged on, with why (see ``without``).
    not_judged: tuple[tuple[int, str], ...] = ()
    # User answers from the old active on connections opened after the switch, before the
    # node routed new ones to the new ReplicaSet; the longest after its switch, seconds.
    propagated: tuple[Provenance, ...] = ()
    propagated_late: float = 0.0

    def checked(self, side: Side) -> int:
        return sum(c.checked for c in self.counts if c.side == side)

    def of(self, *invariants: int) -> list[Violation]:
        return [v for v in self.violations if v.invariant in invariants]

    def without(self, unjudged: Mapping[int, str]) -> Verdict:
        """This verdict with the invariants in ``unjudged`` not judged, each with its reason:
        on a cluster without mesh routing a preview chain cannot be coherent (invariant 2), so
        its answers say nothing about the release. ``summary`` names them; they never pass."""
        if not unjudged:
            return self
        return replace(
            self,
            violations=tuple(v for v in self.violations if v.invariant not in unjudged),
            not_judged=tuple(sorted(unjudged.items())),
        )

    def judged(self, invariant: int) -> bool:
        return all(number != invariant for number, _ in self.not_judged)

    def summary(self) -> str:
        sides = ", ".join(
            f"{c.side} {c.checked} checked ({c.unanswered} without hops)" for c in self.counts
        )
        lags = (
            f"; switch to first user answer from the new ReplicaSet: "
            f"{', '.join(f'{lag:.2f}s' for lag in self.lags)}"
            if self.lags
            else ""
        )
        not_judged = "".join(
            f"; invariant {number} not judged: {why}" for number, why in self.not_judged
        )
        return (
            f"answers: {sides}; violations: {len(self.violations)}; drained on connections "
            f"opened before the switch: {len(self.drained)} (latest {self.drained_late:.2f}s "
            f"after the switch); on connections opened while the switch propagated: "
            f"{len(self.propagated)} (latest {self.propagated_late:.2f}s after the switch)"
            f"{lags}{not_judged}"
        )

    def report(self, invariants: Sequence[int] = (1, 2, 3), *, most: int = 5) -> str:
        """The summary, then the first violations of ``invariants`` with their chains."""
        chosen = self.of(*invariants)
        lines = [self.summary()]
        lines += [v.describe() for v in chosen[:most]]
        if len(chosen) > most:
            lines.append(f"... and {len(chosen) - most} more (provenance.json)")
        return "\n".join(lines)


def judge(
    answers: Iterable[Answer],
    history: History,
    *,
    tolerance: float = 0.5,
    grace: float = 2.0,
) -> Verdict:
    """The three invariants over ``answers``; see the module docstring."""
    if tolerance < 0 or grace < tolerance:
        raise ConfigError(
            f"tolerance {tolerance}s and grace {grace}s: expected 0 <= tolerance <= grace"
        )
    violations: list[Violation] = []
    drained: list[Provenance] = []
    propagated: list[Provenance] = []
    drained_late = propagated_late = 0.0
    counts: dict[Side, list[int]] = {Side.ACTIVE: [0, 0], Side.PREVIEW: [0, 0]}
    resolved = []
    answers = sorted(answers, key=lambda a: a.at)
    routed = Routes(answers, history)
    for answer in answers:
        provenance = resolve(answer, history)
        resolved.append(provenance)
        count = counts.setdefault(answer.side, [0, 0])
        if not provenance.hops:
            count[1] += 1
            continue
        count[0] += 1
        start, end = answer.at - tolerance, answer.at + answer.latency + tolerance
        window = history.during(start, end)
        earlier = history.during(answer.at - grace, end)
        unresolved = [h for h in provenance.hops if h.role is None]
        if unresolved:
            hop = unresolved[0]
            violations.append(
                Violation(
                    1 if answer.side == Side.ACTIVE else 2,
                    f"{hop.service} answered from {hop.pod}, which no watch ever saw "
                    f"({hop.evidence}): its side cannot be proven",
                    provenance,
                )
            )
            continue
        if answer.side == Side.ACTIVE:
            found = _judge_user(provenance, history, window, earlier, routed, tolerance)
        else:
            found = _judge_tester(provenance, history, window, earlier)
        if isinstance(found, Violation):
            # The chain as the whole window saw it: the recorder stamps a change when its watch
            # delivers it, which may be after the data plane already routed by it.
            violations.append(replace(found, provenance=resolve(answer, history, over=window)))
        elif found is not None and found.propagated:
            propagated.append(provenance)
            propagated_late = max(propagated_late, found.late)
        elif found is not None:
            drained.append(provenance)
            drained_late = max(drained_late, found.late)
    return Verdict(
        counts=tuple(SideCount(side, c[0], c[1]) for side, c in counts.items()),
        violations=tuple(violations),
        drained=tuple(drained),
        drained_late=drained_late,
        lags=tuple(switch_lags(resolved, history)),
        grace=grace,
        provenance=tuple(resolved),
        propagated=tuple(propagated),
        propagated_late=propagated_late,
    )


def _roles(hop: Hop, moments: Sequence[Moment], history: History) -> set[Role]:
    origin = hop.origin
    if origin is None:
        return set()
    judged = [history.role(m, origin.rollout, origin.pod_template_hash) for m in moments]
    return {j[0] for j in judged if j is not None}


class Routes:
    """Where each gateway pod's connections went, by when they were opened: from the answers'
    connection evidence (``Answer.conns``). Kubernetes routes a connection once, when it is
    opened; kube-proxy (each node's, or the local data plane playing it) routes by the
    Service's endpoints as it last programmed them, a moment after the selector changed. So the
    first connection a gateway pod opened to the new ReplicaSet after a switch shows its node
    had the switch; one it opened later that still reached the old active was not routed by the
    switch at all."""

    def __init__(self, answers: Sequence[Answer], history: History) -> None:
        self._opened: dict[tuple[str, str, str], list[float]] = {}
        for answer in answers:
            caller = answer.pods.get(GATEWAY, "")
            for service, conn in answer.conns.items():
                origin = history.origin(answer.pods.get(service, ""))
                if caller and origin is not None:
                    key = (caller, origin.rollout, origin.pod_template_hash)
                    self._opened.setdefault(key, []).append(conn.opened)
        for times in self._opened.values():
            times.sort()

    def first_to_new(self, caller: str, switch: Switch, *, since: float) -> float | None:
        """When ``caller`` first opened a connection that reached ``switch.new``, from
        ``since`` on; None if no answer shows one."""
        times = self._opened.get((caller, switch.rollout, switch.new), [])
        i = bisect.bisect_left(times, since)
        return times[i] if i < len(times) else None


def _judge_user(
    provenance: Provenance,
    history: History,
    window: Sequence[Moment],
    earlier: Sequence[Moment],
    routed: Routes,
    tolerance: float,
) -> Violation | Tolerated | None:
    """None: fine; ``Tolerated``: the old active on a connection routed there before the switch
    reached the caller's node."""
    answer = provenance.answer
    tolerated: Tolerated | None = None
    for hop in provenance.hops:
        roles = _roles(hop, window, history)
        if Role.ACTIVE in roles:
            continue
        switch = (
            history.switched_from(
                hop.origin.rollout,
                hop.origin.pod_template_hash,
                before=answer.at + answer.latency + tolerance,
            )
            if hop.origin is not None
            else None
        )
        conn = answer.conns.get(hop.service)
        if switch is not None and conn is not None:
            found = _judge_routed(provenance, hop, switch, conn, history, routed, tolerance)
            if isinstance(found, Violation):
                return found
            if tolerated is None or found.late > tolerated.late:
                tolerated = found
            continue
        # No connection evidence (a gateway that does not name its connections): the old
        # active is tolerated within the grace of its switch only.
        active = [i for i, m in enumerate(earlier) if Role.ACTIVE in _roles(hop, [m], history)]
        if active:
            # The old active, a moment after the switch: a connection opened before it.
            after = active[-1] + 1
            switched = earlier[after].at if after < len(earlier) else answer.at
            late = answer.at - switched
            if tolerated is None or late > tolerated.late:
                tolerated = Tolerated(late)
        elif Role.PREVIEW in roles:
            return Violation(
                1, f"a user request reached {hop.service}'s preview-only ReplicaSet", provenance
            )
        else:
            return Violation(
                3,
                f"a user request reached {hop.service}'s ReplicaSet that was neither active "
                "nor preview, nor active a moment before (the grace for open connections)",
                provenance,
            )
    return tolerated


def _judge_routed(
    provenance: Provenance,
    hop: Hop,
    switch: Switch,
    conn: Conn,
    history: History,
    routed: Routes,
    tolerance: float,
) -> Violation | Tolerated:
    """A user hop on ``switch.old`` after ``switch``, on connection ``conn``."""
    answer = provenance.answer
    late = max(0.0, answer.at - switch.at)
    delay = history.scale_down_delays.get(switch.rollout, 30)
    opened = conn.opened - switch.at
    on = f"on connection {conn.id} opened {_ago(opened)} the switch at {_clock(switch.at)}"
    if late > delay:
        return Violation(
            3,
            f"a user request reached {hop.service}'s old active ReplicaSet {late:.2f}s after "
            f"the switch, {on}: past scaleDownDelaySeconds ({delay}s), the time Argo Rollouts "
            "gives every node to route to the new one",
            provenance,
        )
    if opened <= 0:
        return Tolerated(late)
    caller = answer.pods.get(GATEWAY, "")
    previous = history.previous_switch(switch)
    since = max(switch.at - tolerance, previous.at if previous else 0.0)
    first = routed.first_to_new(caller, switch, since=since)
    if first is not None and first < conn.opened:
        return Violation(
            3,
            f"a user request reached {hop.service}'s old active ReplicaSet {on}, though "
            f"{caller} had already been routed to the new ReplicaSet {switch.new} on a "
            f"connection opened at {_clock(first)}: a new connection the switch did not route",
            provenance,
        )
    return Tolerated(late, propagated=True)


def _ago(seconds: float) -> str:
    return f"{seconds:.2f}s after" if seconds > 0 else f"{-seconds:.2f}s before"


def expected(moment: Moment, history: History) -> dict[str, str]:
    """The hash each service's hop must have on a preview request at ``moment``."""
    gateway = history.selectors(moment, GATEWAY)
    if gateway is None:
        return {}
    release_root = ""
    if gateway.releasing:
        release_root = history.root_version(GATEWAY, gateway.preview)
    wanted = {}
    for name in moment.selectors:
        s = history.selectors(moment, name)
        if s is None:
            continue
        in_release = name == GATEWAY or (
            s.releasing
            and release_root != ""
            and history.root_version(name, s.preview) == release_root
        )
        wanted[name] = s.preview if in_release else s.active
    return wanted


def _judge_tester(
    provenance: Provenance,
    history: History,
    window: Sequence[Moment],
    earlier: Sequence[Moment],
) -> Violation | Tolerated | None:
    def right(hop: Hop, moment: Moment) -> bool:
        wanted = expected(moment, history)
        return (
            hop.origin is not None
            and wanted.get(hop.origin.rollout) == hop.origin.pod_template_hash
        )

    def coherent(moment: Moment) -> bool:
        return all(right(h, moment) for h in provenance.hops)

    if any(coherent(m) for m in window):
        return None
    # Each hop right a moment ago: gateway A reuses a connection per upstream for up to a
    # second, so one hop may still follow the chain before a switch while another follows the
    # chain after it. Tolerated within the grace, as a user's open connection is, and counted.
    last_right = [
        max((i for i, m in enumerate(earlier) if right(h, m)), default=-1) for h in provenance.hops
    ]
    if last_right and min(last_right) >= 0:
        after = min(last_right) + 1
        changed = earlier[after].at if after < len(earlier) else provenance.answer.at
        return Tolerated(provenance.answer.at - changed)
    moment = window[-1] if window else None
    wanted = expected(moment, history) if moment else {}
    wrong = [
        f"{h.service} from {h.origin.pod_template_hash if h.origin else '?'}, expected "
        f"{wanted.get(h.origin.rollout if h.origin else h.service, '?')}"
        for h in provenance.hops
        if h.origin is None or wanted.get(h.origin.rollout) != h.origin.pod_template_hash
    ]
    return Violation(
        2,
        "a preview request's chain is not the release's (preview of the services released "
        "with gateway A, active of the others): " + "; ".join(wrong),
        provenance,
    )


def switch_lags(resolved: Sequence[Provenance], history: History) -> list[float]:
    """For each active Service switch: seconds from the switch to the end of the first user
    answer (started after it) with that service's hop on the new ReplicaSet."""
    lags = []
    for switch in history.switches:
        if history.by_hand(switch):
            continue
        ends = [
            p.answer.at + p.answer.latency
            for p in resolved
            if p.answer.side == Side.ACTIVE
            and p.answer.at + p.answer.latency >= switch.at
            and any(
                h.origin is not None
                and h.origin.rollout == switch.rollout
                and h.origin.pod_template_hash == switch.new
                for h in p.hops
            )
        ]
        if ends:
            lags.append(min(ends) - switch.at)
    return lags


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile (0..1) of ``values``, linear between order statistics."""
    if not values:
        raise ConfigError("no values: a percentile of nothing is not a figure")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def _version(resource_version: str) -> int:
    return int(resource_version) if resource_version.isdigit() else 0


def _clock(at: float) -> str:
    ms = round(at * 1000)
    return time.strftime("%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


# -- feeding a History from the API server ---------------------------------------------------


class Recorder:
    """Watches a namespace's Rollouts, Services, ReplicaSets and Pods into a ``History``."""

    KINDS = (ROLLOUT, SERVICE, REPLICA_SET, POD)

    def __init__(self, kube: Kube, *, clock: Any = time.time) -> None:
        self.kube = kube
        self.history = History(kube.namespace)
        self.clock = clock
        self._stop = threading.Event()
        self._synced: set[str] = set()
        self._changed = threading.Condition()
        self._informers = [
            Informer(kube, kind, self._post, self._stop, all_namespaces=False)
            for kind in self.KINDS
        ]

    def _post(self, kind: Kind, event: str, obj: Any) -> None:
        at = self.clock()
        if event == "SYNC":
            for item in obj:
                self.history.observe(kind, item, at=at)
            with self._changed:
                self._synced.add(kind.plural)
                self._changed.notify_all()
        elif event != "DELETED":
            self.history.observe(kind, obj, at=at)

    def start(self, *, within: float = 30.0) -> History:
        """Start watching; returns once every kind has been listed once."""
        for informer in self._informers:
            informer.start()
        wanted = {k.plural for k in self.KINDS}
        with self._changed:
            if not self._changed.wait_for(lambda: self._synced >= wanted, timeout=within):
                self.stop()
                raise WaitTimeout(
                    f'recording namespace "{self.kube.namespace}"',
                    within=within,
                    expecting=f"listed ({', '.join(sorted(wanted))})",
                    last_seen=f"listed: {', '.join(sorted(self._synced)) or 'none'}",
                )
        return self.history

    def stop(self) -> None:
        self._stop.set()
