"""One way to wait: read, test, then watch from that resourceVersion until a deadline.

``wait_for`` GETs the object, tests ``ok``; if it does not hold yet, it watches from the object's
resourceVersion with the server-side timeout set to the time left, testing every event. A 410
Gone, a dropped stream or an API server that went away makes it read again and resume.
``fail_if`` stops the wait at once (a Rollout that went Degraded will not become Paused). The
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

from harness.errors import Expired, FailFast, HarnessError, Unreachable, WaitTimeout

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
    """What a wait observed: the object that satisfied it, and how long it took."""

    value: T
    seconds: float
    changes: int


def wait_for(
    source: Source[T],
    name: str,
    ok: Callable[[T], bool],
    *,
    what: str,
    describe: Callable[[T], str],
    within: float,
    fail_if: Callable[[T], str | None] | None = None,
    error: Callable[[WaitTimeout | FailFast], HarnessError] | None = None,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Waited[T]:
    """Block until ``ok(obj)`` holds for object ``name``; return what satisfied it.

    ``what`` names the wait in log lines and errors ("Rollout demo/service-b: phase Paused");
    ``describe`` renders an observed state in one line, so failures show the last state seen.
    A wait ends in ``WaitTimeout`` (deadline passed) or ``FailFast`` (``fail_if`` gave a
    reason); ``error`` turns either into the caller's own error from their fields.
    """
    deadline = Deadline(within, clock)
    log.info("waiting up to %.0fs for %s", within, what)
    last: T | None = None
    last_text = "nothing observed yet"
    changes = 0

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
            return True
        if fail_if is not None:
            reason = fail_if(obj)
            if reason:
                ended = FailFast(
                    what, reason=reason, elapsed=deadline.elapsed(), last_seen=text, last=obj
                )
                raise error(ended) if error else ended
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
                ended = WaitTimeout(what, within=within, last_seen=f"{last_text}; last read: {exc}")
                raise (error(ended) if error else ended) from exc
            log.info("%s: API server unreachable (%s); retrying", what, exc)
            sleep(min(backoff, deadline.left()))
            backoff = min(backoff * 2, 1.0)
            continue
        backoff = 0.05
        if observe(obj):
            return _met(what, obj, deadline, changes)
        try:
            while not deadline.expired():
                # The server closes the watch when the time left runs out; round up so a
                # fraction of a second still gets a watch rather than a busy read loop.
                # A stream that ends early (dropped) is watched again from the last position.
                timeout = max(1, math.ceil(deadline.left()))
                for _event, seen, seen_at in source.events(name, position, timeout):
                    position = seen_at
                    if seen is not None and observe(seen):
                        return _met(what, seen, deadline, changes)
                    if deadline.expired():
                        break
        except Expired:
            log.info("%s: watch position expired; reading again", what)
            continue
        except Unreachable:
            log.info("%s: watch lost the API server; reading again", what)
            continue
        ended = WaitTimeout(what, within=within, last_seen=last_text)
        raise error(ended) if error else ended


def _met(what: str, obj: T, deadline: Deadline, changes: int) -> Waited[T]:
    seconds = deadline.elapsed()
    log.info("%s: met after %.2fs", what, seconds)
    return Waited(obj, seconds, changes)


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
