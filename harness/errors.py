"""The harness's error tree: one root, a few subclasses chosen by what the reader does next.

Every message is meant to work as a bug report: what happened, to which object, what was
expected, what was last seen, and where to look. Callers chain the cause (``raise ... from exc``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A setting, an argument or a file the user gave is wrong; fix the input and run again."""


class NotFound(HarnessError):
    """An object the user named does not exist; the message lists the ones that do."""


@dataclass(frozen=True)
class Excursion:
    """A stretch of a wait through a state that looks failed but that the controller recovers
    from (a Rollout Degraded by ProgressDeadlineExceeded without progressDeadlineAbort).

    ``started`` is seconds after the wait began; ``seconds`` how long it lasted, None while it
    was still going on when the wait ended.
    """

    reason: str
    started: float
    seconds: float | None

    def __str__(self) -> str:
        lasted = f"for {self.seconds:.1f}s" if self.seconds is not None else "until the end"
        return f"at {self.started:.1f}s {lasted}: {self.reason}"


def _excursion_lines(excursions: tuple[Excursion, ...]) -> str:
    return "".join(f"\n  waited through: {e}" for e in excursions)


class WaitTimeout(HarnessError):
    """A wait's deadline passed before its condition held; the message shows the last state seen.

    ``what`` names the wait (the object and what it waited for), ``within`` its deadline in
    seconds, ``last_seen`` the last state it observed, in one line, and ``excursions`` the
    recoverable failures it waited through.
    """

    def __init__(
        self,
        what: str,
        *,
        within: float,
        last_seen: str,
        expecting: str | None = None,
        excursions: tuple[Excursion, ...] = (),
    ) -> None:
        ending = f"did not become {expecting}" if expecting else "not met"
        super().__init__(
            f"{what}: {ending} within {within:.0f}s.\n  last seen: {last_seen}"
            + _excursion_lines(excursions)
        )
        self.what = what
        self.within = within
        self.last_seen = last_seen
        self.expecting = expecting
        self.excursions = excursions


class FailFast(HarnessError):
    """A wait stopped before its deadline: the state it waited for can no longer come.

    ``reason`` says why (what the wait's ``fail_if`` saw), ``last_seen`` the state in one line,
    ``last`` the object itself and ``excursions`` the recoverable failures it waited through
    before this final one.
    """

    def __init__(
        self,
        what: str,
        *,
        reason: str,
        elapsed: float,
        last_seen: str,
        last: object = None,
        excursions: tuple[Excursion, ...] = (),
    ) -> None:
        super().__init__(
            f"{what}: gave up after {elapsed:.1f}s: {reason}\n  last seen: {last_seen}"
            + _excursion_lines(excursions)
        )
        self.what = what
        self.reason = reason
        self.elapsed = elapsed
        self.last_seen = last_seen
        self.last = last
        self.excursions = excursions


class RolloutFailed(FailFast):
    """A wait saw the Rollout go Degraded (aborted, invalid spec, progress deadline exceeded)."""


class SyncFailed(FailFast):
    """Argo CD's sync of an Application failed (its operation or a SyncError condition)."""


class ProbeError(HarnessError):
    """An HTTP or TCP probe through the data plane did not get the expected answer."""


class AnalysisError(HarnessError):
    """An analysis could not be judged, or judged the preview unfit."""


class TargetError(HarnessError):
    """A cluster target could not be built, started, reached or stopped.

    The message names the component, the command and the log file to read.
    """


class Expired(HarnessError):
    """A watch position is too old (HTTP 410 Gone): read again and resume. Internal to waits."""


class Unreachable(HarnessError):
    """The API server did not answer (refused, reset, busy); a wait retries until its deadline."""


def indent_tail(text: str, *, lines: int = 20) -> str:
    """The last ``lines`` lines of a command's output or a log, indented for an error message."""
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def log_tail(path: object, *, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, indented for an error message; '' if unreadable."""
    try:
        text = Path(str(path)).read_text(errors="replace")
    except OSError:
        return ""
    return indent_tail(text, lines=lines)
