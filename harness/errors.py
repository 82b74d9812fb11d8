"""The harness's error tree: one root, a few subclasses chosen by what the reader does next.

Every message is meant to work as a bug report: what happened, to which object, what was
expected, what was last seen, and where to look. Callers chain the cause (``raise ... from exc``).
"""

from __future__ import annotations


class HarnessError(Exception):
    """Root of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A setting, an argument or a file the user gave is wrong; fix the input and run again."""


class NotFound(HarnessError):
    """An object the user named does not exist; the message lists the ones that do."""


class WaitTimeout(HarnessError):
    """A wait's deadline passed before its condition held; the message shows the last state seen."""


class RolloutFailed(HarnessError):
    """A wait saw the Rollout go Degraded (aborted, invalid spec, progress deadline exceeded)."""


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
    from pathlib import Path

    try:
        text = Path(str(path)).read_text(errors="replace")
    except OSError:
        return ""
    return indent_tail(text, lines=lines)
