"""One way to wait: read, test, then watch from that resourceVersion until a deadline.

``wait_for`` GETs the object, tests ``ok``; if it does not hold yet, it watches from the object's
resourceVersion with the server-side timeout set to the time left, testing every event. A 410
Gone, a dropped stream or an API server that went away makes it read again and resume.
``fail_if`` stops the wait at once (a Rollout that went Degraded will not become Paused);
``excursion`` names states that look failed but are waited through because the controller
recovers from them, and each such stretch (when, why, how long) is logged and returned. The
clock is injectable so the logic is unit-tested with a fake clock and a scripted event stream:
no cluster, no sleeping.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from harness.errors import Excursion, Expired, FailFast, HarnessError, Unreachable, WaitTimeout

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

log = logging.getLogger("bgh.wait")

_MIN_READ = 0.2
"""Seconds a read may take when the deadline is (nearly) spent: one last look, not none."""


class Source(Protocol[T_co]):
    """What ``wait_for`` needs: one read, and a stream of events after a resourceVersion."""

    def read(self, name: str, *, timeout: float | None = None) -> tuple[T_co, str]:
        """One read; ``timeout`` bounds how long it may block (the time the wait has left)."""
        ...

    def events(
        self, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, T_co | None, str]]: ...


class Clock(Protocol):
    def __call__(self) -> float: ...


@dataclass
class Deadline:
    """A point on a monotonic clock; ``left()`` never goes below zero."""

    seconds: float
    clock: Clock = time.monotonic
    start: float = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.clock()

    def left(self) -> float:
        return max(0.0, self.start + self.seconds - self.clock())

    def elapsed(self) -> float:
        return self.clock() - self.start

    def expired(self) -> bool:
        return self.left() <= 0.0


@dataclass(frozen=True)
class Waited(Generic[T]):
    """What a wait observed: the object that satisfied it, how long it took, how many changes
    it saw and the recoverable failures it waited through."""

    value: T
    seconds: float
    changes: int
    excursions: tuple[Excursion, ...] = ()


@dataclass
class _Excursions:
    """The excursions of one wait: the one going on, and those that ended."""

    what: str
    deadline: Deadline
    ended: list[Excursion] = field(default_factory=list)
    reason: str | None = None
    started: float = 0.0

    def observe(self, reason: str | None) -> None:
        """The state now is an excursion for ``reason``, or None for no excursion."""
        if reason == self.reason:
            return
        now = self.deadline.elapsed()
        if self.reason is not None:
            self.ended.append(Excursion(self.reason, self.started, now - self.started))
            log.warning("%s: left after %.1fs: %s", self.what, now - self.started, self.reason)
        self.reason, self.started = reason, now
        # A warning, not info: a Degraded the wait did not stop on belongs in every report,
        # including pytest's captured log, which leaves the logger at its WARNING default.
        if reason is not None:
            log.warning(
                "%s: waiting through %s (the controller recovers from it)", self.what, reason
            )

    def all(self) -> tuple[Excursion, ...]:
        """Every excursion; the one still going on (if any) last, without a duration."""
        going_on = [Excursion(self.reason, self.started, None)] if self.reason else []
        return (*self.ended, *going_on)


def wait_for(
    source: Source[T],
    name: str,
    ok: Callable[[T], bool],
    *,
    what: str,
    describe: Callable[[T], str],
    within: float,
    fail_if: Callable[[T], str | None] | None = None,
    excursion: Callable[[T], str | None] | None = None,
    error: Callable[[WaitTimeout | FailFast], HarnessError] | None = None,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited[T]:
    """Block until ``ok(obj)`` holds for object ``name``; return what satisfied it.

    ``what`` names the wait in log lines and errors ("Rollout demo/service-b: phase Paused");
    ``describe`` renders an observed state in one line, so failures show the last state seen.
    A wait ends in ``WaitTimeout`` (deadline passed) or ``FailFast`` (``fail_if`` gave a
    reason); ``error`` turns either into the caller's own error from their fields.
    ``excursion`` gives a reason for a state that is not ``ok`` yet but recoverable (tested
    after ``fail_if``); the wait goes on, logs when it starts and ends, and reports it in
    ``Waited.excursions`` or the error's ``excursions``.
    """
    deadline = Deadline(within, clock)
    log.info("waiting up to %.0fs for %s", within, what)
    last: T | None = None
    last_text = "nothing observed yet"
    changes = 0
    excursions = _Excursions(what, deadline)

    def timed_out(last_read: str = "") -> WaitTimeout:
        return WaitTimeout(
            what, within=within, last_seen=last_text + last_read, excursions=excursions.all()
        )

    def observe(obj: T) -> bool:
        nonlocal last, last_text, changes
        text = describe(obj)
        if text != last_text:
            if last is not None:
                log.info("%s: %s -> %s", what, last_text, text)
                changes += 1
            last_text = text
        last = obj
        if ok(obj):
            excursions.observe(None)
            return True
        if fail_if is not None:
            reason = fail_if(obj)
            if reason:
                excursions.observe(None)
                ended = FailFast(
                    what,
                    reason=reason,
                    elapsed=deadline.elapsed(),
                    last_seen=text,
                    last=obj,
                    excursions=excursions.all(),
                )
                raise error(ended) if error else ended
        excursions.observe(excursion(obj) if excursion is not None else None)
        return False

    backoff = 0.05
    while True:
        try:
            # A server that accepts and never answers must not hold the wait past its deadline.
            obj, position = source.read(name, timeout=max(_MIN_READ, deadline.left()))
        except Unreachable as exc:
            # The API server is restarting or the network blipped: back off and read again,
            # within the same deadline. This is the only sleep, and only while unreachable.
            if deadline.expired():
                ended = timed_out(f"; last read: {exc}")
                raise (error(ended) if error else ended) from exc
            log.info("%s: API server unreachable (%s); retrying", what, exc)
            sleep(min(backoff, deadline.left()))
            backoff = min(backoff * 2, 1.0)
            continue
        backoff = 0.05
        if observe(obj):
            return _met(what, obj, deadline, changes, excursions.all())
        try:
            while not deadline.expired():
                # The server closes the watch when the time left runs out; round up so a
                # fraction of a second still gets a watch rather than a busy read loop.
                # A stream that ends early (dropped) is watched again from the last position.
                timeout = max(1, math.ceil(deadline.left()))
                for _event, seen, seen_at in source.events(name, position, timeout):
                    position = seen_at
                    if seen is not None and observe(seen):
                        return _met(what, seen, deadline, changes, excursions.all())
                    if deadline.expired():
                        break
        except Expired:
            log.info("%s: watch position expired; reading again", what)
            continue
        except Unreachable:
            log.info("%s: watch lost the API server; reading again", what)
            continue
        ended = timed_out()
        raise error(ended) if error else ended


def _met(
    what: str, obj: T, deadline: Deadline, changes: int, excursions: tuple[Excursion, ...]
) -> Waited[T]:
    seconds = deadline.elapsed()
    through = f" (waited through {len(excursions)} excursion(s))" if excursions else ""
    log.info("%s: met after %.2fs%s", what, seconds, through)
    return Waited(obj, seconds, changes, excursions)


def poll(
    read: Callable[[], T],
    ok: Callable[[T], bool],
    *,
    within: float,
    cap: float = 1.0,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, bool]:
    """Read until ``ok`` holds, for things with no watch (HTTP): a backoff from 50 ms doubling up
    to ``cap``; gives up when the next try would end past ``within`` seconds. Returns the last
    read and whether it satisfied ``ok``, so the caller's error can show what it last saw."""
    started = clock()
    delay = 0.05
    while True:
        value = read()
        if ok(value):
            return value, True
        if clock() - started + delay > within:
            return value, False
        sleep(delay)
        delay = min(delay * 2, cap)
