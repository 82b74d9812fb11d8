"""A scripted stand-in for Prometheus, for unit tests of the judge, the reports and the provider.

Unit tests cover pure pieces with scripted inputs; the real Prometheus is in the component tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from analysis.checks import CheckSet, parse_checks
from analysis.errors import QueryError
from analysis.prometheus import Series

Answer = list[Series] | QueryError
END = 1_700_000_000.0
N = 61  # 5-minute window at 5 s steps


def series(grid: np.ndarray, values: float | np.ndarray, **labels: str) -> Series:
    return Series(labels, grid, np.broadcast_to(np.asarray(values, dtype=np.float64),
                                                grid.shape).copy())


class ScriptedSource:
    """Answers each range query with ``answer(query, grid)``; records what it was asked."""

    def __init__(self, answer: Callable[[str, np.ndarray], Answer]) -> None:
        self.answer = answer
        self.asked: list[tuple[list[str], float, float, float]] = []

    def query_ranges(self, queries: Sequence[str], *, start: float, end: float,
                     step: float) -> list[Answer]:
        self.asked.append((list(queries), start, end, step))
        grid = start + step * np.arange(int((end - start) // step) + 1, dtype=np.float64)
        return [self.answer(q, grid) for q in queries]


def demo_checks(**overrides: dict[str, object]) -> CheckSet:
    """Three checks over metrics ``err``, ``tot`` and ``lat``; ``overrides`` by check name."""
    checks: list[dict[str, object]] = [
        {"name": "errors", "kind": "ratio", "errors": "sum by (service) (err{ {selector} })",
         "total": "sum by (service) (tot{ {selector} })", "condition": {"max": 0.05},
         "min_total": 10, "weight": 3, "critical": True},
        {"name": "latency", "kind": "distribution", "query": "sum by (service) (lat{ {selector} })",
         "condition": {"max": 0.5, "max_increase": 0.05}, "weight": 2, "unit": "s"},
        {"name": "volume", "kind": "volume", "query": "sum by (service) (tot{ {selector} })",
         "condition": {"min": 100}, "weight": 1},
    ]
    for check in checks:
        check.update(overrides.get(str(check["name"]), {}))
    return parse_checks({"step": "5s", "rate_window": "5s", "checks": checks}, source="demo.yaml")


def side_metrics(
    preview: dict[str, float | np.ndarray], active: dict[str, float | np.ndarray],
    *, labels: dict[str, str] | None = None,
) -> Callable[[str, np.ndarray], Answer]:
    """Per side, a value (or array) per metric name; a missing name is an empty result."""
    labels = {"service": "service-b"} if labels is None else labels

    def answer(query: str, grid: np.ndarray) -> Answer:
        values = preview if 'version="1.1.0"' in query else active
        metric = re.search(r"(\w+)\{", query).group(1)  # type: ignore[union-attr]
        if metric not in values:
            return []
        return [series(grid, values[metric], **labels)]

    return answer


HEALTHY: dict[str, float | np.ndarray] = {"err": 0.0, "tot": 10.0, "lat": 0.1}
