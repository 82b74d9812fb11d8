"""What the data does not support is never a pass: bad values, mismatched labels, too few
samples, regressions in part of the window, the same side twice, checks that cannot apply."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.checks import Condition, Direction, Side, parse_checks
from analysis.errors import ArgumentError, CheckError
from analysis.judge import (
    Classification,
    Phase,
    Verdict,
    assess_distribution,
    assess_quantile,
    assess_ratio,
    assess_volume,
    bucket_quantile,
    judge,
    smallest_p,
)
from analysis.prometheus import Series
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
RNG = np.random.default_rng(15)


def run(source: ScriptedSource, **overrides: dict[str, object]) -> Verdict:
    return judge(source, demo_checks(**overrides), preview=PREVIEW, active=ACTIVE, window=300,
                 end=END)


def latency(median: float, n: int = N) -> np.ndarray:
    return RNG.normal(median, median * 0.05, n)


def dist(preview: np.ndarray, active: np.ndarray, **condition: float):  # type: ignore[no-untyped-def]
    return assess_distribution(preview, active, condition=Condition(**condition), alpha=0.05,
                               expected=preview.size, min_coverage=0.8, unit="s")


@pytest.mark.parametrize(
    ("preview", "says"),
    [
        (np.where(np.arange(N) == 7, math.inf, 0.1), "non-finite values: preview is infinite at 1"),
        (np.where(np.arange(N) < 3, -0.2, 0.1), "impossible values: preview is negative at 3"),
        (np.full(N, 1e300), "overflow: preview reaches 1e+300"),
    ],
)
def test_bad_latency_values_are_nodata_with_the_reason(preview: np.ndarray, says: str) -> None:
    result = dist(preview, latency(0.1), max=0.5, max_increase=0.05)
    assert result.classification is Classification.NODATA
    assert result.reason.startswith(says)


def ratio(p_err: np.ndarray, p_tot: np.ndarray, a_err: np.ndarray | None = None,
          a_tot: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    return assess_ratio(p_err, p_tot, np.zeros(N) if a_err is None else a_err,
                        np.full(N, 10.0) if a_tot is None else a_tot,
                        condition=Condition(max=0.05, max_increase=0.005), alpha=0.05,
                        expected=N, min_coverage=0.8, min_total=50)


@pytest.mark.parametrize(
    ("errors", "total", "says"),
    [
        (np.full(N, math.nan), np.full(N, 10.0), "non-finite values: preview errors is NaN"),
        (np.full(N, math.inf), np.full(N, 10.0), "non-finite values: preview errors is infinite"),
        (np.full(N, -1.0), np.full(N, 10.0), "impossible values: preview errors is negative"),
        (np.zeros(N), np.full(N, -10.0), "impossible values: preview total is negative"),
        (np.zeros(N), np.full(N, 1e13), "overflow: preview total reaches 1e+13"),
        (np.full(N, 20.0), np.full(N, 10.0), "impossible values: preview has ~1220 errors"),
    ],
)
def test_bad_counts_are_nodata_never_zero_errors(errors: np.ndarray, total: np.ndarray,
                                                 says: str) -> None:
    result = ratio(errors, total)
    assert result.classification is Classification.NODATA
    assert result.reason.startswith(says)


def test_volume_refuses_negative_counts() -> None:
    result = assess_volume(np.full(N, -5.0), np.full(N, 10.0), condition=Condition(min=1),
                           expected=N, min_coverage=0.8)
    assert result.reason.startswith("impossible values: preview is negative")


def test_a_short_window_cannot_pass_a_twentyfold_regression() -> None:
    result = assess_distribution(latency(0.02, 3), latency(0.001, 3),
                                 condition=Condition(max=0.5, max_increase=0.005), alpha=0.05,
                                 expected=3, min_coverage=0.8)
    assert result.classification is Classification.NODATA
    assert result.reason == ("too few samples: preview has 3 and active 3 finite steps, needs 4 "
                             "per side")


def test_samples_that_cannot_reach_significance_are_nodata() -> None:
    assert smallest_p(3, 3) == pytest.approx(0.05)
    result = assess_distribution(latency(0.02, 3), latency(0.001, 3),
                                 condition=Condition(max_increase=0.005), alpha=0.05,
                                 expected=3, min_coverage=0.8, min_samples=2)
    assert result.classification is Classification.NODATA
    assert "smallest possible p is 0.05, not below alpha 0.05" in result.reason


def test_exact_test_detects_a_clear_shift_with_four_samples() -> None:
    result = assess_distribution(latency(0.02, 4), latency(0.001, 4),
                                 condition=Condition(max_increase=0.005), alpha=0.05,
                                 expected=4, min_coverage=0.8)
    assert result.classification is Classification.HIGH
    assert result.p_value == pytest.approx(1 / 70)


def test_regression_in_a_third_of_the_steps_above_max_is_high() -> None:
    preview = latency(0.1)
    preview[::3] = 0.9  # a third of the steps: the median does not move
    result = dist(preview, latency(0.1), max=0.5, max_increase=0.05)
    assert result.classification is Classification.HIGH
    assert result.reason == "21 of 61 steps (34%) above max 0.5s (at most 20% of steps)"


BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05)


def buckets(latencies: np.ndarray, bounds: tuple[float, ...] = BOUNDS) -> dict[float, np.ndarray]:
    """Cumulative bucket counts per step, from per-step latency samples (steps x requests)."""
    out = {le: (latencies <= le).sum(axis=1).astype(float) for le in bounds}
    out[math.inf] = np.full(latencies.shape[0], float(latencies.shape[1]))
    return out


def test_bucket_quantile_interpolates_as_histogram_quantile() -> None:
    bounds = np.array([0.1, 0.2, math.inf])
    cumulative = np.array([50.0, 100.0, 100.0])
    assert bucket_quantile(0.5, bounds, cumulative) == pytest.approx(0.1)
    assert bucket_quantile(0.75, bounds, cumulative) == pytest.approx(0.15)
    assert bucket_quantile(0.99, bounds, np.array([0.0, 0.0, 10.0])) == 0.2  # +Inf bucket


def test_tail_regression_in_thirty_percent_of_steps_fails_the_whole_window_quantile() -> None:
    active = RNG.lognormal(math.log(0.002), 0.4, (15, 200))
    preview = RNG.lognormal(math.log(0.002), 0.4, (15, 200))
    preview[:5] *= 4  # 5 of 15 steps four times slower, every one still under max
    per_step = np.percentile(preview, 95, axis=1)
    assert (per_step < 0.5).all()
    result = assess_quantile(buckets(preview), buckets(active), quantile=0.95,
                             condition=Condition(max=0.5, max_ratio=1.25), alpha=0.05,
                             min_total=50, unit="s")
    assert result.classification is Classification.HIGH
    assert result.reason.startswith("whole-window p95 ")
    assert result.ratio is not None and result.ratio > 1.25


def test_same_latency_passes_the_whole_window_quantile() -> None:
    same = RNG.lognormal(math.log(0.002), 0.4, (15, 200))
    result = assess_quantile(buckets(same), buckets(same.copy()), quantile=0.95,
                             condition=Condition(max=0.5, max_ratio=1.25), alpha=0.05,
                             min_total=50, unit="s")
    assert result.classification is Classification.PASS
    assert result.ratio == pytest.approx(1.0)


def test_quantile_without_an_inf_bucket_or_with_other_bounds_is_nodata() -> None:
    steps = RNG.lognormal(math.log(0.002), 0.4, (15, 200))
    no_inf = {k: v for k, v in buckets(steps).items() if not math.isinf(k)}
    result = assess_quantile(no_inf, buckets(steps), quantile=0.95, condition=Condition(max=1),
                             alpha=0.05, min_total=50)
    assert result.reason.startswith("preview has no +Inf bucket")
    other = buckets(steps, (0.001, 0.01))
    result = assess_quantile(other, buckets(steps), quantile=0.95, condition=Condition(max=1),
                             alpha=0.05, min_total=50)
    assert result.reason.startswith("bucket boundaries differ between sides")


def test_direction_decrease_ignores_an_increase() -> None:
    result = assess_distribution(latency(0.3), latency(0.1),
                                 condition=Condition(max_increase=0.05, max_decrease=0.05),
                                 direction=Direction.DECREASE, alpha=0.05, expected=N,
                                 min_coverage=0.8)
    assert result.classification is Classification.PASS


def test_significant_but_within_the_allowed_ratio_passes() -> None:
    result = dist(latency(0.11), latency(0.1), max_ratio=1.2)
    assert result.classification is Classification.PASS
    assert result.p_value is not None and result.p_value < 0.05
    assert result.ratio == pytest.approx(1.1, abs=0.02)


def test_errors_labelled_apart_from_totals_are_a_label_mismatch() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        if "err{" in query and 'version="1.1.0"' in query:
            return [series(grid, 3.0, service="service-b", code="500")]  # 30 % failing
        return side_metrics(HEALTHY, HEALTHY)(query, grid)

    errors = run(ScriptedSource(answer)).measurements[0]
    assert errors.phase is Phase.INCONCLUSIVE
    assert errors.message.startswith(
        'label mismatch: preview errors have {code="500",service="service-b"} but its totals '
        'have {service="service-b"}')


def test_statistics_run_inside_a_guard() -> None:
    def answer(query: str, grid: np.ndarray) -> Answer:
        # Timestamps and values of different lengths: no Prometheus sends this, and still no
        # traceback may come of it.
        return [Series({"service": "service-b"}, grid, np.ones(3))]

    verdict = run(ScriptedSource(answer))
    assert verdict.phase is Phase.INCONCLUSIVE
    assert "statistics could not be computed on this data (IndexError" in verdict.message


def test_the_same_side_twice_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError, match=r'preview and active are the same \(version="1.1.0"\)'):
        judge(ScriptedSource(side_metrics(HEALTHY, HEALTHY)), demo_checks(), preview=PREVIEW,
              active=Side.parse("active", "1.1.0"), window=300, end=END)


def test_a_check_that_cannot_apply_to_the_service_is_left_out_and_said_so() -> None:
    source = ScriptedSource(side_metrics({**HEALTHY, "lat": latency(0.1)},
                                         {**HEALTHY, "lat": latency(0.1)}))
    verdict = judge(source, demo_checks(volume={"services": ["gateway-a"]}), preview=PREVIEW,
                    active=ACTIVE, window=300, end=END, service="service-b")
    assert [m.check.name for m in verdict.measurements] == ["errors", "latency"]
    assert verdict.skipped == (
        "volume: does not apply to service 'service-b' (applies to gateway-a)",)
    assert verdict.phase is Phase.SUCCESSFUL


def test_must_have_data_makes_missing_data_a_failure() -> None:
    verdict = run(ScriptedSource(side_metrics({"err": 0.0, "tot": 10.0}, HEALTHY)),
                  latency={"must_have_data": True})
    assert verdict.measurements[1].phase is Phase.FAILED


def test_group_weights_combine_group_scores() -> None:
    checks = demo_checks(errors={"group": "errors", "critical": False},
                         latency={"group": "latency"}, volume={"group": "latency"})
    checks = checks.model_copy(update={"groups": {"errors": 3.0, "latency": 1.0}})
    verdict = judge(ScriptedSource(side_metrics({**HEALTHY, "err": 1.0}, HEALTHY)), checks,
                    preview=PREVIEW, active=ACTIVE, window=300, end=END)
    assert verdict.score == pytest.approx(1 / 4)  # errors group 0 (x3), latency group 1 (x1)


def test_overlapping_samples_and_unweighted_groups_are_refused() -> None:
    base = {"checks": [{"name": "c", "kind": "volume", "query": "x{ {selector} }",
                        "condition": {"min": 1}, "group": "g"}]}
    with pytest.raises(CheckError, match="step 5s is shorter than rate_window 1m: samples "
                                         "would overlap"):
        parse_checks({**base, "step": "5s", "rate_window": "1m"})
    with pytest.raises(CheckError, match="check group 'g' has no weight in `groups`"):
        parse_checks({**base, "groups": {"other": 1}})
