"""Properties of the judge over generated inputs (hypothesis): whatever the numbers, the verdict
is one of Argo's four phases and never an exception, and a worse preview never does better."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.checks import Condition, Side
from analysis.judge import (
    Classification,
    Phase,
    assess_distribution,
    assess_quantile,
    assess_ratio,
    judge,
)
from tests.unit.analysis.scripted import END, Answer, ScriptedSource, demo_checks, series

N = 13  # steps in the judged windows below
ANY = st.floats(allow_nan=True, allow_infinity=True)
STEPS = st.lists(ANY, min_size=0, max_size=N).map(lambda v: np.array(v, dtype=np.float64))
FULL = st.lists(ANY, min_size=N, max_size=N).map(lambda v: np.array(v, dtype=np.float64))
PREVIEW, ACTIVE = Side.parse("preview", "1.1.0"), Side.parse("active", "1.0.0")
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(STEPS, STEPS)
def test_distribution_always_classifies(preview: np.ndarray, active: np.ndarray) -> None:
    result = assess_distribution(preview, active,
                                 condition=Condition(max=0.5, max_increase=0.05, max_ratio=1.2),
                                 alpha=0.05, expected=N, min_coverage=0.8)
    assert result.classification in Classification


@SETTINGS
@given(FULL, FULL, FULL, FULL)
def test_ratio_always_classifies(pe: np.ndarray, pt: np.ndarray, ae: np.ndarray,
                                 at: np.ndarray) -> None:
    result = assess_ratio(pe, pt, ae, at, condition=Condition(max=0.05, max_increase=0.005),
                          alpha=0.05, expected=N, min_coverage=0.8, min_total=50)
    assert result.classification in Classification


@SETTINGS
@given(st.dictionaries(st.sampled_from([0.001, 0.01, 0.1, math.inf]), FULL, max_size=4),
       st.dictionaries(st.sampled_from([0.001, 0.01, 0.1, math.inf]), FULL, max_size=4))
def test_quantile_always_classifies(preview: dict[float, np.ndarray],
                                    active: dict[float, np.ndarray]) -> None:
    result = assess_quantile(preview, active, quantile=0.95,
                             condition=Condition(max=0.5, max_ratio=1.25), alpha=0.05,
                             min_total=50)
    assert result.classification in Classification


def _source(values: dict[str, np.ndarray]) -> ScriptedSource:
    """``values`` by side and metric, e.g. ``preview:lat``; every step of the window."""

    def answer(query: str, grid: np.ndarray) -> Answer:
        side = "preview" if 'version="1.1.0"' in query else "active"
        metric = query.split("(")[-1].split("{")[0].strip()
        data = values[f"{side}:{metric}"]
        return [series(grid, np.resize(data, grid.size), service="service-b")]

    return ScriptedSource(answer)


@SETTINGS
@given(st.fixed_dictionaries({f"{side}:{metric}": STEPS.filter(lambda a: a.size > 0)
                              for side in ("preview", "active") for metric in ("err", "tot",
                                                                               "lat")}))
def test_judge_always_answers_one_of_four_phases(values: dict[str, np.ndarray]) -> None:
    verdict = judge(_source(values), demo_checks(), preview=PREVIEW, active=ACTIVE, window=60,
                    end=END)
    assert verdict.phase in Phase


@SETTINGS
@given(
    base=st.lists(st.floats(0.01, 1.0), min_size=N, max_size=N),
    errors=st.floats(0.0, 3.0),
    worse=st.floats(1.0, 5.0),
    more_errors=st.floats(0.0, 5.0),
)
def test_a_worse_preview_never_turns_failed_into_successful(
    base: list[float], errors: float, worse: float, more_errors: float
) -> None:
    """If a preview is Failed, one with at least as much latency and as many errors at every
    step is never Successful."""
    active = np.array(base)

    def verdict(latency_factor: float, error_count: float) -> Phase:
        values = {"preview:lat": active * latency_factor + 0.05, "active:lat": active,
                  "preview:err": np.full(N, error_count), "active:err": np.zeros(N),
                  "preview:tot": np.full(N, 10.0), "active:tot": np.full(N, 10.0)}
        return judge(_source(values), demo_checks(), preview=PREVIEW, active=ACTIVE, window=60,
                     end=END).phase

    first = verdict(1.5, errors)
    if first is Phase.FAILED:
        assert verdict(1.5 * worse, errors + more_errors) is not Phase.SUCCESSFUL


@SETTINGS
@given(
    base=st.lists(st.floats(0.001, 0.2), min_size=N, max_size=N),
    traffic=st.floats(10.0, 1e6),
)
def test_a_clearly_worse_preview_is_never_successful(base: list[float], traffic: float) -> None:
    """Preview three times slower plus 300 ms and failing 30 % of requests, whatever active's
    numbers: Failed, or Inconclusive if the data cannot say, but never Successful."""
    active = np.array(base)
    values = {"preview:lat": active * 3 + 0.3, "active:lat": active,
              "preview:err": np.full(N, 0.3 * traffic), "active:err": np.zeros(N),
              "preview:tot": np.full(N, traffic), "active:tot": np.full(N, traffic)}
    verdict = judge(_source(values), demo_checks(), preview=PREVIEW, active=ACTIVE, window=60,
                    end=END)
    assert verdict.phase is not Phase.SUCCESSFUL
