"""The wait primitive with a fake clock and a scripted watch stream: no cluster, no sleeping.

The scripted source stands in for the API server's GET and watch, the one boundary these unit
tests replace; the cluster tests run the same code against the real API server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from harness.errors import Expired, FailFast, Unreachable, WaitTimeout
from harness.waits import Deadline, wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Step = tuple[float, str | None]  # (seconds that pass, state seen; None ends the stream)


@dataclass
class ScriptedSource:
    """Reads return ``reads`` in turn; each watch plays the next script of (delay, state)."""

    clock: FakeClock
    reads: list[str]
    streams: list[list[Step] | Exception]
    watch_calls: list[tuple[str, int]] = field(default_factory=list)
    read_calls: int = 0
    read_timeouts: list[float | None] = field(default_factory=list)

    def read(self, name: str, *, timeout: float | None = None) -> tuple[str, str]:
        self.read_calls += 1
        self.read_timeouts.append(timeout)
        return self.reads.pop(0), f"rv{self.read_calls}"

    def events(
        self, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, str | None, str]]:
        self.watch_calls.append((resource_version, timeout_seconds))
        script = self.streams.pop(0) if self.streams else [(timeout_seconds, None)]
        if isinstance(script, Exception):
            raise script
        for index, (delay, state) in enumerate(script):
            self.clock.now += delay
            if state is None:
                return  # the server closed the stream, or it dropped
            yield "MODIFIED", state, f"{resource_version}.{index}"


def wait(source: ScriptedSource, target: str, *, within: float = 60.0, fail_on: str | None = None):  # type: ignore[no-untyped-def]
    return wait_for(
        source,
        "r",
        lambda state: state == target,
        what=f"thing demo/r: {target}",
        describe=lambda state: f"state={state}",
        within=within,
        fail_if=(lambda state: f"saw {state}" if state == fail_on else None),
        clock=source.clock,
    )


def test_met_at_once_reads_once_and_never_watches() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, reads=["Paused"], streams=[])
    waited = wait(source, "Paused")
    assert (waited.value, waited.seconds, source.watch_calls) == ("Paused", 0.0, [])


def test_met_later_through_the_watch_with_the_time_taken() -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock, reads=["Progressing"], streams=[[(2.0, "Progressing"), (1.5, "Paused")]]
    )
    waited = wait(source, "Paused")
    assert waited.value == "Paused"
    assert waited.seconds == pytest.approx(3.5)
    assert source.watch_calls == [("rv1", 60)]


def test_fail_if_stops_at_once_with_the_last_state() -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock, reads=["Progressing"], streams=[[(1.0, "Degraded"), (1.0, "Paused")]]
    )
    with pytest.raises(FailFast) as caught:
        wait(source, "Paused", fail_on="Degraded")
    assert "gave up after 1.0s: saw Degraded" in str(caught.value)
    assert "last seen: state=Degraded" in str(caught.value)
    assert caught.value.last == "Degraded"


def test_timeout_message_shows_the_last_state() -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock, reads=["Progressing"], streams=[[(5.0, "Progressing"), (30.0, None)]]
    )
    with pytest.raises(WaitTimeout) as caught:
        wait(source, "Paused", within=30.0)
    assert (
        str(caught.value)
        == "thing demo/r: Paused: not met within 30s.\n  last seen: state=Progressing"
    )


def test_second_watch_asks_only_for_the_time_left_from_the_last_position() -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock,
        reads=["Progressing"],
        streams=[[(10.0, "Progressing"), (10.0, None)], [(5.0, "Paused")]],
    )
    assert wait(source, "Paused", within=60.0).value == "Paused"
    assert source.watch_calls == [("rv1", 60), ("rv1.0", 40)]


def test_410_gone_reads_again_and_resumes() -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock,
        reads=["Progressing", "Progressing"],
        streams=[Expired("410 Gone"), [(1.0, "Paused")]],
    )
    assert wait(source, "Paused").value == "Paused"
    assert source.read_calls == 2
    assert source.watch_calls[-1][0] == "rv2"


def test_a_change_that_happened_while_the_watch_was_gone_is_seen_on_the_new_read() -> None:
    clock = FakeClock()
    source = ScriptedSource(clock, reads=["Progressing", "Paused"], streams=[Expired("410 Gone")])
    assert wait(source, "Paused").value == "Paused"
    assert len(source.watch_calls) == 1


def test_dropped_stream_is_watched_again_from_the_last_event() -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock,
        reads=["Progressing"],
        streams=[[(1.0, "Progressing"), (0.0, None)], [(1.0, "Paused")]],
    )
    assert wait(source, "Paused").value == "Paused"
    assert [call[0] for call in source.watch_calls] == ["rv1", "rv1.0"]


def test_progress_lines_at_start_on_change_and_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    source = ScriptedSource(
        clock, reads=["Progressing"], streams=[[(2.0, "Progressing"), (1.0, "Paused")]]
    )
    with caplog.at_level(logging.INFO, logger="bgh.wait"):
        wait(source, "Paused", within=120)
    assert caplog.messages == [
        "waiting up to 120s for thing demo/r: Paused",
        "thing demo/r: Paused: state=Progressing -> state=Paused",
        "thing demo/r: Paused: met after 3.00s",
    ]


def test_deadline_never_goes_below_zero() -> None:
    clock = FakeClock()
    deadline = Deadline(5.0, clock)
    clock.now += 7.0
    assert (deadline.left(), deadline.expired(), deadline.elapsed()) == (0.0, True, 7.0)


class FlakySource(ScriptedSource):
    """Reads fail as an unreachable API server would, ``failures`` times, then succeed."""

    failures: int = 0
    failure_seconds: float = 0.0

    def read(self, name: str, *, timeout: float | None = None) -> tuple[str, str]:
        if self.failures:
            self.failures -= 1
            self.clock.now += self.failure_seconds
            raise Unreachable("connection refused")
        return super().read(name, timeout=timeout)


def test_unreachable_api_server_is_retried_with_backoff_within_the_deadline() -> None:
    clock = FakeClock()
    source = FlakySource(clock, reads=["Paused"], streams=[])
    source.failures = 3
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    waited = wait_for(
        source, "r", lambda s: s == "Paused", what="thing demo/r: Paused",
        describe=str, within=60, clock=clock, sleep=sleep,
    )  # fmt: skip
    assert waited.value == "Paused"
    assert slept == [0.05, 0.1, 0.2]


def test_unreachable_until_the_deadline_is_a_timeout_not_a_crash() -> None:
    clock = FakeClock()
    source = FlakySource(clock, reads=[], streams=[])
    source.failures = 10_000

    def sleep(seconds: float) -> None:
        clock.now += seconds

    expected = (
        r"not met within 5s\.\n  last seen: nothing observed yet; last read: connection refused"
    )
    with pytest.raises(WaitTimeout, match=expected):
        wait_for(
            source, "r", lambda s: s == "Paused", what="thing demo/r: Paused",
            describe=str, within=5, clock=clock, sleep=sleep,
        )  # fmt: skip


def test_each_read_may_block_only_for_the_time_the_wait_has_left() -> None:
    clock = FakeClock()
    source = FlakySource(clock, reads=["Paused"], streams=[])
    source.failures = 1
    source.failure_seconds = 3.0  # a read that blocked until its timeout

    def sleep(seconds: float) -> None:
        clock.now += seconds

    wait_for(
        source, "r", lambda s: s == "Paused", what="thing demo/r: Paused",
        describe=str, within=10, clock=clock, sleep=sleep,
    )  # fmt: skip
    assert source.read_timeouts == [pytest.approx(10 - 3 - 0.05)]


def test_poll_backs_off_to_its_cap_and_returns_the_last_read_when_time_runs_out() -> None:
    from harness.waits import poll

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    reads = iter(range(100))
    last, met = poll(lambda: next(reads), lambda n: n < 0, within=2.0, cap=0.4,
                     clock=lambda: now[0], sleep=sleep)  # fmt: skip
    assert not met
    assert slept == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4]  # 1.95 s; one more would pass 2 s
    assert last == len(slept)
    found, met = poll(lambda: next(reads), lambda n: n % 3 == 0, within=2.0,
                      clock=lambda: now[0], sleep=sleep)  # fmt: skip
    assert met and found % 3 == 0
