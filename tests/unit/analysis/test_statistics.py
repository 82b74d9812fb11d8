"""The statistics on plain arrays: outliers, Mann-Whitney with Hodges-Lehmann, Fisher, volume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.checks import Condition
from analysis.judge import (
    Classification,
    assess_distribution,
    assess_ratio,
    assess_volume,
    describe_missing,
    drop_outliers,
    hodges_lehmann,
)

RNG = np.random.default_rng(20240501)
N = 61  # a 5-minute window at 5 s steps


def latency(median: float, n: int = N) -> np.ndarray:
    return RNG.normal(median, median * 0.05, n)


def distribution(preview: np.ndarray, active: np.ndarray, **condition: float):  # type: ignore[no-untyped-def]
    return assess_distribution(preview, active, condition=Condition(**condition), alpha=0.05,
                               expected=N, min_coverage=0.8, unit="s")


def test_drop_outliers_removes_a_spike_but_keeps_the_body() -> None:
    values = np.array([1.0, 1.1, 0.9, 1.05, 0.95, 1.0, 50.0])
    assert drop_outliers(values).tolist() == [1.0, 1.1, 0.9, 1.05, 0.95, 1.0]


def test_drop_outliers_keeps_everything_when_the_spread_is_zero() -> None:
    values = np.array([0.0] * 10 + [0.3])
    assert drop_outliers(values).size == 11


def test_hodges_lehmann_is_the_shift_between_shifted_samples() -> None:
    base = latency(0.1)
    assert hodges_lehmann(base + 0.2, base) == pytest.approx(0.2)


def test_same_distribution_passes() -> None:
    result = distribution(latency(0.1), latency(0.1), max=0.5, max_increase=0.05)
    assert result.classification is Classification.PASS
    assert result.p_value is not None and result.p_value > 0.05
    assert "at most +0.05s over active" in result.reason


def test_significant_increase_beyond_the_allowance_is_high() -> None:
    result = distribution(latency(0.3), latency(0.1), max=0.5, max_increase=0.05)
    assert result.classification is Classification.HIGH
    assert result.effect == pytest.approx(0.2, abs=0.02)
    assert "over active (Hodges-Lehmann" in result.reason and "Mann-Whitney p=" in result.reason


def test_significant_but_small_increase_passes() -> None:
    result = distribution(latency(0.101), latency(0.1), max_increase=0.05)
    assert result.classification is Classification.PASS


def test_absolute_limit_applies_even_when_active_is_as_bad() -> None:
    result = distribution(latency(0.8), latency(0.8), max=0.5)
    assert result.classification is Classification.HIGH
    assert result.reason.startswith("median 0.8") and "> max 0.5s" in result.reason


def test_significant_decrease_is_low_when_bounded() -> None:
    result = distribution(latency(10.0), latency(20.0), max_decrease=1.0)
    assert result.classification is Classification.LOW


def test_a_few_spikes_in_preview_are_outliers_not_a_regression() -> None:
    preview = latency(0.1)
    preview[[5, 30]] = 5.0
    assert distribution(preview, latency(0.1), max=0.5, max_increase=0.05).classification is (
        Classification.PASS)


def test_identical_constant_samples_pass_without_a_nan_p_value() -> None:
    same = np.full(N, 0.25)
    result = distribution(same, same.copy(), max_increase=0.05)
    assert result.classification is Classification.PASS
    assert result.p_value == 1.0


@pytest.mark.parametrize(
    ("values", "says"),
    [
        (np.array([]), "no samples for preview"),
        (np.full(N, math.nan), f"({N} NaN)"),
        (np.full(N, math.inf), f"({N} +Inf)"),
        (np.concatenate([np.full(N - 10, math.nan), np.full(10, 0.1)]), "at 10 of 61 steps"),
    ],
)
def test_missing_nan_inf_and_partial_data_are_nodata(values: np.ndarray, says: str) -> None:
    result = distribution(values, latency(0.1), max=0.5)
    assert result.classification is Classification.NODATA
    assert says in result.reason


def test_nan_samples_are_dropped_when_enough_remain() -> None:
    preview = latency(0.1)
    preview[:5] = math.nan
    assert distribution(preview, latency(0.1), max=0.5).classification is Classification.PASS


def test_describe_missing_accepts_full_coverage() -> None:
    assert describe_missing("active", np.ones(N), expected=N, min_coverage=0.8) is None


def ratio(p_errors: float, p_total: float, a_errors: float, a_total: float, *,
          min_total: float = 10, **condition: float):  # type: ignore[no-untyped-def]
    # counts per step (increase over the step) at every step of a 61-step window
    def rates(count: float) -> np.ndarray:
        return np.full(N, count / N)

    return assess_ratio(rates(p_errors), rates(p_total), rates(a_errors), rates(a_total),
                        condition=Condition(**condition), alpha=0.05, expected=N,
                        min_coverage=0.8, min_total=min_total)


def test_counts_are_summed_over_the_steps() -> None:
    result = ratio(10, 1000, 5, 1000, max=0.05)
    assert result.preview == pytest.approx(0.01) and result.active == pytest.approx(0.005)


def test_error_ratio_above_the_absolute_limit_is_high() -> None:
    result = ratio(71, 1000, 0, 1000, max=0.05)
    assert result.classification is Classification.HIGH
    assert result.reason.startswith("ratio 0.071 > max 0.05")


def test_significant_increase_over_active_is_high() -> None:
    result = ratio(40, 1000, 5, 1000, max=0.05, max_increase=0.01)
    assert result.classification is Classification.HIGH
    assert "over active's 0.005" in result.reason and "Fisher p=" in result.reason


def test_sparse_errors_are_not_significant() -> None:
    # 2 of 60 against 0 of 60 is 3.3% higher, but Fisher's exact test sees chance.
    result = ratio(2, 60, 0, 60, max=0.05, max_increase=0.01)
    assert result.classification is Classification.PASS
    assert result.p_value is not None and result.p_value > 0.05


def test_too_little_traffic_is_nodata() -> None:
    result = ratio(0, 12, 0, 1000, min_total=50, max=0.05)
    assert result.classification is Classification.NODATA
    assert result.reason == (
        "too little traffic: preview answered ~12 requests in the window, needs 50")


def test_zero_traffic_is_nodata_even_without_a_minimum() -> None:
    result = ratio(0, 0, 0, 1000, min_total=0, max=0.05)
    assert result.classification is Classification.NODATA


def test_nan_errors_are_nodata_not_zero_errors() -> None:
    total = np.full(N, 2.0)
    errors = np.full(N, math.nan)
    result = assess_ratio(errors, total, np.zeros(N), total,
                          condition=Condition(max=0.05), alpha=0.05, expected=N,
                          min_coverage=0.8, min_total=1)
    assert result.classification is Classification.NODATA
    assert result.reason == "non-finite values: preview errors is NaN at 61 of 61 steps"


def test_volume_below_the_minimum_is_nodata() -> None:
    result = assess_volume(np.full(N, 0.5), np.full(N, 10.0),
                           condition=Condition(min=100), expected=N, min_coverage=0.8)
    assert result.classification is Classification.NODATA
    assert "preview answered ~30 requests in the window, needs 100" in result.reason


def test_volume_with_enough_requests_on_both_sides_passes() -> None:
    result = assess_volume(np.full(N, 10.0), np.full(N, 10.0),
                           condition=Condition(min=100), expected=N, min_coverage=0.8)
    assert result.classification is Classification.PASS
    assert result.preview == pytest.approx(610)
