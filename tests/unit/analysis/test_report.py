"""Reports of a scripted verdict: text order, JSON safety, JUnit, self-contained HTML."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from analysis.checks import Side
from analysis.errors import QueryError
from analysis.judge import Verdict, judge
from analysis.report import (
    ACTIVE_COLOUR,
    PREVIEW_COLOUR,
    as_dict,
    html_report,
    junit,
    text,
    to_json,
)
from tests.unit.analysis.scripted import (
    END,
    HEALTHY,
    Answer,
    N,
    ScriptedSource,
    demo_checks,
    side_metrics,
)

NOISY = np.random.default_rng(3).normal(0.1, 0.005, N)


def verdict_with(answer: object) -> Verdict:
    return judge(ScriptedSource(answer), demo_checks(),  # type: ignore[arg-type]
                 preview=Side.parse("preview", "1.1.0"), active=Side.parse("active", "1.0.0"),
                 window=300, end=END)


@pytest.fixture
def failed() -> Verdict:
    return verdict_with(side_metrics({**HEALTHY, "err": 1.0, "lat": NOISY + 0.3},
                                     {**HEALTHY, "lat": NOISY}))


@pytest.fixture
def odd() -> Verdict:
    """Preview latency is NaN at every step: nothing finite to report for it."""
    return verdict_with(side_metrics({**HEALTHY, "lat": math.nan}, {**HEALTHY, "lat": NOISY}))


def test_text_puts_the_verdict_first_then_one_line_per_check(failed: Verdict) -> None:
    lines = text(failed).splitlines()
    assert lines[0].startswith("Failed  score 0.17 (pass >= 0.95, marginal >= 0.75)  preview "
                               'version="1.1.0" vs active version="1.0.0"  window 5m ending ')
    assert lines[1].startswith('  critical check "errors" is Failed')
    assert [line.split()[:2] for line in lines[2:]] == [
        ["Failed", "errors"], ["Failed", "latency"], ["Successful", "volume"]]
    errors = lines[2]
    assert "0.1 vs 0  effect +0.1" in errors and "[max 0.05]" in errors
    assert errors.endswith('(sum by (service) (err{ version="1.1.0" })) / '
                           '(sum by (service) (tot{ version="1.1.0" }))')
    assert "[max 0.5s, at most +0.05s over active]" in lines[3]


def test_text_shows_the_reason_for_a_check_without_values() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        if "lat{" in query:
            return QueryError("Prometheus at http://p did not answer within 2s; query: q")
        return side_metrics(HEALTHY, HEALTHY)(query, grid)

    line = text(verdict_with(answer)).splitlines()[3]
    assert line.startswith("Error        latency  Prometheus at http://p did not answer")


def test_json_never_contains_nan_or_infinity(odd: Verdict) -> None:
    def refuse(constant: str) -> object:
        raise AssertionError(f"{constant} in the JSON")

    decoded = json.loads(to_json(as_dict(odd)), parse_constant=refuse)
    assert decoded["phase"] == "Inconclusive"
    assert [c["phase"] for c in decoded["checks"]] == ["Successful", "Inconclusive", "Successful"]


def test_to_json_refuses_a_stray_nan() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        to_json({"score": math.nan})


def test_json_carries_values_thresholds_and_queries(failed: Verdict) -> None:
    data = json.loads(to_json(as_dict(failed)))
    assert data["preview"] == {"label": "version", "value": "1.1.0"}
    assert data["thresholds"] == {"pass": 0.95, "marginal": 0.75}
    latency = data["checks"][1]
    assert latency["classification"] == "High" and latency["effect"] == pytest.approx(0.3, abs=0.01)
    assert latency["queries"]["active"] == {"query": 'sum by (service) (lat{ version="1.0.0" })'}
    assert latency["series"][0]["labels"] == {"service": "service-b"}


def test_junit_has_a_case_per_check_and_counts_inconclusive_as_failure(odd: Verdict) -> None:
    root = ET.fromstring(junit(odd))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    latency = next(c for c in suite.iter("testcase") if c.get("name") == "latency")
    failure = latency.find("failure")
    assert failure is not None and failure.get("type") == "Inconclusive"
    assert "never a pass" in (failure.get("message") or "")


def test_html_is_self_contained_with_both_sides_charted(failed: Verdict) -> None:
    page = html_report(failed)
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<h1>Failed</h1>" in page
    assert page.count('class="series series-preview"') == 3
    assert page.count('class="series series-active"') == 3
    assert PREVIEW_COLOUR in page and ACTIVE_COLOUR in page
    assert page.count('class="threshold"') == 2  # error ratio and latency have a max
    # What failed is drawn before what passed.
    assert page.index('id="check-latency"') < page.index('id="check-volume"')


def test_html_escapes_queries_and_leaves_gaps_for_nan(odd: Verdict) -> None:
    page = html_report(odd)
    assert 'version=&quot;1.1.0&quot;' in page and 'version="1.1.0" }' not in page
    assert "no data to draw" not in page  # active latency is still drawn
    assert page.count('class="series series-preview"') == 2
    assert page.count('class="series series-active"') == 3


def test_every_report_lists_the_checks_left_out_for_the_service() -> None:
    source = ScriptedSource(side_metrics({**HEALTHY, "lat": NOISY}, {**HEALTHY, "lat": NOISY}))
    verdict = judge(source, demo_checks(volume={"services": ["gateway-a"]}),
                    preview=Side.parse("preview", "1.1.0"), active=Side.parse("active", "1.0.0"),
                    window=300, end=END, service="service-b")
    reason = "volume: does not apply to service 'service-b' (applies to gateway-a)"
    assert text(verdict).rstrip().splitlines()[-1] == f"Skipped      {reason}"
    assert as_dict(verdict)["skipped"] == [reason]
    suite = ET.fromstring(junit(verdict).split("\n", 1)[1]).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("skipped")) == ("3", "1")
    skipped = suite.find("testcase[@name='volume']/skipped")
    assert skipped is not None and skipped.get("message") == (
        "does not apply to service 'service-b' (applies to gateway-a)")
    assert "<td>volume</td>" in html_report(verdict)
