"""The judge: preview against active over the same window, check by check, then one verdict.

For every check it range-queries both sides at ``step`` over ``window``, pairs each preview series
with the active series carrying the same labels (say ``{service="service-b"}``) and compares them
with scipy:

- distribution (latency-like): drop NaN and ±Inf, drop IQR outliers, Mann-Whitney U (one-sided)
  with the Hodges-Lehmann shift as the effect size;
- ratio (error rates): counts over the window (rate x step, summed), Fisher's exact test
  (one-sided), which stays valid for the sparse counts of a quiet preview;
- volume: requests over the window against a minimum.

Each pair is classified Pass, High, Low or NoData; a check takes its worst pair and becomes a
``Measurement`` with Argo's phase; weights combine the measurements into a score and a
``Verdict``. No series, too few samples, too little traffic: NoData, which is never a pass. A
Prometheus that cannot answer makes an ``Error`` measurement, never an exception.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy import stats

from analysis.checks import (
    Check,
    CheckSet,
    Condition,
    Kind,
    Missing,
    Side,
    format_duration,
    validate_label_value,
)
from analysis.errors import ArgumentError, QueryError
from analysis.prometheus import FloatArray, Series, Source, describe_labels

Key = tuple[tuple[str, str], ...]


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


# ---------------------------------------------------------------------------------------------
# Statistics on plain arrays: no Prometheus, no I/O.


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


def drop_outliers(values: FloatArray) -> FloatArray:
    """``values`` without those beyond 1.5 IQR of the quartiles (Tukey's fences).

    With an IQR of zero (most samples equal) nothing is dropped: the fences would otherwise
    remove every sample that differs, which is exactly what a comparison must see.
    """
    if values.size < 4:
        return values
    spread = float(stats.iqr(values))
    if spread == 0:
        return values
    q1, q3 = np.percentile(values, [25, 75])
    keep = (values >= q1 - 1.5 * spread) & (values <= q3 + 1.5 * spread)
    return np.asarray(values[keep], dtype=np.float64)


def hodges_lehmann(preview: FloatArray, active: FloatArray) -> float:
    """The Hodges-Lehmann shift: the median of all preview-minus-active differences.

    It is the effect size that goes with Mann-Whitney U; scipy has the test but not the estimate.
    """
    return float(np.median(np.subtract.outer(preview, active)))


def _p(result: object) -> float:
    value = float(getattr(result, "pvalue", math.nan))
    return 1.0 if math.isnan(value) else value  # all samples tied: no evidence of a difference


def assess_distribution(
    preview: FloatArray,
    active: FloatArray,
    *,
    condition: Condition,
    alpha: float,
    expected: int,
    min_coverage: float,
    unit: str = "",
) -> Assessment:
    """Compare per-step values (e.g. p95 latency) of preview and active."""
    for role, values in (("preview", preview), ("active", active)):
        problem = describe_missing(role, values, expected=expected, min_coverage=min_coverage)
        if problem:
            return Assessment(Classification.NODATA, problem)
    p = drop_outliers(preview[np.isfinite(preview)])
    a = drop_outliers(active[np.isfinite(active)])
    p_median, a_median = float(np.median(p)), float(np.median(a))
    shift = hodges_lehmann(p, a)

    def fail(cls: Classification, reason: str, p_value: float | None = None) -> Assessment:
        return Assessment(cls, reason, p_median, a_median, shift, p_value)

    c = condition
    if c.max is not None and p_median > c.max:
        return fail(Classification.HIGH, f"median {p_median:.4g}{unit} > max {c.max:g}{unit}")
    if c.min is not None and p_median < c.min:
        return fail(Classification.LOW, f"median {p_median:.4g}{unit} < min {c.min:g}{unit}")
    p_value: float | None = None
    if c.max_increase is not None:
        p_value = _p(stats.mannwhitneyu(p, a, alternative="greater"))
        if p_value < alpha and shift > c.max_increase:
            return fail(
                Classification.HIGH,
                f"{shift:+.4g}{unit} over active (Hodges-Lehmann; at most "
                f"+{c.max_increase:g}{unit}), Mann-Whitney p={p_value:.2g}",
                p_value,
            )
    if c.max_decrease is not None:
        p_less = _p(stats.mannwhitneyu(p, a, alternative="less"))
        p_value = p_less if p_value is None else min(p_value, p_less)
        if p_less < alpha and -shift > c.max_decrease:
            return fail(
                Classification.LOW,
                f"{shift:+.4g}{unit} under active (Hodges-Lehmann; at most "
                f"-{c.max_decrease:g}{unit}), Mann-Whitney p={p_less:.2g}",
                p_less,
            )
    tested = "" if p_value is None else f", Mann-Whitney p={p_value:.2g}"
    reason = (
        f"median {p_median:.4g}{unit} vs {a_median:.4g}{unit}, shift {shift:+.4g}{unit}{tested}"
        f" ({c.describe(unit)})"
    )
    return Assessment(Classification.PASS, reason, p_median, a_median, shift, p_value)


def _count(rates: FloatArray, mask: np.ndarray, step: float) -> float:
    # A rate per second at every step, times the step, summed: each event lands in about
    # rate_window/step overlapping samples with weight step/rate_window, so it counts once.
    return float(np.sum(rates[mask]) * step)


def assess_ratio(
    preview_errors: FloatArray,
    preview_total: FloatArray,
    active_errors: FloatArray,
    active_total: FloatArray,
    *,
    step: float,
    condition: Condition,
    alpha: float,
    expected: int,
    min_coverage: float,
    min_total: float,
) -> Assessment:
    """Compare error ratios as counts over the window (errors aligned with totals, 0 if absent)."""
    counts: dict[str, tuple[float, float]] = {}
    for role, errors, total in (
        ("preview", preview_errors, preview_total),
        ("active", active_errors, active_total),
    ):
        problem = describe_missing(role, total, expected=expected, min_coverage=min_coverage)
        if problem:
            return Assessment(Classification.NODATA, problem)
        mask = np.isfinite(total)
        n_total = _count(total, mask, step)
        n_errors = _count(np.nan_to_num(errors, nan=0.0, posinf=0.0, neginf=0.0), mask, step)
        if n_total <= 0 or n_total < min_total:
            return Assessment(
                Classification.NODATA,
                f"too little traffic: {role} answered ~{n_total:.0f} requests in the window, "
                f"needs {min_total:g}",
            )
        counts[role] = (min(n_errors, n_total), n_total)
    (pe, pt), (ae, at) = counts["preview"], counts["active"]
    p_ratio, a_ratio = pe / pt, ae / at
    diff = p_ratio - a_ratio
    table = [[round(pe), round(pt) - round(pe)], [round(ae), round(at) - round(ae)]]
    p_value = _p(stats.fisher_exact(table, alternative="greater"))
    c = condition

    def result(cls: Classification, reason: str) -> Assessment:
        return Assessment(cls, reason, p_ratio, a_ratio, diff, p_value)

    if c.max is not None and p_ratio > c.max:
        return result(
            Classification.HIGH,
            f"ratio {p_ratio:.4g} > max {c.max:g} (~{pe:.0f} of ~{pt:.0f} requests)",
        )
    if c.max_increase is not None and p_value < alpha and diff > c.max_increase:
        return result(
            Classification.HIGH,
            f"ratio {p_ratio:.4g} is {diff:+.4g} over active's {a_ratio:.4g} "
            f"(at most +{c.max_increase:g}), Fisher p={p_value:.2g}",
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
    step: float,
    condition: Condition,
    expected: int,
    min_coverage: float,
) -> Assessment:
    """Enough requests on both sides to judge anything? Too few is NoData, not a pass."""
    minimum = condition.min or 0.0
    counts = []
    for role, rates in (("preview", preview), ("active", active)):
        problem = describe_missing(role, rates, expected=expected, min_coverage=min_coverage)
        if problem:
            return Assessment(Classification.NODATA, problem)
        n = _count(rates, np.isfinite(rates), step)
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
    by_role: dict[str, dict[Key, Series]] = {
        role: {s.key: s for s in answers[(role, main)]} for role in ("preview", "active")
    }
    preview, active = by_role["preview"], by_role["active"]
    empty = Points.empty()
    if not preview:
        return [Comparison((), Assessment(
            Classification.NODATA,
            f"no series for preview {sides['preview']} (the query returned an empty result)",
        ), empty, empty)]
    if not active:
        return [Comparison((), Assessment(
            Classification.NODATA,
            f"no series for active {sides['active']} (the query returned an empty result)",
        ), empty, empty)]
    if not set(preview) & set(active):
        return [Comparison((), Assessment(
            Classification.NODATA,
            "label mismatch between sides: preview has "
            + ", ".join(describe_labels(k) for k in preview)
            + "; active has "
            + ", ".join(describe_labels(k) for k in active)
            + " (aggregate away the labels that differ, e.g. sum by (service))",
        ), empty, empty)]

    errors: dict[str, dict[Key, Series]] = {}
    if check.kind is Kind.RATIO:
        errors = {
            role: {s.key: s for s in answers[(role, "errors")]} for role in ("preview", "active")
        }
    comparisons = []
    for key, p_series in preview.items():
        a_series = active.get(key)
        if a_series is None:
            comparisons.append(Comparison(key, Assessment(
                Classification.NODATA,
                f"no active series with labels {describe_labels(key)} to compare with",
            ), empty, empty))
            continue
        values = {"preview": _on_grid(p_series, grid, fill=math.nan),
                  "active": _on_grid(a_series, grid, fill=math.nan)}
        expected, coverage = window.expected, checks.min_coverage
        if check.kind is Kind.RATIO:
            err = {role: _on_grid(errors[role].get(key), grid, fill=0.0) for role in values}
            assessment = assess_ratio(
                err["preview"], values["preview"], err["active"], values["active"],
                step=window.step, condition=check.condition, alpha=checks.alpha,
                min_total=check.min_total, expected=expected, min_coverage=coverage,
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                plotted = {role: np.where(values[role] > 0, err[role] / values[role], math.nan)
                           for role in values}
        elif check.kind is Kind.DISTRIBUTION:
            assessment = assess_distribution(
                values["preview"], values["active"], condition=check.condition,
                alpha=checks.alpha, unit=check.unit, expected=expected, min_coverage=coverage,
            )
            plotted = values
        else:
            assessment = assess_volume(
                values["preview"], values["active"], step=window.step,
                condition=check.condition, expected=expected, min_coverage=coverage,
            )
            plotted = values
        comparisons.append(Comparison(
            key, assessment, Points(grid, plotted["preview"]), Points(grid, plotted["active"])
        ))
    return comparisons


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
    comparisons = tuple(_compare(check, series, checks, window, sides))
    worst = _worst(comparisons)
    cls = worst.assessment.classification
    if cls is Classification.PASS:
        phase = Phase.SUCCESSFUL
    elif cls is Classification.NODATA:
        phase = Phase.FAILED if check.missing is Missing.FAILED else Phase.INCONCLUSIVE
    else:
        phase = Phase.FAILED
    where = f"{worst.labels}: " if worst.key else ""
    message = where + worst.assessment.reason
    if cls is Classification.NODATA:
        message += "; missing data is never a pass"
    if len(comparisons) > 1:
        message += f" (worst of {len(comparisons)} series)"
    return Measurement(check, phase, cls, message, comparisons, queries)


def combine(
    measurements: Sequence[Measurement], checks: CheckSet
) -> tuple[Phase, float | None, str]:
    """One phase for all checks: critical failures first, then errors, then the weighted score."""
    judged = [m for m in measurements if m.phase in (Phase.SUCCESSFUL, Phase.FAILED)]
    weight = sum(m.check.weight for m in judged)
    score = None if weight == 0 else sum(
        m.check.weight for m in judged if m.phase is Phase.SUCCESSFUL) / weight
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
    )
