"""One run's custody of a long-lived namespace: the lock, and each scenario's record and restore.

``NamespaceGuard.begin`` (before a scenario that changes the namespace): take the namespace's
Lease if this run does not hold it yet (harness/lease.py), record the namespace, and refuse at
once when it is not settled, or, when asked to settle, first restore what an earlier run of the
harness left behind (the record it left in the Lease) and wait out Rollouts still progressing.
The record goes into the Lease before the scenario starts, so a run that dies half-way leaves it
for the next one. ``end`` (after the scenario, pass or fail): restore and verify
(harness/restore.py), then drop the record. ``close`` (end of the run) releases the Lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.kube import Kube
from harness.lease import LockHeld, NamespaceLock
from harness.restore import (
    Restored,
    RolloutRecord,
    Snapshot,
    read_snapshot,
    refuse_unsettled,
    restore,
    unsettled,
)
from harness.rollouts import Phase, Rollouts, phase_of

Report = Callable[[str], None]


@dataclass
class NamespaceGuard:
    """Lock, precondition and restore for the scenarios of one run in one namespace."""

    kube: Kube
    rollouts: Rollouts
    identity: str
    settle: bool = False
    lock_wait: float = 0.0
    report: Report = lambda _line: None
    restores: list[Restored] = field(default_factory=list, init=False)
    _lock: NamespaceLock | None = field(default=None, init=False)
    _left_behind: Snapshot | None = field(default=None, init=False)

    def begin(self) -> Snapshot:
        """Hold the lock, check the namespace is settled (or settle it), record it."""
        started = time.monotonic()
        lock = self._hold()
        snapshot = read_snapshot(self.rollouts)
        pending = unsettled(snapshot)
        if pending and self.settle:
            snapshot = self._settle(snapshot)
            pending = unsettled(snapshot)
        if pending:
            raise refuse_unsettled(
                snapshot,
                pending,
                why=(
                    " (and none of it was left by a run of the harness, so --bgh-settle leaves "
                    "it alone)"
                    if self.settle
                    else ""
                ),
            )
        lock.record(snapshot.to_json())
        self.report(
            f"recorded {len(snapshot.rollouts)} Rollouts in {snapshot.namespace} "
            f"({time.monotonic() - started:.1f}s): "
            + ", ".join(f"{r.name} revision {r.revision}" for r in snapshot.rollouts)
        )
        return snapshot

    def end(self, recorded: Snapshot) -> Restored:
        """Restore and verify; the record stays in the Lease when that fails."""
        restored = restore(self.rollouts, recorded, report=self.report)
        self.restores.append(restored)
        if self._lock is not None:
            self._lock.record(None)
        return restored

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _hold(self) -> NamespaceLock:
        if self._lock is None:
            lock = NamespaceLock(self.kube, identity=self.identity)
            left = lock.acquire(wait=self.lock_wait)
            self._lock = lock
            if left is not None and left.recorded:
                self._left_behind = Snapshot.from_json(left.recorded)
                self.report(
                    f"{lock.where}: a run of the harness ({left.identity or 'released'}) left a "
                    "record of what it found; --bgh-settle restores it"
                )
        if self._lock.lost:
            raise LockHeld(self._lock.lost, self._lock.read())
        return self._lock

    def _settle(self, snapshot: Snapshot) -> Snapshot:
        """Wait out Rollouts still progressing; restore those an earlier run left behind."""
        for item in unsettled(snapshot):
            if item.record.phase == Phase.PROGRESSING.value:
                self.report(f"settle: waiting for {item.record.name} to stop progressing")
                self.rollouts.wait_for(
                    item.record.name,
                    lambda r: phase_of(r)[0] is not Phase.PROGRESSING,
                    expecting="no longer Progressing",
                )
        snapshot = read_snapshot(self.rollouts)
        left = self._left_behind
        if left is None:
            return snapshot
        pending = {p.record.name for p in unsettled(snapshot)}
        recorded = left.by_name()

        def ours(record: RolloutRecord) -> bool:
            return record.name in pending and record.name in recorded

        if any(ours(r) for r in left.rollouts):
            self.report("settle: restoring what an earlier run left behind")
            restore(self.rollouts, left, only=ours, report=self.report)
            self._left_behind = None
        return read_snapshot(self.rollouts)
