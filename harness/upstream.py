"""Known Argo Rollouts bugs that touch blue-green, and on which controller releases each is open.

The ``@upstream`` runbooks replay one upstream issue each and are tagged with it
(``@argo_rollouts_4073``). ``ISSUES`` is the one place that says what each issue is and in which
release it was fixed (``None``: still open upstream); the runbook plugin turns it into a strict
expected failure on a controller that still has the bug, so a fix upstream shows up as a failure
("XPASS(strict)") that asks for this table to be updated. An issue whose runbook does not show the
bug here says why (``not_reproduced``) and its runbook is a plain test of the expected behaviour.
Nothing here runs a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import ConfigError

REPOSITORY = "argoproj/argo-rollouts"
MARKER_PREFIX = "argo_rollouts_"
_RELEASE = re.compile(r"v(\d+)\.(\d+)\.(\d+)")


def release(text: str) -> tuple[int, int, int]:
    """``"v1.9.3"`` as ``(1, 9, 3)``, to compare releases."""
    match = _RELEASE.fullmatch(text)
    if match is None:
        raise ConfigError(f"{text!r} is not an Argo Rollouts release; expected vX.Y.Z, e.g. v1.9.3")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


@dataclass(frozen=True)
class UpstreamIssue:
    """One upstream issue: its number, what goes wrong, and the first release with the fix."""

    number: int
    summary: str
    fixed_in: str | None = None  # None: open upstream
    # Why the runbook does not show the bug on any release built here (None: it does). Such a
    # runbook pins the expected behaviour as a plain test: it must pass, and fails if the bug
    # ever shows; docs/upgrade.md says what was tried.
    not_reproduced: str | None = None

    @property
    def marker(self) -> str:
        """The tag a runbook carries for it (``@argo_rollouts_4073``), a pytest marker."""
        return f"{MARKER_PREFIX}{self.number}"

    @property
    def url(self) -> str:
        return f"https://github.com/{REPOSITORY}/issues/{self.number}"

    def is_open_in(self, version: str) -> bool:
        """Whether controller release ``version`` still has the bug."""
        return self.fixed_in is None or release(version) < release(self.fixed_in)

    def fails_on(self, version: str) -> bool:
        """Whether the runbook is expected to fail on ``version``: the bug is open there and
        the runbook reproduces it."""
        return self.not_reproduced is None and self.is_open_in(version)

    def reason(self, version: str) -> str:
        """Why a runbook is expected to fail on ``version``: the issue, named."""
        status = f"fixed in {self.fixed_in}" if self.fixed_in else "open upstream"
        return f"{REPOSITORY}#{self.number} ({status}; controller {version}): {self.summary}"


ISSUES: dict[int, UpstreamIssue] = {
    issue.number: issue
    for issue in (
        UpstreamIssue(
            4073,
            "a promote sent right after the controller paused the Rollout is lost: its "
            "write-back to the informer cache overwrites the newer, unpaused object",
            fixed_in="v1.10.0",  # by argoproj/argo-rollouts#4786 (requeue on a stale cache)
        ),
        UpstreamIssue(
            3724,
            "a preview pod that crashes while the pre-promotion analysis runs cancels that "
            "analysis (the new ReplicaSet is no longer saturated) and the release is promoted",
            fixed_in="v1.9.0",  # by argoproj/argo-rollouts#4604 (keep an analysis once started)
        ),
        UpstreamIssue(
            4728,
            "with previewReplicaCount, a release made while the previous one is scaling up "
            "before its switch inherits scaleUpPreviewCheckPoint and skips its pre-promotion "
            "analysis",
        ),
        UpstreamIssue(
            1992,
            "scaleDownDelaySeconds: 0 keeps the previous ReplicaSet running instead of "
            "scaling it down at once",
        ),
        UpstreamIssue(
            4787,
            "a ReplicaSet carrying a scale-down deadline counts as a fast rollback: the preview "
            "of an aborted release, retried within abortScaleDownDelaySeconds, skips its pause "
            "and is promoted without a promote",
            fixed_in="v1.10.0",  # the pull request itself (isFastRollback: a rollback only)
        ),
        UpstreamIssue(
            2824,
            "a retry after a failed pre-promotion analysis is aborted again at once",
            not_reproduced="the retry starts a new AnalysisRun and the release goes on, on "
            "v1.9.3 and v1.10.2 alike, as the maintainers found in #841",
        ),
    )
}


def issue_for_marker(name: str) -> UpstreamIssue | None:
    """The issue a runbook tag names, ``None`` for a tag that is not an issue's; a tag in the
    issues' form whose number is not in ``ISSUES`` is an error naming the known ones."""
    if not name.startswith(MARKER_PREFIX):
        return None
    number = name.removeprefix(MARKER_PREFIX)
    if not number.isdigit() or int(number) not in ISSUES:
        known = ", ".join(f"@{issue.marker}" for issue in ISSUES.values())
        raise ConfigError(
            f"tag @{name} names no known upstream issue; known: {known} (harness/upstream.py)"
        )
    return ISSUES[int(number)]
