"""Go durations as the Rollouts CRDs write them (an AnalysisRun's ``initialDelay``)."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.rollouts import go_duration_seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("120s", 120.0), ("2m", 120.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("0s", 0.0)],
)
def test_a_go_duration_in_seconds(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2", "two minutes", "2m junk", "-1s"])
def test_anything_else_is_refused_naming_what_was_expected(text: str) -> None:
    with pytest.raises(ConfigError, match="expected a Go duration"):
        go_duration_seconds(text)
