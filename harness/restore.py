"""Leaving a long-lived namespace as a scenario found it: record, check settled, restore, verify.

Before a mutating scenario on a cluster someone else runs, ``read_snapshot`` records each
Rollout's state (revision, pod-template hash, images, the hashes its active and preview Services
select, paused or aborted) and the VirtualServices' routes. ``unsettled`` names what is not
settled (a release waiting on preview, a Rollout Degraded or Progressing) with the
``kubectl argo rollouts`` commands that would settle it; the runbooks refuse to start on such a
namespace rather than wait two minutes per scenario to find out.

``restore`` puts back what a scenario changed through the operations a person would use: ``abort``
a pending release (users stay on stable), ``undo --to-revision`` to the recorded ReplicaSet (its
template without the role label the controller put there from activeMetadata, which would make a
new pod-template hash), and ``promote`` when that undo itself waits on preview (its ReplicaSet had
been scaled down), callees before gateway A, then waits for Healthy and for the older
ReplicaSets to lose their ephemeral metadata. It never promotes a release it did not make: the
only promotion is of the recorded ReplicaSet coming back. ``verify`` then compares the namespace
with the record (same ReplicaSet hashes, same Service selectors, same images, Healthy) and
``RestoreFailed`` lists every difference with the state left behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from harness import kube
from harness.errors import HarnessError, NotFound
from harness.kube import JSON_PATCH, ROLLOUT, SERVICE, VIRTUAL_SERVICE
from harness.probes import CALLER
from harness.rollouts import Phase, Rollouts, phase_of

Report = Callable[[str], None]


@dataclass(frozen=True)
class RolloutRecord:
    """One Rollout's state, as far as restoring and verifying it goes."""

    name: str
    revision: int
    current_hash: str
    stable_hash: str
    stable_revision: int
    active_service: str
    preview_service: str
    active_hash: str  # what the active Service's selector holds
    preview_hash: str  # what the preview Service's selector holds
    images: Mapping[str, str]
    paused: bool
    aborted: bool
    phase: str
    message: str
    strategy: str  # spec.strategy as canonical JSON, put back as it was when it changed

    @property
    def settled(self) -> bool:
        """Healthy with nothing pending: active and preview on the stable ReplicaSet."""
        return (
            self.phase == Phase.HEALTHY.value
            and self.current_hash == self.stable_hash != ""
            and self.active_hash == self.current_hash
            and (not self.preview_service or self.preview_hash == self.current_hash)
            and not self.paused
            and not self.aborted
        )

    def line(self) -> str:
        message = f' "{self.message}"' if self.message else ""
        return (
            f"{self.phase}{message}: revision {self.revision} ({self.current_hash or '-'}), "
            f"stable revision {self.stable_revision} ({self.stable_hash or '-'}), "
            f"active on {self.active_hash or '-'}, preview on {self.preview_hash or '-'}"
        )


@dataclass(frozen=True)
class Snapshot:
    """Every Rollout of a namespace and its VirtualServices' specs, at one moment."""

    namespace: str
    rollouts: tuple[RolloutRecord, ...]
    virtual_services: Mapping[str, str] = field(default_factory=dict)  # name -> spec as JSON

    def by_name(self) -> dict[str, RolloutRecord]:
        return {r.name: r for r in self.rollouts}

    @property
    def first_revisions(self) -> dict[str, int]:
        """The revision each Rollout is on: a scenario's revision 1."""
        return {r.name: r.revision for r in self.rollouts}

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        return cls(
            namespace=data["namespace"],
            rollouts=tuple(RolloutRecord(**r) for r in data["rollouts"]),
            virtual_services=dict(data.get("virtual_services") or {}),
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def read_snapshot(rollouts: Rollouts) -> Snapshot:
    """Record the namespace now: a handful of reads, so a precondition can fail in seconds."""
    client = rollouts.kube
    services = {
        s.name: s.pod_template_hash for s in map(kube.service_from, client.list(SERVICE)[0])
    }
    records = []
    for raw in sorted(client.list(ROLLOUT)[0], key=lambda o: str(o["metadata"]["name"])):
        rollout = kube.rollout_from(raw)
        phase, message = phase_of(rollout)
        history = rollouts.replica_sets(rollout.name)
        revisions = {rs.pod_template_hash: rs.revision for rs in history}
        records.append(
            RolloutRecord(
                name=rollout.name,
                revision=int(rollout.revision) if rollout.revision.isdigit() else 0,
                current_hash=rollout.current_hash,
                stable_hash=rollout.stable_hash,
                stable_revision=revisions.get(rollout.stable_hash) or 0,
                active_service=rollout.active_service,
                preview_service=rollout.preview_service,
                active_hash=services.get(rollout.active_service, ""),
                preview_hash=services.get(rollout.preview_service, ""),
                images=dict(rollout.images),
                paused=rollout.paused,
                aborted=rollout.abort,
                phase=phase.value,
                message=message,
                strategy=_canonical((raw.get("spec") or {}).get("strategy") or {}),
            )
        )
    try:
        routes = {
            str(o["metadata"]["name"]): _canonical(o.get("spec") or {})
            for o in client.list(VIRTUAL_SERVICE)[0]
        }
    except NotFound:
        routes = {}  # no Istio CRDs on this cluster
    return Snapshot(client.namespace, tuple(records), routes)


# -- settled or not ------------------------------------------------------------------------


@dataclass(frozen=True)
class Unsettled:
    """A Rollout that is not settled, and the commands a person would run to settle it."""

    record: RolloutRecord
    commands: tuple[str, ...]

    def lines(self) -> list[str]:
        first, *others = self.commands
        return [
            f"  {self.record.name}: {self.record.line()}",
            f"    settle it: {first}",
            *(f"           or: {other}" for other in others),
        ]


def unsettled(snapshot: Snapshot) -> list[Unsettled]:
    """Every Rollout of ``snapshot`` that is not settled, with what would settle it."""
    found = []
    for record in snapshot.rollouts:
        if record.settled:
            continue
        found.append(Unsettled(record, _commands(record, snapshot.namespace)))
    return found


def _commands(record: RolloutRecord, namespace: str) -> tuple[str, ...]:
    plugin = "kubectl argo rollouts"
    where = f"-n {namespace}"
    name = record.name
    back = (
        f"{plugin} abort {name} {where} && "
        f"{plugin} undo {name} --to-revision={record.stable_revision} {where}"
        "   (back to what users have)"
    )
    if record.phase == Phase.PROGRESSING.value:
        return (f"{plugin} status {name} {where} --watch   (wait for it to finish)",)
    if record.aborted:
        return (
            f"{plugin} undo {name} --to-revision={record.stable_revision} {where}"
            "   (drop the aborted release)",
            f"{plugin} retry rollout {name} {where}   (try the release again)",
        )
    if record.current_hash != record.stable_hash or record.paused:
        return (f"{plugin} promote {name} {where}   (ship the release)", back)
    return (f"{plugin} status {name} {where}",)


class NotSettled(HarnessError):
    """A namespace is not settled, so a mutating scenario must not start there."""

    def __init__(self, message: str, pending: list[Unsettled]) -> None:
        super().__init__(message)
        self.pending = pending


def refuse_unsettled(snapshot: Snapshot, pending: list[Unsettled], *, why: str = "") -> NotSettled:
    """The error a mutating run raises on a namespace with ``pending`` Rollouts."""
    names = ", ".join(p.record.name for p in pending)
    lines = [
        f'namespace "{snapshot.namespace}" is not settled ({names}), so no scenario that '
        f"changes it may start{why}:",
    ]
    for item in pending:
        lines += item.lines()
    lines.append(
        "Settle them and run again. With --bgh-settle (BGH_SETTLE=true) the harness settles "
        "only what a run of its own left behind, and never promotes someone else's release."
    )
    return NotSettled("\n".join(lines), pending)


# -- restoring -------------------------------------------------------------------------------


class RestoreFailed(HarnessError):
    """What a scenario changed could not be put back; ``differences`` says what is still off."""

    def __init__(self, message: str, differences: list[str]) -> None:
        super().__init__(message)
        self.differences = differences


@dataclass(frozen=True)
class Restored:
    """What ``restore`` did and how long it took, verification included."""

    seconds: float
    actions: tuple[str, ...]

    def summary(self) -> str:
        done = "; ".join(self.actions) if self.actions else "nothing had changed"
        return f"restored in {self.seconds:.1f}s: {done}"


def restore(
    rollouts: Rollouts,
    recorded: Snapshot,
    *,
    only: Callable[[RolloutRecord], bool] = lambda _record: True,
    report: Report = lambda _line: None,
    clock: Callable[[], float] = time.monotonic,
) -> Restored:
    """Put every recorded Rollout (those ``only`` accepts) back as recorded, wait for it, verify.

    Raises ``RestoreFailed`` naming every difference left, with each Rollout's state.
    """
    started = clock()
    now = read_snapshot(rollouts).by_name()
    actions: list[str] = []
    problems: list[str] = []
    undone: dict[str, RolloutRecord] = {}
    for name, routes in recorded.virtual_services.items():
        if routes != read_virtual_service(rollouts, name):
            patch = [{"op": "replace", "path": "/spec", "value": json.loads(routes)}]
            rollouts.kube.patch(VIRTUAL_SERVICE, name, patch, content_type=JSON_PATCH)
            actions.append(f"VirtualService {name}: routes put back")
    for was in recorded.rollouts:
        if not only(was):
            continue
        current = now.get(was.name)
        if current is None:
            problems.append(f'Rollout "{was.name}" is gone; it cannot be put back')
            continue
        done = _put_back(rollouts, was, current, problems)
        if done:
            actions.append(f"{was.name}: {', '.join(done)}")
            undone[was.name] = was
    # Callees first, as a release is promoted (harness.release.promote_release): gateway A's
    # pods coming back on preview are role=preview until promoted, and must find B and C settled.
    for was in sorted(undone.values(), key=lambda record: record.name == CALLER):
        done = _settle_back(rollouts, was, problems)
        if done:
            actions.append(f"{was.name}: {', '.join(done)}")
    differences = problems + verify(rollouts, recorded, only=only)
    seconds = clock() - started
    if differences:
        state = [f"  {r.name}: {r.line()}" for r in read_snapshot(rollouts).rollouts]
        raise RestoreFailed(
            f'namespace "{recorded.namespace}" was NOT left as the scenario found it '
            f"(after {seconds:.1f}s of restoring; did: {'; '.join(actions) or 'nothing'}):\n"
            + "\n".join(f"  - {d}" for d in differences)
            + "\nstate left behind:\n"
            + "\n".join(state),
            differences,
        )
    result = Restored(seconds, tuple(actions))
    report(result.summary())
    return result


def read_virtual_service(rollouts: Rollouts, name: str) -> str:
    try:
        return _canonical(rollouts.kube.get(VIRTUAL_SERVICE, name).get("spec") or {})
    except NotFound:
        return ""


def _put_back(
    rollouts: Rollouts, was: RolloutRecord, current: RolloutRecord, problems: list[str]
) -> list[str]:
    """The first, immediate operations for one Rollout; what was done, in plugin words."""
    done: list[str] = []
    if current.strategy != was.strategy:
        # The strategy (pre-promotion analysis switched on, say) goes back first, so the undo
        # below is not held up by an analysis the record never had.
        patch = [{"op": "replace", "path": "/spec/strategy", "value": json.loads(was.strategy)}]
        rollouts.kube.patch(ROLLOUT, was.name, patch, content_type=JSON_PATCH)
        done.append("spec.strategy put back")
    if current.current_hash != was.current_hash:
        if current.current_hash != current.stable_hash and not current.aborted:
            rollouts.abort(was.name)  # a release still pending: users stay on stable
            done.append("abort")
        by_hash = {rs.pod_template_hash: rs.revision for rs in rollouts.replica_sets(was.name)}
        revision = by_hash.get(was.current_hash)
        if revision is None:
            problems.append(
                f'Rollout "{was.name}": the recorded ReplicaSet {was.current_hash} is no longer '
                "in its history (revisionHistoryLimit); undo cannot bring it back"
            )
            return done
        rollouts.undo(was.name, to_revision=revision, without_ephemeral_metadata=True)
        done.append(f"undo --to-revision={revision}")
    elif current.paused and not was.paused:
        rollouts.promote(was.name)  # only unpauses: the template is the recorded one
        done.append("promote (unpause)")
    elif current.aborted and not was.aborted:
        rollouts.retry(was.name)
        done.append("retry")
    return done


def _settle_back(rollouts: Rollouts, was: RolloutRecord, problems: list[str]) -> list[str]:
    """Wait until the recorded ReplicaSet is back; promote it when the undo waits on preview."""
    done: list[str] = []

    def back(r: kube.Rollout) -> bool:
        return r.current_hash == was.current_hash and phase_of(r)[0] in (
            Phase.HEALTHY,
            Phase.PAUSED,
            Phase.DEGRADED,
        )

    try:
        rollout = rollouts.wait_for(
            was.name, back, expecting=f"back on {was.current_hash} (Healthy, or Paused)"
        ).value
        phase = phase_of(rollout)[0]
        if phase is Phase.DEGRADED and rollout.abort:
            # The abort above outlived the undo: `retry` clears it, on the recorded template.
            rollouts.retry(was.name)
            done.append("retry")
            rollout = rollouts.wait_for(
                was.name, back, expecting=f"back on {was.current_hash}, not aborted"
            ).value
            phase = phase_of(rollout)[0]
        if phase is Phase.PAUSED:
            # The recorded ReplicaSet had been scaled down, so the undo is a release of it that
            # waits on preview; promoting it promotes what users had, nothing new.
            rollouts.promote(was.name)
            done.append("promote")
        rollouts.wait_until_settled([was.name])
    except HarnessError as exc:
        problems.append(f'Rollout "{was.name}": {exc}')
    return done


def verify(
    rollouts: Rollouts,
    recorded: Snapshot,
    *,
    only: Callable[[RolloutRecord], bool] = lambda _record: True,
) -> list[str]:
    """How the namespace differs from ``recorded``: hashes, Service selectors, images, phase,
    VirtualService routes. Empty when it is as recorded."""
    now = read_snapshot(rollouts)
    current = now.by_name()
    differences = []
    for was in recorded.rollouts:
        if not only(was):
            continue
        found = current.get(was.name)
        if found is None:
            continue  # reported by restore already
        for label, before, after in (
            ("pod-template hash", was.current_hash, found.current_hash),
            ("stable ReplicaSet", was.stable_hash, found.stable_hash),
            (f'active Service "{was.active_service}" selects', was.active_hash, found.active_hash),
            (
                f'preview Service "{was.preview_service}" selects',
                was.preview_hash,
                found.preview_hash,
            ),
            ("images", _images(was.images), _images(found.images)),
            ("phase", was.phase, found.phase),
            ("spec.strategy", was.strategy, found.strategy),
        ):
            if before != after:
                if label == "spec.strategy":
                    before, after = "as recorded", "changed"
                differences.append(
                    f'Rollout "{was.name}": {label} {after or "-"}, recorded {before or "-"}'
                )
    for name, routes in recorded.virtual_services.items():
        if now.virtual_services.get(name) != routes:
            differences.append(f'VirtualService "{name}": routes differ from the recorded ones')
    return differences


def _images(images: Mapping[str, str]) -> str:
    return ", ".join(f"{c}={i}" for c, i in sorted(images.items()))

