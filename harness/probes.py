"""Gateway A, as users and release engineers see it: through the active and the preview Service.

``Gateway`` reads A's ``GET /versions`` (A's own version and the B and C versions A reached, with
the pods that answered) through either Service, both sides at once when asked for both. HTTP has
no watch, so ``wait_for_version`` is the one retry loop the harness allows: a capped backoff, and
the last answer in its error. ``steady_traffic`` plays users: requests at a fixed rate on fresh
connections (so a Service switch shows up as soon as it happens, as it would for new visitors),
every answer recorded for zero-downtime and analysis scenarios.

Requests for ``/versions`` go through aiohttp, the page through httpx: on a fresh connection an
httpx request costs about 2.8 ms of CPU against aiohttp's 0.4 ms (benchmarks/RESULTS.md), and an
httpx client 30 ms to build, so at 100 requests/s the users took a third of a core. On a busy
machine they got less than that and fell behind their rate (571 answers in 30 s instead of
1,000): the users starving, not the system under test failing.

Where the Services are is the target's business: ``Gateway`` takes a locator (``Locate``), which
``Target.gateway`` builds (the local data plane's loopback addresses, kind's Service proxy, the URLs
the settings name on an existing cluster).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
import httpx

from harness.errors import ConfigError, HarnessError, ProbeError
from harness.waits import poll
from harness.words import parse_word

SERVICES = {"a": "gateway-a", "b": "service-b", "c": "service-c"}
CALLER = SERVICES["a"]  # gateway A calls B and C; no other service calls anyone


class Side(StrEnum):
    """Which of gateway A's Services a request goes through."""

    ACTIVE = "active"
    PREVIEW = "preview"

    @classmethod
    def parse(cls, text: str) -> Side:
        """A side as a runbook writes it, in any case; a harness error names the valid words."""
        return parse_word(cls, text.strip().lower(), "side")


Locate = Callable[[Side], str]
"""Gateway A's base URL through one side's Service; raises ``HarnessError`` when not served."""


@dataclass(frozen=True)
class Answer:
    """One request to gateway A's ``/versions`` and what came back."""

    side: Side
    url: str
    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    versions: Mapping[str, str]  # service -> version, for every service that answered
    pods: Mapping[str, str]  # service -> the pod that answered
    errors: Mapping[str, str]  # service -> why A could not reach it
    latency: float  # seconds
    at: float  # wall-clock time the request started
    error: str = ""  # transport error, when status is None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def version(self, service: str) -> str | None:
        return self.versions.get(service)

    def describe(self) -> str:
        if self.status is None:
            return f"{self.side}: no answer from {self.url}: {self.error}"
        seen = ", ".join(
            f"{s}={v}" + (f" ({self.pods[s]})" if s in self.pods else "")
            for s, v in sorted(self.versions.items())
        )
        failed = "".join(f"; {s} failed: {e}" for s, e in sorted(self.errors.items()))
        return f"{self.side}: HTTP {self.status} in {self.latency * 1000:.0f} ms: {seen}{failed}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "side": str(self.side),
            "url": self.url,
            "status": self.status,
            "versions": dict(self.versions),
            "pods": dict(self.pods),
            "errors": dict(self.errors),
            "latency_ms": round(self.latency * 1000, 2),
            "at": self.at,
            "error": self.error,
        }


def answer_from(side: Side, url: str, status: int, body: Any, latency: float, at: float) -> Answer:
    """Read A's JSON body: ``{"a": "1.0.0", "b": "1.0.0" | {"error": ...}, "c": ..., "pods"}``."""
    versions: dict[str, str] = {}
    errors: dict[str, str] = {}
    pods: dict[str, str] = {}
    if isinstance(body, Mapping):
        for key, service in SERVICES.items():
            value = body.get(key)
            if isinstance(value, str):
                versions[service] = value
            elif isinstance(value, Mapping) and "error" in value:
                errors[service] = str(value["error"])
        for key, pod in (body.get("pods") or {}).items():
            if key in SERVICES:
                pods[SERVICES[key]] = str(pod)
    else:
        errors["gateway-a"] = f"not gateway A's JSON: {str(body)[:200]!r}"
    return Answer(side, url, status, versions, pods, errors, latency, at)


@dataclass
class Traffic:
    """Every answer ``steady_traffic`` recorded, in the order the requests started."""

    rps: float
    sides: tuple[Side, ...]
    answers: list[Answer] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def record(self, answer: Answer) -> None:
        with self._changed:
            self.answers.append(answer)
            self._changed.notify_all()

    def wait_until(self, ok: Callable[[Traffic], bool], *, what: str, within: float) -> None:
        """Block until ``ok(self)`` holds, woken by each answer recorded; ``ProbeError`` after
        ``within`` seconds, with the traffic so far."""
        with self._changed:
            if not self._changed.wait_for(lambda: ok(self), timeout=within):
                raise ProbeError(
                    f"steady traffic did not show {what} within {within:g}s: {self.summary()}"
                )

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def versions_seen(self, service: str, *, side: Side = Side.ACTIVE) -> list[str]:
        """The versions of ``service`` seen on ``side``, in order of first appearance."""
        seen: list[str] = []
        for answer in sorted(self.answers, key=lambda a: a.at):
            version = answer.version(service)
            if answer.side == side and version is not None and version not in seen:
                seen.append(version)
        return seen

    def last_version(self, service: str, *, side: Side = Side.ACTIVE) -> str | None:
        """The version of ``service`` in the latest answer on ``side`` that named one."""
        answers = [a for a in self.answers if a.side == side and a.version(service) is not None]
        latest = max(answers, key=lambda a: a.at, default=None)
        return None if latest is None else latest.version(service)

    def first(self, service: str, version: str, *, side: Side = Side.ACTIVE) -> Answer | None:
        """The earliest answer on ``side`` in which ``service`` was at ``version``."""
        matches = [a for a in self.answers if a.side == side and a.version(service) == version]
        return min(matches, key=lambda a: a.at, default=None)

    def summary(self) -> str:
        by_side = ", ".join(
            f"{side}: " + " -> ".join(self.versions_seen("gateway-a", side=side))
            for side in self.sides
        )
        return (
            f"{len(self.answers)} requests at {self.rps:g}/s, {len(self.failures)} failed; "
            f"gateway-a versions {by_side}; {self.pace()}"
        )

    def pace(self, *, now: float | None = None) -> str:
        """How fast the users were answered against the rate asked, and how loaded the machine
        was: users that fall behind on a crowded machine were starved of CPU, which is no
        verdict on the system under test."""
        elapsed = max((time.time() if now is None else now) - self.started, 1e-9)
        asked = self.rps * len(self.sides)
        rate = len(self.answers) / elapsed
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        behind = " (behind: starved of CPU?)" if rate < 0.9 * asked else ""
        return (
            f"answered at {rate:.0f}/s against {asked:g}/s asked over {elapsed:.1f}s{behind}; "
            f"load average {load} (1, 5, 15 min) on {os.cpu_count()} CPUs"
        )


class Gateway:
    """Gateway A's ``/versions`` through its active and preview Services."""

    def __init__(self, locate: Locate, *, timeout: float, request_timeout: float = 5.0) -> None:
        self.locate = locate
        self.timeout = timeout
        self.request_timeout = request_timeout
        self.last: collections.deque[Answer] = collections.deque(maxlen=50)
        # What every probe saw, numbered, for a report to show per step (``seen_since``).
        self.seen: collections.deque[tuple[int, str]] = collections.deque(maxlen=500)
        self._probes = itertools.count(1)

    def _saw(self, line: str) -> None:
        self.seen.append((next(self._probes), line))

    @property
    def mark(self) -> int:
        """The number of the last probe so far; ``seen_since(mark)`` gives what came after."""
        return self.seen[-1][0] if self.seen else 0

    def seen_since(self, mark: int) -> list[str]:
        """What each probe after ``mark`` saw, oldest first (the last 500 at most)."""
        return [line for number, line in self.seen if number > mark]

    def read(self, side: Side) -> Answer:
        """One request through ``side``; never raises for what the gateway answered."""
        return self.read_versions((side,))[side]

    def read_versions(
        self, sides: Sequence[Side] = (Side.ACTIVE, Side.PREVIEW)
    ) -> dict[Side, Answer]:
        """One request per side, all at once."""

        async def both() -> list[Answer]:
            async with _session(self.request_timeout) as session:
                return list(await asyncio.gather(*(self._ask(session, s) for s in sides)))

        answers = asyncio.run(both())
        self.last.extend(answers)
        for answer in answers:
            self._saw(answer.describe())
        return dict(zip(sides, answers, strict=True))

    def wait_for_answers(
        self, sides: Sequence[Side] = (Side.ACTIVE, Side.PREVIEW), *, within: float | None = None
    ) -> dict[Side, Answer]:
        """Ask until gateway A answers 200 through every side in the same round; returns that
        round's answers. A Rollout is Healthy once its pods are available; their processes, the
        Services' endpoints and (on a real cluster) kube-proxy's rules follow a moment later, and
        until then a call may be refused."""
        within = self.timeout if within is None else within
        answers, met = poll(
            lambda: self.read_versions(sides),
            lambda round_: all(a.ok for a in round_.values()),
            within=within,
        )
        if not met:
            last = "\n  ".join(a.describe() for a in answers.values())
            raise ProbeError(
                f"gateway A did not answer 200 through {' and '.join(sides)} within "
                f"{within:g}s.\n  last answers:\n  {last}"
            )
        return answers

    def unanswered(self) -> dict[Side, str]:
        """Each side that did not answer 200 through gateway A, with what it answered."""
        return {s: a.describe() for s, a in self.read_versions().items() if not a.ok}

    def read_page(self, side: Side) -> tuple[int | None, str]:
        """Gateway A's page (``GET /``) through ``side``: status (None: no answer) and text."""
        try:
            url = self.locate(side).rstrip("/") + "/"
            response = httpx.get(url, timeout=self.request_timeout, trust_env=False)
        except (HarnessError, httpx.HTTPError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.text

    def wait_for_page(
        self, side: Side, text: str, *, present: bool = True, within: float | None = None
    ) -> str:
        """Ask until gateway A's page through ``side`` answers 200 with ``text`` on it (or, with
        ``present=False``, without it); returns the page."""
        within = self.timeout if within is None else within
        def read() -> tuple[int | None, str]:
            status, page = self.read_page(side)
            shown = "shows" if text in page else "does not show"
            self._saw(f"{side}: page HTTP {status}, {shown} {text!r}")
            return status, page

        (status, page), met = poll(
            read, lambda answer: answer[0] == 200 and (text in answer[1]) == present, within=within
        )
        if not met:
            shown = "show" if present else "stop showing"
            raise ProbeError(
                f"gateway A's page through {side} did not {shown} {text!r} within "
                f"{within:g}s.\n  last answer: HTTP {status}: {page[:500]!r}"
            )
        return page

    def wait_for_version(
        self, side: Side, service: str, version: str, *, within: float | None = None
    ) -> Answer:
        """Ask until gateway A through ``side`` answers 200 with ``service`` at ``version``."""
        if service not in SERVICES.values():
            raise ConfigError(
                f'unknown service "{service}"; expected one of {", ".join(SERVICES.values())}'
            )
        within = self.timeout if within is None else within
        answer, met = poll(
            lambda: self.read(side),
            lambda a: a.ok and a.version(service) == version,
            within=within,
        )
        if not met:
            raise ProbeError(
                f'gateway A through {side} did not show "{service}" at version "{version}" '
                f"within {within:g}s.\n  last answer: {answer.describe()}"
            )
        return answer

    @contextlib.contextmanager
    def steady_traffic(
        self, *, rps: float = 50.0, sides: Sequence[Side] = (Side.ACTIVE,)
    ) -> Iterator[Traffic]:
        """Requests at ``rps`` per side, each on a new connection, until the block ends.

        The ``Traffic`` yielded fills while the block runs and is complete when it exits (every
        request started has been answered or has failed).
        """
        if rps <= 0 or rps > 1000:
            raise ConfigError(f"steady traffic at {rps} requests/s; expected 0 < rps <= 1000")
        traffic = Traffic(rps=rps, sides=tuple(sides))
        stop = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._play(traffic, stop))
            except BaseException as exc:  # reported in the caller's thread below
                errors.append(exc)

        thread = threading.Thread(target=run, name="steady-traffic", daemon=True)
        thread.start()
        try:
            yield traffic
        finally:
            stop.set()
            thread.join()
        self.last.extend(traffic.answers[-20:])
        if errors:
            raise ProbeError(f"steady traffic stopped early: {errors[0]}") from errors[0]

    async def _play(self, traffic: Traffic, stop: threading.Event) -> None:
        interval = 1.0 / traffic.rps
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()

        async def one(session: aiohttp.ClientSession, side: Side) -> None:
            traffic.record(await self._ask(session, side))

        async with _session(self.request_timeout, fresh_connections=True) as session:
            tick = 0
            while not stop.is_set():
                for side in traffic.sides:
                    task = asyncio.create_task(one(session, side))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                tick += 1
                await asyncio.sleep(max(0.0, started + tick * interval - time.monotonic()))
            if pending:
                await asyncio.gather(*pending)

    async def _ask(self, session: aiohttp.ClientSession, side: Side) -> Answer:
        at = time.time()
        started = time.monotonic()
        try:
            url = self.locate(side).rstrip("/") + "/versions"
        except HarnessError as exc:
            return Answer(side, "", None, {}, {}, {}, 0.0, at, error=str(exc))
        try:
            async with session.get(url) as response:
                status, text = response.status, await response.text()
        except TimeoutError:
            error = f"TimeoutError: no answer within {self.request_timeout:g}s"
            return Answer(side, url, None, {}, {}, {}, time.monotonic() - started, at, error=error)
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return Answer(side, url, None, {}, {}, {}, time.monotonic() - started, at, error=error)
        latency = time.monotonic() - started
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        return answer_from(side, url, status, body, latency, at)

def _session(timeout: float, *, fresh_connections: bool = False) -> aiohttp.ClientSession:
    """A session for asking gateway A; ``fresh_connections``: one new connection per request, as
    users arriving from outside make, and no limit on how many are open at once."""
    connector = aiohttp.TCPConnector(force_close=fresh_connections, limit=0)
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    )


class Users:
    """Steady traffic that outlives one call: started by one step, judged by a later one."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._running: contextlib.ExitStack | None = None
        self.traffic: Traffic | None = None

    def start(self, *, rps: float = 100.0, sides: Sequence[Side] = (Side.ACTIVE,)) -> Traffic:
        if self._running is not None:
            raise ConfigError("users are already browsing; stop them before starting again")
        self._running = contextlib.ExitStack()
        self.traffic = self._running.enter_context(
            self.gateway.steady_traffic(rps=rps, sides=sides)
        )
        # Browsing means they have been for a second: what happens next happens under traffic.
        self.traffic.wait_until(
            lambda t: len(t.answers) >= rps, what="a first second of answers", within=10
        )
        return self.traffic

    def stop_after(self, count: int, *, within: float | None = None) -> Traffic:
        """Wait until at least ``count`` requests were answered, then stop; the whole traffic."""
        if self.traffic is None or self._running is None:
            raise ConfigError("no users are browsing: start them first")
        within = (
            within
            if within is not None
            else max(self.gateway.timeout, 2 * count / self.traffic.rps)
        )
        self.traffic.wait_until(
            lambda t: len(t.answers) >= count, what=f"{count} answers", within=within
        )
        self.stop()
        return self.traffic

    def stop(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            running.close()
