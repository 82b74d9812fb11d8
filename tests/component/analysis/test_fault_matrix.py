"""The fault matrix: every way the data can be missing or wrong, none of them judged Successful.

Each case asks a web provider on loopback, exactly as an AnalysisRun would, and checks three
things: the answer is JSON (Argo counts a non-JSON body as Successful), its phase is not
Successful, and its message says why. Prometheus is the session's real one except where it must
misbehave on demand (down, hanging, 500, HTML): those are real loopback peers, see
``broken_prometheus``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from analysis.checks import Side, escape_label_value, resolve_query
from analysis.prometheus import Prometheus
from tests.component.analysis.conftest import RATE_WINDOW, System

HOSTILE = '1.1.0"} or vector(1) or up{job="'
DEFAULTS = "error-rate,p95-latency,upstream-error-rate,request-volume"


@dataclass(frozen=True)
class Case:
    id: str
    prometheus: str  # which provider: "real", "down", "hang", "500", "not-json"
    params: dict[str, str]
    status: int
    phase: str
    says: str  # a fragment the message must contain


BASE = {"preview": "1.1.0", "active": "1.0.0"}
CASES = [
    Case("prometheus down", "down", {**BASE, "checks": "error-rate"}, 503, "Error",
         "is unreachable (connection refused)"),
    Case("prometheus slower than the timeout", "hang", {**BASE, "checks": "error-rate"}, 503,
         "Error", "did not answer within 2s"),
    Case("prometheus answers 5xx", "500", {**BASE, "checks": "error-rate"}, 503, "Error",
         "HTTP 500"),
    Case("prometheus answers HTML", "not-json", {**BASE, "checks": "error-rate"}, 503, "Error",
         "not with a Prometheus API body"),
    Case("malformed query", "real", {**BASE, "checks": "malformed"}, 503, "Error",
         "HTTP 400 bad_data"),
    Case("empty vector", "real", {**BASE, "checks": "empty"}, 200, "Inconclusive",
         'no series for preview version="1.1.0"'),
    Case("NaN", "real", {**BASE, "checks": "nan-value"}, 200, "Inconclusive", "NaN"),
    Case("+Inf", "real", {**BASE, "checks": "inf-value"}, 200, "Inconclusive", "+Inf"),
    Case("one side missing", "real", {"preview": "1.1.0", "active": "0.9.9",
                                      "checks": "error-rate"}, 200, "Inconclusive",
         'no series for active version="0.9.9"'),
    Case("label mismatch between sides", "real", {**BASE, "checks": "by-version"}, 200,
         "Inconclusive", "label mismatch between sides"),
    Case("partial window", "real", {**BASE, "window": "10m", "checks": DEFAULTS}, 200,
         "Inconclusive",
         "partial window"),
    Case("hostile label value", "real", {"preview": HOSTILE, "active": "1.0.0"}, 400, "Error",
         "is not a label value"),
    Case("hostile service", "real", {**BASE, "service": 'b",x="'}, 400, "Error",
         "is not a label value"),
    Case("zero traffic", "real", {"preview": "1.5.0", "active": "1.0.0", "checks": DEFAULTS},
         200, "Inconclusive", "no series for preview"),
    Case("too little traffic", "real", {"preview": "1.4.0", "active": "1.0.0",
                                        "checks": DEFAULTS}, 200, "Inconclusive",
         "too little traffic"),
    Case("window of nothing", "real", {**BASE, "window": "0s"}, 400, "Error",
         "must be longer than zero"),
]


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"the answer contains {constant}, which Go's JSON parser rejects")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_no_fault_is_judged_successful(case: Case, providers: dict[str, str]) -> None:
    response = httpx.get(f"{providers[case.prometheus]}/judge", params=case.params, timeout=30)
    assert response.headers["content-type"] == "application/json"
    body = strict_json(response.text)
    assert (response.status_code, body["phase"]) == (case.status, case.phase), body["message"]
    assert case.says in body["message"]


def test_the_matrix_has_at_least_twelve_cases() -> None:
    assert len(CASES) >= 12


def test_an_escaped_hostile_value_stays_a_label_value(system: System) -> None:
    """Even past validation, escaping keeps a hostile value inside its string literal.

    The query goes to the real Prometheus: unescaped it would be ``... or vector(1)``, which
    answers 1; escaped it asks for a version literally called ``1.1.0"} or vector(1) ...``.
    """
    side = Side("preview", "version", HOSTILE)  # built directly: Side.parse would refuse it
    query = resolve_query("sum(bgh_no_such_metric{ {selector} })", side, service=None,
                          rate_window=RATE_WINDOW, check="hostile")
    assert escape_label_value(HOSTILE) in query
    with Prometheus(system.prometheus_url, timeout=5) as prometheus:
        assert prometheus.query(query) == []
        unescaped = "sum(bgh_no_such_metric{" + f'version="{HOSTILE}"' + "})"
        assert prometheus.query(unescaped)[0].values[0] == 1.0  # what escaping prevents
