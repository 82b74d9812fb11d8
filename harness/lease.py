"""A lock on a namespace, held as a coordination.k8s.io Lease, so two runs never mutate the same
demo system at once.

The Lease ``bgh-runbooks`` in the namespace names its holder (``holderIdentity``), when it was
acquired and last renewed, and for how long a renewal counts (``leaseDurationSeconds``); the same
fields and the same rule as client-go's leader election: a Lease not renewed within its duration
is free to take. Taking it is a create (409 when another run created it first) or an update from
the resourceVersion read (409 when another run updated it first), so two runs can never both
believe they hold it. A holder renews it in the background until it releases it by clearing
``holderIdentity``.

The Lease also carries, while a scenario runs, the record of what that scenario found (annotation
``bgh.dev/recorded``): a run that dies half-way leaves it behind, and the next run restores from
it when asked to settle the namespace (harness/restore.py).
"""

from __future__ import annotations

import datetime
import getpass
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError, NotFound, WaitTimeout
from harness.kube import LEASE, Conflict, Kube, Resource
from harness.waits import Deadline, wait_for

NAME = "bgh-runbooks"
RECORD_ANNOTATION = "bgh.dev/recorded"

log = logging.getLogger("bgh.lease")

Now = Callable[[], datetime.datetime]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def default_identity() -> str:
    """Who is running: ``user@host pid N``, what another run's refusal names."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _micro_time(moment: datetime.datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Holder:
    """Who holds the Lease, as its spec says."""

    identity: str
    acquired: datetime.datetime | None
    renewed: datetime.datetime | None
    duration: int
    transitions: int
    resource_version: str
    recorded: str | None

    def seconds_left(self, now: datetime.datetime) -> float:
        """How long the last renewal still counts; 0 when it has lapsed or there is no holder."""
        if not self.identity or self.renewed is None:
            return 0.0
        return max(0.0, (self.renewed - now).total_seconds() + self.duration)

    def describe(self, now: datetime.datetime) -> str:
        acquired = self.acquired.strftime("%H:%M:%SZ") if self.acquired else "-"
        renewed = f"{(now - self.renewed).total_seconds():.0f}s ago" if self.renewed else "never"
        return (
            f'"{self.identity}" (acquired {acquired}, renewed {renewed}, '
            f"expires in {self.seconds_left(now):.0f}s)"
        )


def holder_from(obj: Mapping[str, Any]) -> Holder:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return Holder(
        identity=str(spec.get("holderIdentity") or ""),
        acquired=_parse_time(spec.get("acquireTime")),
        renewed=_parse_time(spec.get("renewTime")),
        duration=int(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(meta.get("resourceVersion", "")),
        recorded=(meta.get("annotations") or {}).get(RECORD_ANNOTATION),
    )


class LockHeld(HarnessError):
    """Another run holds the namespace's Lease; ``holder`` says who."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


class NamespaceLock:
    """The Lease ``bgh-runbooks`` in ``kube``'s namespace, taken by ``identity``."""

    def __init__(
        self,
        kube: Kube,
        *,
        identity: str,
        duration: int = 60,
        now: Now = _utc_now,
    ) -> None:
        self.kube = kube
        self.identity = identity
        self.duration = duration
        self.now = now
        self.resource = Resource(kube, LEASE, holder_from)
        self._stop = threading.Event()
        self._renewing: threading.Thread | None = None
        self._guard = threading.Lock()
        self.lost: str | None = None  # why renewing failed, when it did

    @property
    def where(self) -> str:
        return f"Lease {self.kube.namespace}/{NAME}"

    def read(self) -> Holder | None:
        """The Lease as it is now; None when there is none."""
        try:
            return holder_from(self.kube.get(LEASE, NAME))
        except NotFound:
            return None

    def acquire(self, *, wait: float) -> Holder | None:
        """Take the Lease, waiting up to ``wait`` seconds for another holder to release it or to
        stop renewing it; ``LockHeld`` naming that holder otherwise. Returns the Lease as it was
        found when a record was left in it (a run that died half-way, or could not restore),
        else None.
        Renews it in the background until ``release``."""
        deadline = Deadline(wait)
        while True:
            with self._guard:
                found = self.read()
                now = self.now()
                if found is None:
                    if self._create(now):
                        self._start_renewing()
                        return None
                    continue
                free = found.identity in ("", self.identity) or found.seconds_left(now) <= 0
                if free:
                    if self._take(found, now):
                        self._start_renewing()
                        return found if found.recorded else None
                    continue
            if deadline.expired():
                raise LockHeld(
                    f'namespace "{self.kube.namespace}" is being changed by another run: '
                    f"{self.where} is held by {found.describe(now)}; waited {wait:.0f}s. "
                    "Run again when it is done, or wait for it: BGH_LOCK_WAIT=900 "
                    "(seconds).",
                    found,
                )
            self._wait_for_change(found, min(deadline.left(), found.seconds_left(now) + 1.0))

    def _create(self, now: datetime.datetime) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": NAME, "labels": {"app.kubernetes.io/managed-by": "bgh"}},
            "spec": self._spec(now, transitions=0),
        }
        try:
            self.kube.create(LEASE, body)
        except Conflict:
            return False  # another run created it first: read it again
        log.info("%s: acquired by %s", self.where, self.identity)
        return True

    def _take(self, found: Holder, now: datetime.datetime) -> bool:
        raw = self.kube.get(LEASE, NAME)
        if str(raw["metadata"].get("resourceVersion", "")) != found.resource_version:
            return False
        changed = found.identity != self.identity
        raw["spec"] = self._spec(now, transitions=found.transitions + (1 if changed else 0))
        try:
            self.kube.replace(LEASE, NAME, raw)
        except Conflict:
            return False  # another run took it between our read and our write
        if found.identity and changed:
            log.info(
                "%s: taken over by %s from %s, whose renewal had lapsed",
                self.where,
                self.identity,
                found.identity,
            )
        else:
            log.info("%s: acquired by %s", self.where, self.identity)
        return True

    def _spec(self, now: datetime.datetime, *, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "acquireTime": _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }

    def _wait_for_change(self, found: Holder, within: float) -> None:
        """Block until the Lease changes (released, renewed, deleted) or ``within`` passes."""
        try:
            wait_for(
                self.resource,
                NAME,
                lambda h: h.resource_version != found.resource_version,
                what=f"{self.where}: released by {found.identity}",
                describe=lambda h: f"holder={h.identity or '-'}",
                within=max(within, 0.1),
            )
        except (WaitTimeout, NotFound):
            return  # lapsed, or deleted: the caller reads it again

    def _update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Read, change and write the Lease we hold; retried on a 409 (our own renewal racing)."""
        for _attempt in range(5):
            raw = self.kube.get(LEASE, NAME)
            if holder_from(raw).identity != self.identity:
                raise LockHeld(
                    f"{self.where} is no longer held by {self.identity}: "
                    f"{holder_from(raw).describe(self.now())} took it",
                    holder_from(raw),
                )
            change(raw)
            try:
                self.kube.replace(LEASE, NAME, raw)
                return
            except Conflict:
                continue
        raise LockHeld(f"{self.where}: could not update it after 5 conflicts", holder_from(raw))

    def renew(self) -> None:
        def bump(raw: dict[str, Any]) -> None:
            raw["spec"]["renewTime"] = _micro_time(self.now())

        with self._guard:
            self._update(bump)

    def record(self, text: str | None) -> None:
        """Keep ``text`` in the Lease (what a scenario found), or drop it (``None``)."""

        def put(raw: dict[str, Any]) -> None:
            annotations = raw["metadata"].setdefault("annotations", {}) or {}
            if text is None:
                annotations.pop(RECORD_ANNOTATION, None)
            else:
                annotations[RECORD_ANNOTATION] = text
            raw["metadata"]["annotations"] = annotations

        with self._guard:
            self._update(put)

    def release(self) -> None:
        """Stop renewing and clear ``holderIdentity``: a waiting run sees the change at once."""
        self._stop.set()
        if self._renewing is not None:
            self._renewing.join(timeout=10)

        def clear(raw: dict[str, Any]) -> None:
            raw["spec"]["holderIdentity"] = None
            raw["spec"]["renewTime"] = None

        with self._guard:
            try:
                self._update(clear)
            except (LockHeld, NotFound):
                return  # someone took it after we lost it, or deleted it: nothing to release
        log.info("%s: released by %s", self.where, self.identity)

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewing = threading.Thread(target=self._renew_loop, name="bgh-lease", daemon=True)
        self._renewing.start()

    def _renew_loop(self) -> None:
        # A third of the duration, as client-go's leader election retries: two renewals can fail
        # (an API server restarting) before the Lease lapses.
        while not self._stop.wait(self.duration / 3):
            try:
                self.renew()
            except HarnessError as exc:
                self.lost = f"{self.where}: renewing failed: {exc}"
                log.warning("%s", self.lost)
