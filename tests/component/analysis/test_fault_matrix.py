"""The fault matrix: every way the data can be missing or wrong, none of them judged Successful.

Each case asks a web provider on loopback, exactly as an AnalysisRun would, and checks three
things: the answer is JSON (Argo counts a non-JSON body as Successful), its phase is the one
expected (never Successful but for the positive controls, whose ids start with "control"), and
its message says why. Prometheus is the session's real one, which produces NaN, infinite,
negative and overflowing values and mismatched labels through PromQL arithmetic, except where it
must misbehave on demand (down, hanging, 500, HTML, a value that is not a number, a regression in
a third of the window): those are real loopback peers answering recorded bodies, see
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
DEFAULTS = "error-rate,p95-latency,p95-latency-window,upstream-error-rate,request-volume"


@dataclass(frozen=True)
class Case:
    id: str
    prometheus: str  # which provider: "real", "down", "hang", "500", "not-json"
    params: dict[str, str]
    status: int
    phase: str
    says: str  # a fragment the message must contain


BASE = {"preview": "1.1.0", "active": "1.0.0"}
ERRORS = {"preview": "1.2.0", "active": "1.0.0"}  # B fails 30 % of requests
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
    # The counters start at zero, so an idle version has series: all zeros.
    Case("zero traffic", "real", {"preview": "1.5.0", "active": "1.0.0", "checks": DEFAULTS},
         200, "Inconclusive", "too little traffic: preview answered ~0 requests"),
    Case("too little traffic", "real", {"preview": "1.4.0", "active": "1.0.0",
                                        "checks": DEFAULTS}, 200, "Inconclusive",
         "too little traffic"),
    Case("window of nothing", "real", {**BASE, "window": "0s"}, 400, "Error",
         "must be longer than zero"),
    Case("negative values", "real", {**BASE, "checks": "negative-value"}, 200, "Inconclusive",
         "impossible values: preview is negative"),
    Case("overflow", "real", {**BASE, "checks": "overflow"}, 200, "Inconclusive",
         "overflow: preview reaches"),
    Case("NaN error rate", "real", {**ERRORS, "checks": "nan-errors"}, 200, "Inconclusive",
         "non-finite values: preview errors is NaN"),
    Case("+Inf error rate", "real", {**ERRORS, "checks": "inf-errors"}, 200, "Inconclusive",
         "non-finite values: preview errors is infinite"),
    Case("errors labelled apart from the totals", "real", {**ERRORS, "checks": "errors-by-code"},
         200, "Inconclusive", "label mismatch: preview errors have"),
    Case("negative request counts", "real", {**BASE, "checks": "negative-total"}, 200,
         "Inconclusive", "impossible values: preview total is negative"),
    Case("more errors than requests", "real", {**BASE, "checks": "errors-beyond-total"}, 200,
         "Inconclusive", "errors must be a subset of the total"),
    Case("buckets without le", "real", {**BASE, "checks": "quantile-without-le"}, 200,
         "Inconclusive", "must keep the `le` label"),
    Case("missing data that must be there", "real", {**BASE, "checks": "must-have-data"}, 200,
         "Failed", "failed: must-have-data"),
    Case("the same side twice", "real", {"preview": "1.1.0", "active": "1.1.0"}, 400, "Error",
         'preview and active are the same (version="1.1.0")'),
    Case("window beyond the maximum", "real", {**BASE, "window": "2h"}, 400, "Error",
         "longer than this provider's maximum 1h"),
    Case("a short window cannot pass a slow preview", "real",
         {"preview": "1.3.0", "active": "1.0.0", "window": "8s", "checks": "p95-latency"}, 200,
         "Inconclusive", "too few samples: preview has 3 and active 3 finite steps"),
    Case("a check that cannot apply to the service", "real",
         {**BASE, "service": "service-b", "checks": "upstream-error-rate"}, 400, "Error",
         "applies to service 'service-b'"),
    Case("value that is not a number", "not-a-number", {**BASE, "checks": "request-volume"}, 503,
         "Error", "not [time, value] pairs"),
    Case("latency regression in a third of the window", "tail",
         {**BASE, "service": "service-b", "checks": "p95-latency-window"}, 200, "Failed",
         "whole-window p95"),
    Case("control: healthy preview", "real", {**BASE, "checks": DEFAULTS}, 200, "Successful",
         "all 5 checks passed"),
    Case("control: preview failing 30% of requests", "real", {**ERRORS, "checks": DEFAULTS}, 200,
         "Failed", 'critical check "error-rate" is Failed'),
    Case("control: preview answering 300 ms late", "real",
         {"preview": "1.3.0", "active": "1.0.0", "checks": DEFAULTS}, 200, "Failed",
         "p95-latency"),
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


def test_the_matrix_has_thirty_faults_and_only_controls_succeed() -> None:
    faults = [c for c in CASES if not c.id.startswith("control")]
    assert len(faults) >= 30
    assert all(c.phase != "Successful" for c in faults)


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
