"""The web provider's routing and argument checks, over a scripted Prometheus (no sockets)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from analysis.errors import QueryError
from analysis.report import to_json
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
        ("preview=1.1.0&active=1.0.0&window=2d", "longer than this provider's maximum 1h"),
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


def test_a_window_beyond_the_maximum_is_400_naming_it() -> None:
    p = WebProvider(ScriptedSource(side_metrics(HEALTHY, HEALTHY)), demo_checks(),
                    default_window=300, max_window=600)
    status, body = p.answer("/judge", "preview=1.1.0&active=1.0.0&window=11m")
    assert (status, body["phase"]) == (400, "Error")
    assert body["message"] == ("window 11m is longer than this provider's maximum 10m "
                               "(--max-window); want e.g. 5m")


def test_beyond_the_concurrency_cap_is_503_busy() -> None:
    entered, release = threading.Event(), threading.Event()

    def answer(query: str, grid: np.ndarray) -> Answer:
        entered.set()
        release.wait(10)  # held open by the test: the one judgement in progress
        return side_metrics(HEALTHY, HEALTHY)(query, grid)

    p = WebProvider(ScriptedSource(answer), demo_checks(), default_window=300, max_concurrent=1)
    first = threading.Thread(target=p.answer, args=("/judge", "preview=1.1.0&active=1.0.0"))
    first.start()
    assert entered.wait(10)
    status, body = p.answer("/judge", "preview=1.1.0&active=1.0.0")
    release.set()
    first.join(10)
    assert (status, body["phase"]) == (503, "Error")
    assert body["message"].startswith("busy: 1 judgements are already running")
    assert p.answer("/judge", "preview=1.1.0&active=1.0.0")[0] == 200  # the slot is free again


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 1e300])
def test_bad_data_is_a_json_phase_never_a_500(value: float) -> None:
    status, body = provider(side_metrics({**HEALTHY, "err": value}, HEALTHY)).answer(
        "/judge", "preview=1.1.0&active=1.0.0")
    assert status == 200 and body["phase"] == "Inconclusive"
    to_json(body)  # raises on NaN or Infinity


def test_the_same_side_twice_is_400() -> None:
    status, body = provider().answer("/judge", "preview=1.1.0&active=1.1.0")
    assert status == 400 and "preview and active are the same" in body["message"]
