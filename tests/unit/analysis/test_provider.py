"""The web provider's routing and argument checks, over a scripted Prometheus (no sockets)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import QueryError
from analysis.server import WebProvider
from tests.unit.analysis.scripted import HEALTHY, Answer, ScriptedSource, demo_checks, side_metrics


def provider(answer: object = None) -> WebProvider:
    source = ScriptedSource(answer or side_metrics(HEALTHY, HEALTHY))  # type: ignore[arg-type]
    return WebProvider(source, demo_checks(), default_window=300)


def test_judged_result_is_200_with_the_phase_at_the_top() -> None:
    status, body = provider().answer("/judge", "preview=1.1.0&active=1.0.0")
    assert status == 200
    assert body["phase"] == "Successful"
    assert body["window"] == "5m"


def test_unmeasurable_is_503_with_the_verdict() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        return QueryError("Prometheus at http://p is unreachable (connection refused)")

    status, body = provider(answer).answer("/judge", "preview=1.1.0&active=1.0.0")
    assert (status, body["phase"]) == (503, "Error")
    assert "unreachable" in body["message"] and len(body["checks"]) == 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("active=1.0.0", "parameter 'preview' is required"),
        ("preview=&active=1.0.0", "parameter 'preview' is required"),
        ("preview=1.1.0&active=1.0.0&colour=red", "unknown parameter 'colour'"),
        ("preview=1.1.0&preview=1.2.0&active=1.0.0", "parameter 'preview' is given more than once"),
        ("preview=1.1.0&active=1.0.0&window=forever", "window 'forever' is not a duration"),
        ("preview=1.1.0&active=1.0.0&window=2d", "longer than 24h"),
        ("preview=1.1.0&active=1.0.0&checks=errors,nope", "unknown check 'nope'"),
        ("preview=1.1.0%22%7D&active=1.0.0", "is not a label value"),
        ("preview=1.1.0&active=1.0.0&service=a%0Ab", "service 'a\\nb' is not a label value"),
        ("preview", "is malformed"),
    ],
)
def test_bad_arguments_are_400_with_a_reason(query: str, message: str) -> None:
    status, body = provider().answer("/judge", query)
    assert (status, body["phase"]) == (400, "Error")
    assert message in body["message"]


def test_checks_parameter_selects_checks() -> None:
    status, body = provider().answer("/judge", "preview=1.1.0&active=1.0.0&checks=errors,volume")
    assert (status, body["phase"]) == (200, "Successful")
    assert [c["name"] for c in body["checks"]] == ["errors", "volume"]


def test_health_and_unknown_paths() -> None:
    assert provider().answer("/healthz", "") == (200, {"status": "ok"})
    status, body = provider().answer("/", "")
    assert (status, body["phase"]) == (404, "Error")
