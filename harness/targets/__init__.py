"""The cluster targets (``local``, embedded with no Docker; ``kind``; ``existing``) and the one
place that picks one: ``target_for(settings)``."""

from __future__ import annotations

from collections.abc import Callable

from harness.settings import Settings
from harness.target import Target
from harness.targets.existing import ExistingTarget
from harness.targets.kind import KindTarget
from harness.targets.local import LocalTarget


def target_for(
    settings: Settings, *, report: Callable[[str], None] = lambda _line: None
) -> Target:
    """The target ``settings.target`` names; the only reader of that setting."""
    if settings.target == "local":
        return LocalTarget(settings, report=report)
    if settings.target == "kind":
        return KindTarget(settings, report=report)
    return ExistingTarget(settings)
