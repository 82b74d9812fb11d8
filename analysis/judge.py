"""The judge: preview against active over the same window, check by check, then one verdict.

For every check it range-queries both sides at ``step`` over ``window``, pairs each preview series
with the active series carrying the same labels (say ``{service="service-b"}``), validates every
value (non-finite, negative, overflowing, mismatched labels: NoData with the reason) and only
then compares them with scipy:

- distribution (per-step latency): NaN steps dropped, outliers removed as Kayenta does,
  Mann-Whitney U (one-sided, exact for small samples, NoData when it cannot reach ``alpha``)
  with the Hodges-Lehmann shift and the mean ratio as effect sizes, and the share of steps above
  ``max``;
- quantile (whole-window latency): the histogram's bucket counts summed over the window, the
  quantile read from them, Fisher's exact test on the requests above active's quantile bucket;
- ratio (error rates): counts per step (``increase()`` over a range equal to the step) summed,
  Fisher's exact test (one-sided), which stays valid for the sparse counts of a quiet preview;
- volume: requests over the window against a minimum.

Each pair is classified Pass, High, Low or NoData inside a guard, so no answer ends in a
traceback; a check takes its worst pair and becomes a ``Measurement`` with Argo's phase; group
and check weights combine the measurements into a score and a ``Verdict``. Missing or unusable
data is NoData, which is never a pass. A Prometheus that cannot answer makes an ``Error``
measurement, never an exception.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType

import numpy as np

from analysis.checks import (
    Check,
    CheckSet,
    Condition,
    Direction,
    Kind,
    Missing,
    Outliers,
    OutlierStrategy,
    Side,
    format_duration,
    validate_label_value,
)
from analysis.errors import ArgumentError, QueryError
from analysis.prometheus import FloatArray, Series, Source, describe_labels

Key = tuple[tuple[str, str], ...]


def _stats() -> ModuleType:
    """``scipy.stats``, imported when a test first runs: importing it takes seconds on a small
    machine, and every ``bgh`` command loads this module for ``bgh gate`` alone."""
    return importlib.import_module("scipy.stats")


class Phase(StrEnum):
    """Argo Rollouts' measurement phases, spelled as Argo spells them."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class Classification(StrEnum):
    """How a preview series compares: within bounds, too high, too low, or not enough data."""

    PASS = "Pass"
    HIGH = "High"
    LOW = "Low"
    NODATA = "NoData"

    @property
    def severity(self) -> int:
        """0 for Pass, 1 for NoData, 2 for High or Low: how bad, to pick a check's worst series."""
        return {"Pass": 0, "NoData": 1}.get(self.value, 2)


@dataclass(frozen=True)
class Assessment:
    """The statistics' answer for one pair of series; values are the preview's and active's."""

    classification: Classification
    reason: str
    preview: float | None = None
    active: float | None = None
    effect: float | None = None  # Hodges-Lehmann shift, or preview ratio minus active ratio
    p_value: float | None = None
    ratio: float | None = None  # preview over active (Kayenta's mean ratio); NaN if undefined


@dataclass(frozen=True, eq=False)
class Points:
    """What a chart draws for one side: a value per step, NaN where there is none."""

    timestamps: FloatArray = field(repr=False)
    values: FloatArray = field(repr=False)

    @classmethod
    def empty(cls) -> Points:
        return cls(np.empty(0), np.empty(0))


@dataclass(frozen=True, eq=False)
class Comparison:
    """One preview series judged against its active partner."""

    key: Key
    assessment: Assessment
    preview: Points
    active: Points

    @property
    def labels(self) -> str:
        return describe_labels(self.key)


@dataclass(frozen=True, eq=False)
class Measurement:
    """A check's result: Argo's phase, why, the values compared and the queries as resolved."""

    check: Check
    phase: Phase
    classification: Classification | None  # None when it could not be measured (Error)
    message: str
    comparisons: tuple[Comparison, ...]
    queries: Mapping[str, Mapping[str, str]]  # role -> {"query" | "errors" | "total": PromQL}

    @property
    def worst(self) -> Comparison | None:
        return _worst(self.comparisons) if self.comparisons else None


def _worst(comparisons: Sequence[Comparison]) -> Comparison:
    """The comparison that decides a check: failed before NoData before Pass, else the first."""
    return max(comparisons, key=lambda c: c.assessment.classification.severity)


@dataclass(frozen=True, eq=False)
class Verdict:
    """The judged result: phase first, then the score, the reason and every measurement."""

    phase: Phase
    score: float | None
    message: str
    preview: Side
    active: Side
    service: str | None
    window: float
    step: float
    start: float
    end: float
    checks: CheckSet
    measurements: tuple[Measurement, ...]
    elapsed: float
    skipped: tuple[str, ...] = ()  # checks left out: they cannot apply to the judged service


# ---------------------------------------------------------------------------------------------
# Statistics on plain arrays: no Prometheus, no I/O.

# No rate, count or latency a service reports comes near this per step; beyond it a sum over the
# window loses integer precision (2**53) long before it overflows, and a test on it means nothing.
LARGEST_PER_STEP = 1e12


def describe_missing(
    role: str, values: FloatArray, *, expected: int, min_coverage: float
) -> str | None:
    """Why ``values`` cannot be judged (none, all NaN/Inf, partial window), or None if they can."""
    finite = int(np.isfinite(values).sum())
    if values.size == 0:
        return f"no samples for {role} in the window"
    if finite == 0:
        nan = int(np.isnan(values).sum())
        pos = int(np.isposinf(values).sum())
        neg = int(np.isneginf(values).sum())
        counted = ((nan, "NaN"), (pos, "+Inf"), (neg, "-Inf"))
        kinds = ", ".join(f"{n} {word}" for n, word in counted if n)
        return f"every {role} sample is NaN or infinite ({kinds})"
    if finite < min_coverage * expected:
        return (
            f"partial window: {role} has a finite value at {finite} of {expected} steps "
            f"(needs {min_coverage:.0%})"
        )
    return None


def describe_invalid(role: str, values: FloatArray, *, allow_nan: bool = True) -> str | None:
    """Why ``values`` must not reach a statistic (infinite, NaN, negative, overflowing), or None.

    Rates, counts and latencies are never negative nor infinite; a value that is says the query
    or the exporter is wrong, and judging it would count it as something it is not.
    """
    pos, neg = int(np.isposinf(values).sum()), int(np.isneginf(values).sum())
    if pos or neg:
        kinds = ", ".join(f"{n} {word}" for n, word in ((pos, "+Inf"), (neg, "-Inf")) if n)
        return f"non-finite values: {role} is infinite at {pos + neg} of {values.size} steps " \
               f"({kinds})"
    nan = int(np.isnan(values).sum())
    if nan and not allow_nan:
        return f"non-finite values: {role} is NaN at {nan} of {values.size} steps"
    finite = values[np.isfinite(values)]
    negative = int((finite < 0).sum())
    if negative:
        return (f"impossible values: {role} is negative at {negative} steps (lowest "
                f"{float(finite.min()):.4g}); rates, counts and latencies never are")
    if finite.size and float(finite.max()) > LARGEST_PER_STEP:
        return (f"overflow: {role} reaches {float(finite.max()):.4g} at a step, beyond "
                f"{LARGEST_PER_STEP:g}")
    return None


def smallest_p(n1: int, n2: int) -> float:
    """The smallest one-sided p-value an exact Mann-Whitney U test can give for these sizes."""
    return 1.0 / math.comb(n1 + n2, n1)


def drop_outliers(values: FloatArray, *, factor: float = 3.0) -> FloatArray:
    """``values`` without outliers, as Kayenta's IQR detector with reduced sensitivity.

    The fences are ``factor`` IQR beyond the quartiles, widened to the 1st and 99th percentiles
    when those lie further out. With an IQR of zero (most samples equal) nothing is dropped: the
    fences would otherwise remove every sample that differs, which a comparison must see.
    """
    if values.size < 4:
        return values
    p1, q1, q3, p99 = (float(v) for v in np.percentile(values, [1, 25, 75, 99]))
    spread = q3 - q1
    if spread == 0:
        return values
    low, high = min(p1, q1 - factor * spread), max(p99, q3 + factor * spread)
    keep = (values >= low) & (values <= high)
    return np.asarray(values[keep], dtype=np.float64)


def hodges_lehmann(preview: FloatArray, active: FloatArray) -> float:
    """The Hodges-Lehmann shift: the median of all preview-minus-active differences.

    It is the effect size that goes with Mann-Whitney U; scipy has the test but not the estimate.
    """
    return float(np.median(np.subtract.outer(preview, active)))


def mean_ratio(preview: FloatArray, active: FloatArray) -> float:
    """Kayenta's ``meanRatio`` effect size: preview's mean over active's; NaN when active's is 0."""
    base = float(np.mean(active))
    return math.nan if base == 0 else float(np.mean(preview)) / base


def _p(result: object) -> float:
    value = float(getattr(result, "pvalue", math.nan))
    return 1.0 if math.isnan(value) else value  # all samples tied: no evidence of a difference


def _beyond(limit: float | None, value: float, *, above: bool) -> bool:
    """Is ``value`` past an allowance? No allowance, or an undefined effect (NaN), counts as past,
    as Kayenta skips the effect-size gate when the ratio is NaN."""
    if limit is None or math.isnan(value):
        return True
    return value > limit if above else value < limit


def _mann_whitney(p: FloatArray, a: FloatArray, alternative: str) -> float:
    # Exact for small samples, where the normal approximation is poor and would claim
    # significance the data cannot carry.
    method = "exact" if min(p.size, a.size) <= 8 else "auto"
    return _p(_stats().mannwhitneyu(p, a, alternative=alternative, method=method))


def _shifted(
    c: Condition, direction: Direction, *, alpha: float, shift: float, ratio: float,
    test: Callable[[str], float],
) -> tuple[Classification | None, float | None]:
    """Test each way the condition bounds and ``direction`` allows (``test`` takes scipy's
    ``alternative``): High or Low with its p-value at the first significant change past every
    allowance given for that way, else None with the smallest p-value seen (None if no test)."""
    seen: float | None = None
    for way, cls, alternative in ((Direction.INCREASE, Classification.HIGH, "greater"),
                                  (Direction.DECREASE, Classification.LOW, "less")):
        up = way is Direction.INCREASE
        shift_limit, ratio_limit = (c.max_increase, c.max_ratio) if up else (
            None if c.max_decrease is None else -c.max_decrease, c.min_ratio)
        if (shift_limit is None and ratio_limit is None) or not direction.allows(way):
            continue
        p_value = test(alternative)
        seen = p_value if seen is None else min(seen, p_value)
        if (p_value < alpha and _beyond(shift_limit, shift, above=up)
                and _beyond(ratio_limit, ratio, above=up)):
            return cls, p_value
    return None, seen


def assess_distribution(
    preview: FloatArray,
    active: FloatArray,
    *,
    condition: Condition,
    alpha: float,
    expected: int,
    min_coverage: float,
    min_samples: int = 4,
    direction: Direction = Direction.EITHER,
    outliers: Outliers | None = None,
    unit: str = "",
) -> Assessment:
    """Compare per-step values (e.g. p95 latency) of preview and active."""
    for role, values in (("preview", preview), ("active", active)):
        problem = describe_missing(role, values, expected=expected, min_coverage=min_coverage) \
            or describe_invalid(role, values)
        if problem:
            return Assessment(Classification.NODATA, problem)
    raw_p, raw_a = preview[np.isfinite(preview)], active[np.isfinite(active)]
    if min(raw_p.size, raw_a.size) < min_samples:
        return Assessment(Classification.NODATA, (
            f"too few samples: preview has {raw_p.size} and active {raw_a.size} finite steps, "
            f"needs {min_samples} per side"))
    outliers = outliers or Outliers.model_validate({})
    if outliers.strategy is OutlierStrategy.REMOVE:
        p, a = drop_outliers(raw_p, factor=outliers.factor), drop_outliers(raw_a,
                                                                          factor=outliers.factor)
    else:
        p, a = raw_p, raw_a
    p_median, a_median = float(np.median(raw_p)), float(np.median(raw_a))
    shift, ratio = hodges_lehmann(p, a), mean_ratio(p, a)

    def result(cls: Classification, reason: str, p_value: float | None = None) -> Assessment:
        return Assessment(cls, reason, p_median, a_median, shift, p_value, ratio)

    c = condition
    if c.max is not None and p_median > c.max:
        return result(Classification.HIGH, f"median {p_median:.4g}{unit} > max {c.max:g}{unit}")
    if c.min is not None and p_median < c.min:
        return result(Classification.LOW, f"median {p_median:.4g}{unit} < min {c.min:g}{unit}")
    if c.max is not None:
        # Before outlier removal: spikes in part of the window are exactly what this looks for.
        above = int((raw_p > c.max).sum())
        if above > c.max_share_above * raw_p.size:
            return result(Classification.HIGH, (
                f"{above} of {raw_p.size} steps ({above / raw_p.size:.0%}) above max "
                f"{c.max:g}{unit} (at most {c.max_share_above:.0%} of steps)"))
    if c.relative:
        best = smallest_p(p.size, a.size)
        if best >= alpha:
            return result(Classification.NODATA, (
                f"too few samples: with {p.size} and {a.size} steps Mann-Whitney's smallest "
                f"possible p is {best:.2g}, not below alpha {alpha:g}"))
    cls, p_value = _shifted(c, direction, alpha=alpha, shift=shift, ratio=ratio,
                            test=lambda alternative: _mann_whitney(p, a, alternative))
    if cls is not None:
        way = "over" if cls is Classification.HIGH else "under"
        return result(cls, (
            f"{shift:+.4g}{unit} {way} active (Hodges-Lehmann; x{ratio:.3g} mean ratio; "
            f"{c.describe(unit)}), Mann-Whitney p={p_value:.2g}"), p_value)
    tested = "" if p_value is None else f", Mann-Whitney p={p_value:.2g}"
    reason = (
        f"median {p_median:.4g}{unit} vs {a_median:.4g}{unit}, shift {shift:+.4g}{unit}{tested}"
        f" ({c.describe(unit)})"
    )
    return result(Classification.PASS, reason, p_value)


def _window_count(role: str, counts: FloatArray, what: str) -> tuple[float, str | None]:
    """The finite counts summed, or why the sum cannot be used."""
    total = float(np.sum(counts[np.isfinite(counts)]))
    if not math.isfinite(total) or total > 2.0**53:
        return total, f"overflow: {role} {what} sum to {total:.4g} over the window"
    return total, None


def assess_ratio(
    preview_errors: FloatArray,
    preview_total: FloatArray,
    active_errors: FloatArray,
    active_total: FloatArray,
    *,
    condition: Condition,
    alpha: float,
    expected: int,
    min_coverage: float,
    min_total: float,
) -> Assessment:
    """Compare error ratios as counts over the window: each value is a count for its step
    (``increase()`` over a range equal to the step), errors aligned with totals, 0 if absent."""
    counts: dict[str, tuple[float, float]] = {}
    for role, errors, total in (
        ("preview", preview_errors, preview_total),
        ("active", active_errors, active_total),
    ):
        problem = (describe_missing(role, total, expected=expected, min_coverage=min_coverage)
                   or describe_invalid(f"{role} total", total)
                   or describe_invalid(f"{role} errors", errors, allow_nan=False))
        if problem:
            return Assessment(Classification.NODATA, problem)
        mask = np.isfinite(total)
        n_total, problem = _window_count(role, total, "requests")
        n_errors, problem_e = _window_count(role, np.where(mask, errors, 0.0), "errors")
        if problem or problem_e:
            return Assessment(Classification.NODATA, str(problem or problem_e))
        if n_total <= 0 or n_total < min_total:
            return Assessment(
                Classification.NODATA,
                f"too little traffic: {role} answered ~{n_total:.0f} requests in the window, "
                f"needs {min_total:g}",
            )
        if n_errors > 1.1 * n_total + 1:  # increase() extrapolates, so allow a little
            return Assessment(Classification.NODATA, (
                f"impossible values: {role} has ~{n_errors:.0f} errors but ~{n_total:.0f} "
                "requests; errors must be a subset of the total"))
        counts[role] = (min(n_errors, n_total), n_total)
    (pe, pt), (ae, at) = counts["preview"], counts["active"]
    p_ratio, a_ratio = pe / pt, ae / at
    diff = p_ratio - a_ratio
    ratio = math.nan if a_ratio == 0 else p_ratio / a_ratio
    table = [[round(pe), round(pt) - round(pe)], [round(ae), round(at) - round(ae)]]
    p_value = _p(_stats().fisher_exact(table, alternative="greater"))
    c = condition

    def result(cls: Classification, reason: str) -> Assessment:
        return Assessment(cls, reason, p_ratio, a_ratio, diff, p_value, ratio)

    if c.max is not None and p_ratio > c.max:
        return result(
            Classification.HIGH,
            f"ratio {p_ratio:.4g} > max {c.max:g} (~{pe:.0f} of ~{pt:.0f} requests)",
        )
    cls, _ = _shifted(c, Direction.INCREASE, alpha=alpha, shift=diff, ratio=ratio,
                      test=lambda _alternative: p_value)
    if cls is not None:
        return result(
            Classification.HIGH,
            f"ratio {p_ratio:.4g} is {diff:+.4g} over active's {a_ratio:.4g} "
            f"({c.describe()}), Fisher p={p_value:.2g}",
        )
    return result(
        Classification.PASS,
        f"ratio {p_ratio:.4g} vs {a_ratio:.4g} ({diff:+.4g}, Fisher p={p_value:.2g}; "
        f"{c.describe()})",
    )


def assess_volume(
    preview: FloatArray,
    active: FloatArray,
    *,
    condition: Condition,
    expected: int,
    min_coverage: float,
) -> Assessment:
    """Enough requests on both sides to judge anything? Too few is NoData, not a pass.

    Each value is a count for its step (``increase()`` over a range equal to the step)."""
    minimum = condition.min or 0.0
    counts = []
    for role, values in (("preview", preview), ("active", active)):
        problem = describe_missing(role, values, expected=expected, min_coverage=min_coverage) \
            or describe_invalid(role, values)
        if problem:
            return Assessment(Classification.NODATA, problem)
        n, problem = _window_count(role, values, "requests")
        if problem:
            return Assessment(Classification.NODATA, problem)
        if n <= 0 or n < minimum:
            return Assessment(
                Classification.NODATA,
                f"too little traffic: {role} answered ~{n:.0f} requests in the window, "
                f"needs {minimum:g}",
            )
        counts.append(n)
    return Assessment(
        Classification.PASS,
        f"~{counts[0]:.0f} requests vs ~{counts[1]:.0f} (min {minimum:g})",
        counts[0],
        counts[1],
    )


def bucket_quantile(q: float, bounds: FloatArray, cumulative: FloatArray) -> float:
    """The ``q`` quantile of a cumulative histogram, interpolated as ``histogram_quantile`` does:
    linearly inside the bucket (from 0 for the first), the largest finite bound in the +Inf one."""
    total = float(cumulative[-1])
    if total <= 0:
        return math.nan
    rank = q * total
    i = int(np.searchsorted(cumulative, rank, side="left"))
    i = min(i, bounds.size - 1)
    if math.isinf(bounds[i]):
        return float(bounds[-2]) if bounds.size > 1 else math.nan
    lower = 0.0 if i == 0 else float(bounds[i - 1])
    below = 0.0 if i == 0 else float(cumulative[i - 1])
    inside = float(cumulative[i]) - below
    if inside <= 0:
        return float(bounds[i])
    return lower + (float(bounds[i]) - lower) * (rank - below) / inside


def assess_quantile(
    preview: Mapping[float, FloatArray],
    active: Mapping[float, FloatArray],
    *,
    quantile: float,
    condition: Condition,
    alpha: float,
    min_total: float,
    direction: Direction = Direction.EITHER,
    unit: str = "",
) -> Assessment:
    """Compare one quantile of the whole window from histogram bucket counts per step.

    Per side, the bucket counts (``increase()`` of ``_bucket`` per step, by ``le``) are summed
    over the window; the quantile is read from those sums. The test is on requests, not steps:
    take the bucket bound where active's quantile lies and compare the share of requests above
    it on each side with Fisher's exact test. A regression in part of the window moves the
    whole-window quantile however few steps carry it.
    """
    sides: dict[str, tuple[FloatArray, FloatArray]] = {}
    for role, buckets in (("preview", preview), ("active", active)):
        bounds = np.array(sorted(buckets), dtype=np.float64)
        if bounds.size == 0 or not math.isinf(bounds[-1]):
            return Assessment(Classification.NODATA, (
                f"{role} has no +Inf bucket: the query must keep the `le` label of every bucket "
                "(sum by (..., le))"))
        sums = []
        for le in bounds:
            counts = buckets[float(le)]
            problem = describe_invalid(f'{role} bucket le="{le:g}"', counts)
            if problem:
                return Assessment(Classification.NODATA, problem)
            n, problem = _window_count(role, counts, f'bucket le="{le:g}" counts')
            if problem:
                return Assessment(Classification.NODATA, problem)
            sums.append(n)
        # Buckets are cumulative; increase() extrapolates each separately, so restore order
        # as histogram_quantile does.
        sides[role] = bounds, np.maximum.accumulate(np.array(sums, dtype=np.float64))
    (p_bounds, p_cum), (a_bounds, a_cum) = sides["preview"], sides["active"]
    if p_bounds.size != a_bounds.size or not np.array_equal(p_bounds, a_bounds):
        return Assessment(Classification.NODATA, (
            "bucket boundaries differ between sides: preview has "
            f"{p_bounds.size}, active {a_bounds.size}; compare the same histogram"))
    for role, cum in (("preview", p_cum), ("active", a_cum)):
        if cum[-1] < min_total:
            return Assessment(Classification.NODATA, (
                f"too little traffic: {role} answered ~{cum[-1]:.0f} requests in the window, "
                f"needs {min_total:g}"))
    qp = bucket_quantile(quantile, p_bounds, p_cum)
    qa = bucket_quantile(quantile, a_bounds, a_cum)
    shift = qp - qa
    ratio = math.nan if qa == 0 else qp / qa
    at = min(int(np.searchsorted(a_cum, quantile * a_cum[-1], side="left")), a_bounds.size - 1)
    name = f"p{quantile * 100:g}"

    def result(cls: Classification, reason: str, p_value: float | None = None) -> Assessment:
        return Assessment(cls, reason, qp, qa, shift, p_value, ratio)

    c = condition
    if c.max is not None and qp > c.max:
        return result(Classification.HIGH, (
            f"whole-window {name} {qp:.4g}{unit} > max {c.max:g}{unit} (~{p_cum[-1]:.0f} "
            "requests)"))
    if c.min is not None and qp < c.min:
        return result(Classification.LOW,
                      f"whole-window {name} {qp:.4g}{unit} < min {c.min:g}{unit}")
    if math.isinf(a_bounds[at]):
        return result(Classification.NODATA, (
            f"active's whole-window {name} lies beyond the largest bucket "
            f"({a_bounds[-2]:g}{unit}); the histogram cannot show a change there"))
    bound = float(a_bounds[at])
    p_above, a_above = p_cum[-1] - p_cum[at], a_cum[-1] - a_cum[at]
    table = [[round(p_above), round(p_cum[-1] - p_above)],
             [round(a_above), round(a_cum[-1] - a_above)]]
    share = f"{p_above / p_cum[-1]:.2%} vs {a_above / a_cum[-1]:.2%} of requests above " \
            f"{bound:g}{unit}"
    cls, p_value = _shifted(
        c, direction, alpha=alpha, shift=shift, ratio=ratio,
        test=lambda alternative: _p(_stats().fisher_exact(table, alternative=alternative)))
    if cls is not None:
        return result(cls, (
            f"whole-window {name} {qp:.4g}{unit} vs {qa:.4g}{unit} (x{ratio:.3g}, "
            f"{shift:+.4g}{unit}; {c.describe(unit)}); {share}, Fisher p={p_value:.2g}"),
            p_value)
    tested = "" if p_value is None else f", Fisher p={p_value:.2g}"
    return result(Classification.PASS, (
        f"whole-window {name} {qp:.4g}{unit} vs {qa:.4g}{unit} (x{ratio:.3g}); {share}{tested} "
        f"({c.describe(unit)})"), p_value)


# ---------------------------------------------------------------------------------------------
# From Prometheus series to measurements and a verdict.


@dataclass(frozen=True)
class Window:
    """The judged time range, aligned to whole seconds as the range query will be."""

    start: float
    end: float
    step: float

    @property
    def expected(self) -> int:
        return int((self.end - self.start) // self.step) + 1

    def grid(self) -> FloatArray:
        return self.start + self.step * np.arange(self.expected, dtype=np.float64)


def _on_grid(series: Series | None, grid: FloatArray, *, fill: float) -> FloatArray:
    """The series' values at the grid's timestamps; ``fill`` where it has none."""
    out = np.full(grid.size, fill, dtype=np.float64)
    if series is None or series.timestamps.size == 0:
        return out
    index = np.searchsorted(grid, series.timestamps)
    ok = (index < grid.size) & (grid[np.minimum(index, grid.size - 1)] == series.timestamps)
    out[index[ok]] = series.values[ok]
    return out


def _without_le(series: Series) -> Key:
    return tuple((k, v) for k, v in series.key if k != "le")


def _le(series: Series) -> float:
    text = series.labels.get("le")
    if text is None:
        raise _Unusable("a quantile check's query must keep the `le` label: sum by (service, le)")
    try:
        return float(text)  # "+Inf" included
    except ValueError as exc:
        raise _Unusable(f"bucket bound le={text!r} is not a number") from exc


class _Unusable(Exception):
    """The answer cannot be judged; the message says why (becomes a NoData reason)."""


def _nodata(reason: str) -> list[Comparison]:
    empty = Points.empty()
    return [Comparison((), Assessment(Classification.NODATA, reason), empty, empty)]


def _keyed(check: Check, answer: list[Series]) -> dict[Key, list[Series]]:
    """Series by the labels that pair them across sides (all but ``le`` for buckets)."""
    out: dict[Key, list[Series]] = {}
    for s in answer:
        out.setdefault(_without_le(s) if check.kind is Kind.QUANTILE else s.key, []).append(s)
    return out


def _compare(
    check: Check,
    answers: Mapping[tuple[str, str], list[Series]],
    checks: CheckSet,
    window: Window,
    sides: Mapping[str, Side],
) -> list[Comparison]:
    """Pair preview series with active ones by labels and assess each pair."""
    main = "total" if check.kind is Kind.RATIO else "query"
    grid = window.grid()
    by_role = {role: _keyed(check, answers[(role, main)]) for role in ("preview", "active")}
    preview, active = by_role["preview"], by_role["active"]
    for role in ("preview", "active"):
        if not by_role[role]:
            return _nodata(f"no series for {role} {sides[role]} (the query returned an empty "
                           "result)")
    if not set(preview) & set(active):
        return _nodata(
            "label mismatch between sides: preview has "
            + ", ".join(describe_labels(k) for k in preview)
            + "; active has "
            + ", ".join(describe_labels(k) for k in active)
            + " (aggregate away the labels that differ, e.g. sum by (service))"
        )
    errors: dict[str, dict[Key, Series]] = {}
    if check.kind is Kind.RATIO:
        for role in ("preview", "active"):
            errors[role] = {s.key: s for s in answers[(role, "errors")]}
            stray = [k for k in errors[role] if k not in by_role[role]]
            if stray:
                # Dropping them would count those errors as none: a failing preview would pass.
                return _nodata(
                    f"label mismatch: {role} errors have "
                    + ", ".join(describe_labels(k) for k in stray)
                    + " but its totals have "
                    + ", ".join(describe_labels(k) for k in by_role[role])
                    + " (errors and total must be aggregated by the same labels)"
                )
    comparisons = []
    for key, p_list in preview.items():
        a_list = active.get(key)
        if a_list is None:
            empty = Points.empty()
            comparisons.append(Comparison(key, Assessment(
                Classification.NODATA,
                f"no active series with labels {describe_labels(key)} to compare with",
            ), empty, empty))
            continue
        comparisons.append(_assess_pair(check, key, p_list, a_list, errors, checks, window, grid))
    return comparisons


def _assess_pair(
    check: Check,
    key: Key,
    p_list: list[Series],
    a_list: list[Series],
    errors: Mapping[str, Mapping[Key, Series]],
    checks: CheckSet,
    window: Window,
    grid: FloatArray,
) -> Comparison:
    expected, coverage = window.expected, checks.min_coverage
    if check.kind is Kind.QUANTILE:
        q = check.quantile
        if q is None:  # the checks file's validation makes this unreachable
            raise _Unusable(f"check {check.name!r} is a quantile check without `quantile`")
        buckets = {role: {_le(s): _on_grid(s, grid, fill=math.nan) for s in lst}
                   for role, lst in (("preview", p_list), ("active", a_list))}
        assessment = assess_quantile(
            buckets["preview"], buckets["active"], quantile=q,
            condition=check.condition, alpha=checks.alpha, min_total=check.min_total,
            direction=check.direction, unit=check.unit)
        plotted = {role: _quantile_per_step(q, b)
                   for role, b in buckets.items()}
        return Comparison(key, assessment, Points(grid, plotted["preview"]),
                          Points(grid, plotted["active"]))
    values = {"preview": _on_grid(p_list[0], grid, fill=math.nan),
              "active": _on_grid(a_list[0], grid, fill=math.nan)}
    if check.kind is Kind.RATIO:
        err = {role: _on_grid(errors[role].get(key), grid, fill=0.0) for role in values}
        assessment = assess_ratio(
            err["preview"], values["preview"], err["active"], values["active"],
            condition=check.condition, alpha=checks.alpha,
            min_total=check.min_total, expected=expected, min_coverage=coverage,
        )
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            plotted = {role: np.where(values[role] > 0, err[role] / values[role], math.nan)
                       for role in values}
    elif check.kind is Kind.DISTRIBUTION:
        assessment = assess_distribution(
            values["preview"], values["active"], condition=check.condition,
            alpha=checks.alpha, unit=check.unit, expected=expected, min_coverage=coverage,
            min_samples=checks.min_samples, direction=check.direction, outliers=check.outliers,
        )
        plotted = values
    else:
        assessment = assess_volume(
            values["preview"], values["active"],
            condition=check.condition, expected=expected, min_coverage=coverage,
        )
        plotted = values
    return Comparison(key, assessment, Points(grid, plotted["preview"]),
                      Points(grid, plotted["active"]))


def _quantile_per_step(q: float, buckets: Mapping[float, FloatArray]) -> FloatArray:
    """For the chart: the quantile at each step from that step's bucket counts."""
    bounds = np.array(sorted(buckets), dtype=np.float64)
    if bounds.size == 0 or not math.isinf(bounds[-1]):
        return np.empty(0)
    table = np.vstack([buckets[float(b)] for b in bounds])  # bucket x step
    out = np.full(table.shape[1], math.nan)
    for i in range(table.shape[1]):
        column = table[:, i]
        if np.isfinite(column).all() and (column >= 0).all():
            out[i] = bucket_quantile(q, bounds, np.maximum.accumulate(column))
    return out


def _measure(
    check: Check,
    queries: Mapping[str, Mapping[str, str]],
    answers: Mapping[tuple[str, str], list[Series] | QueryError],
    checks: CheckSet,
    window: Window,
    sides: Mapping[str, Side],
) -> Measurement:
    failures = [a for a in answers.values() if isinstance(a, QueryError)]
    if failures:
        return Measurement(check, Phase.ERROR, None, str(failures[0]), (), queries)
    series = {k: v for k, v in answers.items() if not isinstance(v, QueryError)}
    try:
        comparisons = tuple(_compare(check, series, checks, window, sides))
    except _Unusable as exc:
        comparisons = tuple(_nodata(str(exc)))
    except Exception as exc:  # the guard: no answer from Prometheus may end in a traceback
        comparisons = tuple(_nodata(
            f"statistics could not be computed on this data ({type(exc).__name__}: {exc})"))
    worst = _worst(comparisons)
    cls = worst.assessment.classification
    if cls is Classification.PASS:
        phase = Phase.SUCCESSFUL
    elif cls is Classification.NODATA:
        phase = Phase.FAILED if check.on_missing is Missing.FAILED else Phase.INCONCLUSIVE
    else:
        phase = Phase.FAILED
    where = f"{worst.labels}: " if worst.key else ""
    message = where + worst.assessment.reason
    if cls is Classification.NODATA:
        message += "; missing data is never a pass"
    if len(comparisons) > 1:
        message += f" (worst of {len(comparisons)} series)"
    return Measurement(check, phase, cls, message, comparisons, queries)


def score_of(measurements: Sequence[Measurement], checks: CheckSet) -> float | None:
    """Kayenta's weighted sum: per group, the weight of Successful checks over the weight of
    judged ones; groups combined by their weights. None when nothing was judged."""
    groups: dict[str, list[Measurement]] = {}
    for m in measurements:
        if m.phase in (Phase.SUCCESSFUL, Phase.FAILED):
            groups.setdefault(m.check.group, []).append(m)
    if not groups:
        return None
    total = sum(checks.group_weight(g) for g in groups)
    score = 0.0
    for group, members in groups.items():
        passed = sum(m.check.weight for m in members if m.phase is Phase.SUCCESSFUL)
        score += checks.group_weight(group) * passed / sum(m.check.weight for m in members)
    return score / total


def combine(
    measurements: Sequence[Measurement], checks: CheckSet
) -> tuple[Phase, float | None, str]:
    """One phase for all checks: critical failures first, then errors, then the weighted score."""
    score = score_of(measurements, checks)
    shown = "n/a" if score is None else f"{score:.2f}"
    failed = [m for m in measurements if m.phase is Phase.FAILED]

    def first(phase: Phase, *, critical: bool = False) -> Measurement | None:
        return next((m for m in measurements
                     if m.phase is phase and (m.check.critical or not critical)), None)

    if (m := first(Phase.FAILED, critical=True)) is not None:
        return Phase.FAILED, score, f'critical check "{m.check.name}" is Failed: {m.message}'
    if (m := first(Phase.ERROR)) is not None:
        return Phase.ERROR, score, f'check "{m.check.name}" could not be measured: {m.message}'
    if score is None:
        m = measurements[0]
        return Phase.INCONCLUSIVE, None, (
            f'no check could be judged; "{m.check.name}" is {m.phase}: {m.message}'
        )
    names = ", ".join(m.check.name for m in failed)
    if score < checks.score.marginal:
        return Phase.FAILED, score, (
            f"score {shown} is below the marginal threshold {checks.score.marginal:g}; "
            f"failed: {names}"
        )
    if (m := first(Phase.INCONCLUSIVE)) is not None:
        return Phase.INCONCLUSIVE, score, f'check "{m.check.name}" is Inconclusive: {m.message}'
    if score < checks.score.pass_:
        return Phase.INCONCLUSIVE, score, (
            f"score {shown} is between marginal {checks.score.marginal:g} and pass "
            f"{checks.score.pass_:g}; failed: {names}"
        )
    if failed:
        return Phase.SUCCESSFUL, score, (
            f"score {shown} >= pass {checks.score.pass_:g}; failed: {names}"
        )
    return Phase.SUCCESSFUL, score, f"all {len(measurements)} checks passed"


def judge(
    source: Source,
    checks: CheckSet,
    *,
    preview: Side,
    active: Side,
    window: float,
    service: str | None = None,
    end: float | None = None,
    namespace: str | None = None,
) -> Verdict:
    """Judge ``preview`` against ``active`` over the ``window`` seconds before ``end`` (now).

    Raises ``ArgumentError`` for bad arguments only; whatever Prometheus does ends in the verdict.
    """
    started = time.perf_counter()
    if service is not None:
        validate_label_value(service, what="service", example="service-b")
    if namespace:
        validate_label_value(namespace, what="namespace", example="demo")
    service = service or checks.service
    if window < 2 * checks.step:
        raise ArgumentError(
            f"window {format_duration(window)} is shorter than two steps of "
            f"{format_duration(checks.step)}; want e.g. 5m"
        )
    if preview.label == active.label and preview.value == active.value:
        raise ArgumentError(
            f"preview and active are the same ({preview}): a side judged against itself "
            "proves nothing; give the active version or hash"
        )
    applicable = tuple(c for c in checks.checks if c.applies_to(service))
    skipped = tuple(
        f"{c.name}: does not apply to service {service!r} (applies to "
        f"{', '.join(c.services or ())})"
        for c in checks.checks if not c.applies_to(service)
    )
    if not applicable:
        raise ArgumentError(f"no check in {checks.source} applies to service {service!r}")
    checks = checks.model_copy(update={"checks": applicable})
    end_at = math.floor(time.time() if end is None else end)
    span = Window(end_at - math.ceil(window), end_at, checks.step)
    sides = {"preview": preview, "active": active}

    queries = {
        check.name: {role: check.resolve(side, service=service, rate_window=checks.rate_window,
                                         namespace=namespace or None)
                     for role, side in sides.items()}
        for check in checks.checks
    }
    asked = [(name, role, key, q) for name, per_role in queries.items()
             for role, per_key in per_role.items() for key, q in per_key.items()]
    answers = source.query_ranges([q for *_, q in asked], start=span.start, end=span.end,
                                  step=span.step)
    by_check: dict[str, dict[tuple[str, str], list[Series] | QueryError]] = {}
    for (name, role, key, _), answer in zip(asked, answers, strict=True):
        by_check.setdefault(name, {})[(role, key)] = answer

    measurements = tuple(
        _measure(check, queries[check.name], by_check[check.name], checks, span, sides)
        for check in checks.checks
    )
    phase, score, message = combine(measurements, checks)
    return Verdict(
        phase=phase, score=score, message=message, preview=preview, active=active,
        service=service, window=window, step=checks.step, start=span.start, end=span.end,
        checks=checks, measurements=measurements, elapsed=time.perf_counter() - started,
        skipped=skipped,
    )
