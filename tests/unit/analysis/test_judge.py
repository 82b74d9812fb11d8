"""The judge end to end over scripted series: pairing, phases, weights, errors, arguments."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.checks import Side
from analysis.errors import ArgumentError, QueryError
from analysis.judge import Classification, Phase, Verdict, judge
from tests.unit.analysis.scripted import (
    END,
    HEALTHY,
    Answer,
    N,
    ScriptedSource,
    demo_checks,
    series,
    side_metrics,
)

PREVIEW, ACTIVE = Side.parse("preview", "1.1.0"), Side.parse("active", "1.0.0")
NOISY = np.random.default_rng(7).normal(0.1, 0.005, N)


def run(source: ScriptedSource, **overrides: dict[str, object]) -> Verdict:
    return judge(source, demo_checks(**overrides), preview=PREVIEW, active=ACTIVE, window=300,
                 end=END + 0.7)


def phases(verdict: Verdict) -> dict[str, str]:
    return {m.check.name: str(m.phase) for m in verdict.measurements}


def test_healthy_preview_is_successful_with_every_query_resolved() -> None:
    source = ScriptedSource(
        side_metrics({**HEALTHY, "lat": NOISY}, {**HEALTHY, "lat": NOISY[::-1]})
    )
    verdict = run(source)
    assert verdict.phase is Phase.SUCCESSFUL and verdict.score == 1.0
    assert verdict.message == "all 3 checks passed"
    errors = verdict.measurements[0]
    assert errors.queries["preview"]["errors"] == 'sum by (service) (err{ version="1.1.0" })'
    assert errors.queries["active"]["total"] == 'sum by (service) (tot{ version="1.0.0" })'


def test_window_is_whole_seconds_ending_at_end_and_queried_once() -> None:
    source = ScriptedSource(side_metrics(HEALTHY, HEALTHY))
    verdict = run(source)
    assert (verdict.start, verdict.end) == (END - 300, END)
    assert len(source.asked) == 1  # every query in one concurrent batch
    queries, start, end, step = source.asked[0]
    assert (start, end, step) == (END - 300, END, 5.0) and len(queries) == 2 * (2 + 1 + 1)


def test_critical_check_failing_is_failed_whatever_the_score() -> None:
    verdict = run(ScriptedSource(side_metrics({**HEALTHY, "err": 1.0}, HEALTHY)))
    assert verdict.phase is Phase.FAILED
    assert verdict.message.startswith('critical check "errors" is Failed: {service="service-b"}: '
                                      "ratio 0.1 > max 0.05")


def test_non_critical_failure_below_marginal_is_failed() -> None:
    verdict = run(ScriptedSource(side_metrics({**HEALTHY, "lat": 0.9}, HEALTHY)))
    assert phases(verdict)["latency"] == "Failed"
    assert verdict.score == pytest.approx(4 / 6)
    assert verdict.phase is Phase.FAILED and "below the marginal threshold 0.75" in verdict.message


def test_non_critical_failure_between_thresholds_is_inconclusive() -> None:
    verdict = run(ScriptedSource(side_metrics({**HEALTHY, "lat": 0.9}, HEALTHY)),
                  latency={"weight": 1})
    assert verdict.score == pytest.approx(0.8)
    assert verdict.phase is Phase.INCONCLUSIVE
    assert "between marginal 0.75 and pass 0.95; failed: latency" in verdict.message


def test_missing_data_is_inconclusive_and_never_scores() -> None:
    preview = {"err": 0.0, "tot": 10.0}  # no latency series at all
    verdict = run(ScriptedSource(side_metrics(preview, {**HEALTHY, "lat": NOISY})))
    latency = verdict.measurements[1]
    assert (latency.phase, latency.classification) == (Phase.INCONCLUSIVE, Classification.NODATA)
    assert latency.message == ('no series for preview version="1.1.0" (the query returned an '
                               "empty result); missing data is never a pass")
    assert verdict.score == 1.0  # the judged checks all passed...
    assert verdict.phase is Phase.INCONCLUSIVE  # ...but missing data is never a pass


def test_missing_data_can_be_declared_a_failure() -> None:
    verdict = run(ScriptedSource(side_metrics({"err": 0.0, "tot": 10.0}, HEALTHY)),
                  latency={"missing": "failed", "critical": True})
    assert verdict.phase is Phase.FAILED
    assert verdict.message.startswith('critical check "latency" is Failed: no series for preview')


def test_nothing_judged_is_inconclusive_without_a_score() -> None:
    verdict = run(ScriptedSource(side_metrics({}, HEALTHY)))
    assert (verdict.phase, verdict.score) == (Phase.INCONCLUSIVE, None)
    assert verdict.message.startswith('no check could be judged; "errors" is Inconclusive')


def test_a_query_error_is_an_error_measurement_not_an_exception() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        if "lat{" in query:
            return QueryError("Prometheus at http://p:9090 did not answer within 2s")
        return side_metrics(HEALTHY, HEALTHY)(query, grid)

    verdict = run(ScriptedSource(answer))
    assert phases(verdict) == {"errors": "Successful", "latency": "Error", "volume": "Successful"}
    assert verdict.phase is Phase.ERROR
    assert verdict.message == ('check "latency" could not be measured: Prometheus at '
                               "http://p:9090 did not answer within 2s")


def test_a_critical_failure_outranks_an_error() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        if "lat{" in query:
            return QueryError("down")
        return side_metrics({**HEALTHY, "err": 5.0}, HEALTHY)(query, grid)

    assert run(ScriptedSource(answer)).phase is Phase.FAILED


def test_series_pair_by_labels_and_the_worst_pair_decides() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        preview = 'version="1.1.0"' in query
        if "lat{" in query:
            return [series(grid, NOISY, service="a"), series(grid, NOISY + (0.3 if preview else 0),
                                                           service="b")]
        return side_metrics(HEALTHY, HEALTHY)(query, grid)

    latency = run(ScriptedSource(answer)).measurements[1]
    assert [c.labels for c in latency.comparisons] == ['{service="a"}', '{service="b"}']
    assert [c.assessment.classification for c in latency.comparisons] == [
        Classification.PASS, Classification.HIGH]
    assert latency.message.startswith('{service="b"}: +0.3') and latency.message.endswith(
        "(worst of 2 series)")


def test_preview_series_without_an_active_partner_is_nodata() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        preview = 'version="1.1.0"' in query
        labels = [{"service": "a"}, {"service": "b"}] if preview else [{"service": "a"}]
        value = 0.0 if "err" in query else (10.0 if "tot" in query else 0.1)
        return [series(grid, value, **lab) for lab in labels]

    volume = run(ScriptedSource(answer)).measurements[2]
    assert volume.phase is Phase.INCONCLUSIVE
    assert 'no active series with labels {service="b"}' in volume.message


def test_sides_with_no_label_in_common_is_a_label_mismatch() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        version = "1.1.0" if 'version="1.1.0"' in query else "1.0.0"
        return [series(grid, 10.0, version=version)]

    volume = run(ScriptedSource(answer)).measurements[2]
    assert volume.message.startswith(
        'label mismatch between sides: preview has {version="1.1.0"}; active has '
        '{version="1.0.0"}')


def test_partial_window_is_nodata() -> None:
    late = np.full(N, np.nan)
    late[-20:] = 10.0
    verdict = run(ScriptedSource(side_metrics({**HEALTHY, "tot": late}, HEALTHY)))
    assert "partial window: preview has a finite value at 20 of 61 steps" in verdict.message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 9.0}, "window 9s is shorter than two steps of 5s"),
        ({"service": 'b"} or vector(1)'}, "service 'b\"} or vector(1)' is not a label value"),
    ],
)
def test_bad_arguments_raise_before_any_query(kwargs: dict[str, object], message: str) -> None:
    source = ScriptedSource(side_metrics(HEALTHY, HEALTHY))
    args: dict[str, object] = {"window": 300.0, **kwargs}
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        judge(source, demo_checks(), preview=PREVIEW, active=ACTIVE, end=END,
              **args)  # type: ignore[arg-type]
    assert source.asked == []


def test_service_argument_goes_into_the_selector() -> None:
    source = ScriptedSource(side_metrics(HEALTHY, HEALTHY))
    judge(source, demo_checks(), preview=PREVIEW, active=ACTIVE, window=300, service="service-b",
          end=END)
    assert 'tot{ service="service-b",version="1.1.0" }' in " ".join(source.asked[0][0])
