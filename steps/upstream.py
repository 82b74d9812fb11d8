"""The ``@upstream`` runbooks: a strict expected failure where the controller has the bug.

A runbook tagged ``@upstream`` and ``@argo_rollouts_<number>`` replays that upstream issue
(harness/upstream.py says what it is and where it was fixed). On a controller release that still
has the bug the scenario is ``xfail(strict=True)`` with the issue as reason: it must fail, by an
assertion, a wait that timed out or a wait that saw the Rollout go Degraded, and a pass is
reported as a failure ("XPASS(strict)"), so the suite says when upstream fixed it. On a release
with the fix it must simply pass, and so must the runbook of an issue not reproduced here
(``not_reproduced`` in harness/upstream.py).

The release under test is ``--bgh-rollouts-version`` (``bgh run --rollouts-version``), else
``BGH_ROLLOUTS_VERSION``, else the pinned one: the controller the local target runs.
"""

from __future__ import annotations

import pytest

from harness.errors import HarnessError, RolloutFailed, WaitTimeout
from harness.settings import load_settings
from harness.upstream import ISSUES, issue_for_marker

# What a replayed bug may fail with: a Then that compared two values, a wait that never saw the
# expected state, or one that saw the Rollout go Degraded instead. Anything else (a runbook that
# cannot even deploy, a broken step) fails plainly.
EXPECTED_FAILURES = (AssertionError, WaitTimeout, RolloutFailed)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("bgh").addoption(
        "--bgh-rollouts-version",
        default=None,
        help="the Argo Rollouts release the local target runs (default: BGH_ROLLOUTS_VERSION, "
        "else the pinned one); decides which @upstream runbooks are expected to fail",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "upstream: replays an upstream Argo Rollouts issue (harness/upstream.py)"
    )
    for issue in ISSUES.values():
        config.addinivalue_line("markers", f"{issue.marker}: {issue.url}")


def controller_version(config: pytest.Config) -> str:
    """The Argo Rollouts release the runbooks run against."""
    try:
        return load_settings(
            rollouts_version=config.getoption("bgh_rollouts_version")
        ).rollouts_version
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from exc


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    version: str | None = None
    for item in items:
        for mark in item.iter_markers():
            try:
                issue = issue_for_marker(mark.name)
            except HarnessError as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc}") from exc
            if issue is None:
                continue
            version = version or controller_version(config)
            if issue.fails_on(version):
                item.add_marker(
                    pytest.mark.xfail(
                        strict=True, raises=EXPECTED_FAILURES, reason=issue.reason(version)
                    )
                )
