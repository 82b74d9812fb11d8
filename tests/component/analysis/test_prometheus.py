"""The Prometheus client against the session's real Prometheus: shapes and special values."""

from __future__ import annotations

import math
import time

import pytest

from analysis.errors import QueryError
from analysis.prometheus import Prometheus
from tests.component.analysis.conftest import System


def test_instant_vector_scalar_and_special_values(system: System) -> None:
    with Prometheus(system.prometheus_url, timeout=5) as prometheus:
        up = prometheus.query('up{job="bgh"}')
        assert len(up) == 18 and {s.values[0] for s in up} == {1.0}  # 6 versions x 3 services
        assert {s.labels["rollouts_pod_template_hash"] for s in up} == {
            stack.hash for stack in system.stacks.values()}
        (scalar,) = prometheus.query("scalar(vector(2))")
        assert scalar.labels == {} and scalar.values[0] == 2.0
        (nan,) = prometheus.query("vector(0) / 0")
        (inf,) = prometheus.query("vector(1) / 0")
        assert math.isnan(nan.values[0]) and inf.values[0] == math.inf


def test_range_query_returns_one_sample_per_step(system: System) -> None:
    end = float(int(time.time()))
    with Prometheus(system.prometheus_url, timeout=5) as prometheus:
        series = prometheus.query_range(
            'sum by (service) (rate(bgh_requests_total{version="1.0.0"}[5s]))',
            start=end - 10, end=end, step=1,
        )
    assert sorted(s.labels["service"] for s in series) == ["gateway-a", "service-b", "service-c"]
    for s in series:
        assert s.timestamps.tolist() == [end - 10 + i for i in range(11)]
        assert (s.values > 0).all()


def test_query_ranges_reports_each_failure_in_place(system: System) -> None:
    end = float(int(time.time()))
    with Prometheus(system.prometheus_url, timeout=5) as prometheus:
        good, bad = prometheus.query_ranges(["vector(1)", "sum(("], start=end - 2, end=end,
                                            step=1)
    assert not isinstance(good, QueryError) and good[0].values.tolist() == [1.0, 1.0, 1.0]
    assert isinstance(bad, QueryError) and "HTTP 400 bad_data" in str(bad)


def test_instant_query_errors_are_query_errors(broken_prometheus: dict[str, str]) -> None:
    with Prometheus(broken_prometheus["500"], timeout=2) as prometheus, pytest.raises(
        QueryError, match=r"refused the query: HTTP 500: internal server error; query: up"
    ):
        prometheus.query("up")
