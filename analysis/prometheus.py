"""Prometheus reads: instant and range queries through ``prometheus-api-client``, with timeouts.

Everything that can go wrong on the way (refused, timed out, a 4xx/5xx answer, a body that is not
the Prometheus API's) becomes one ``QueryError`` whose message names the server, the query and
what was seen; the judge turns it into an ``Error`` measurement. Samples are returned as float
arrays with ``NaN`` and ``±Inf`` kept as such: deciding what they mean is the judge's job.
"""

from __future__ import annotations

import ast
import json
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from analysis.errors import QueryError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Series:
    """One time series: its labels and its samples (timestamps in Unix seconds)."""

    labels: Mapping[str, str]
    timestamps: FloatArray = field(repr=False)
    values: FloatArray = field(repr=False)

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        """Labels without ``__name__``, sorted: how a preview series finds its active partner."""
        return tuple(sorted((k, v) for k, v in self.labels.items() if k != "__name__"))


class Source(Protocol):
    """What the judge reads from; ``Prometheus`` is the real one.

    ``query_ranges`` answers several range queries (concurrently if it can); each answer is the
    series or the ``QueryError`` that query met, in the order asked.
    """

    def query_ranges(
        self, queries: Sequence[str], *, start: float, end: float, step: float
    ) -> list[list[Series] | QueryError]:
        ...


def describe_labels(key: tuple[tuple[str, str], ...] | Mapping[str, str]) -> str:
    """``{service="service-b"}``, or ``{}`` for a series without labels."""
    pairs = key.items() if isinstance(key, Mapping) else key
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"


class Prometheus:
    """A Prometheus server at ``url``; each query gives up after ``timeout`` seconds.

    The timeout is sent to Prometheus too, so a slow query is abandoned on both ends. There are no
    retries: an AnalysisRun measures again at its next interval, and the gate should fail fast.
    """

    def __init__(self, url: str, *, timeout: float = 10.0, concurrency: int = 8) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # requests.Session is not documented as thread-safe: one client per pool thread, kept
        # for the pool's life so that its connections are reused.
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="prometheus")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _client(self) -> PrometheusConnect:
        client: PrometheusConnect | None = getattr(self._local, "client", None)
        if client is None:
            client = PrometheusConnect(
                url=self.url,
                disable_ssl=False,
                # read=False: a read timeout surfaces as a timeout, not as a "max retries" error.
                retry=Retry(total=0, read=False, status_forcelist=(), raise_on_status=False),
                timeout=self.timeout,
            )
            self._local.client = client
        return client

    def query_range(self, query: str, *, start: float, end: float, step: float) -> list[Series]:
        """A range query (``/api/v1/query_range``), ``start`` to ``end`` every ``step`` seconds."""

        def call() -> Any:
            return self._client().custom_query_range(
                query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}",
                params={"timeout": f"{self.timeout:g}s"},
            )

        return [self._series(item, "values", query) for item in self._result(call, query)]

    def query_ranges(
        self, queries: Sequence[str], *, start: float, end: float, step: float
    ) -> list[list[Series] | QueryError]:
        """Several range queries at once, each answered with its series or its ``QueryError``."""

        def one(query: str) -> list[Series] | QueryError:
            try:
                return self.query_range(query, start=start, end=end, step=step)
            except QueryError as exc:
                return exc

        return list(self._pool.map(one, queries))

    def query(self, query: str, *, at: float | None = None) -> list[Series]:
        """An instant query (``/api/v1/query``); each series holds one sample."""
        params = {"timeout": f"{self.timeout:g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"

        def call() -> Any:
            return self._client().custom_query(query, params=params)

        result = self._result(call, query)
        if len(result) == 2 and not isinstance(result[0], dict):  # a scalar: [ts, "value"]
            result = [{"metric": {}, "value": result}]
        return [self._series(item, "value", query) for item in result]

    def _result(self, call: Any, query: str) -> list[Any]:
        where = f"Prometheus at {self.url}"
        try:
            result = call()
        except requests.Timeout as exc:
            raise QueryError(
                f"{where} did not answer within {self.timeout:g}s; query: {query}"
            ) from exc
        except requests.ConnectionError as exc:
            raise QueryError(f"{where} is unreachable ({_reason(exc)}); query: {query}") from exc
        except PrometheusApiClientException as exc:
            raise QueryError(
                f"{where} refused the query: {_api_error(exc)}; query: {query}"
            ) from exc
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            # ValueError covers a 200 whose body is not JSON; KeyError one without data.result.
            raise QueryError(
                f"{where} answered, but not with a Prometheus API body ({exc!r}); query: {query}"
            ) from exc
        if not isinstance(result, list):
            raise QueryError(f"{where} answered a result that is not a list: {result!r:.200}")
        return result

    def _series(self, item: Any, key: str, query: str) -> Series:
        try:
            labels = {str(k): str(v) for k, v in item.get("metric", {}).items()}
            samples = item[key] if key == "values" else [item[key]]
            timestamps = np.array([float(ts) for ts, _ in samples], dtype=np.float64)
            # Prometheus spells special values "NaN", "+Inf" and "-Inf", which float() reads.
            values = np.array([float(v) for _, v in samples], dtype=np.float64)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise QueryError(
                f"Prometheus at {self.url} answered a series that is not [time, value] pairs "
                f"({exc!r}); query: {query}"
            ) from exc
        return Series(labels, timestamps, values)


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host",
                  "Connection reset by peer", "Remote end closed connection"):
        if known in text:
            return known.lower()
    return type(exc).__name__


_STATUS = re.compile(r"HTTP Status Code (\d+) \((b(['\"]).*\3)\)\s*$", re.DOTALL)


def _api_error(exc: PrometheusApiClientException) -> str:
    """``HTTP 400 bad_data: parse error ...`` from the client's exception text.

    The client keeps only the status code and the repr of the raw body in its message, so read
    them back from there.
    """
    text = str(exc)
    match = _STATUS.search(text)
    if match is None:
        return text
    status = match.group(1)
    try:
        body = ast.literal_eval(match.group(2)).decode("utf-8", "replace")
    except (ValueError, SyntaxError, AttributeError):
        return text
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and "error" in decoded:
        return f"HTTP {status} {decoded.get('errorType', 'error')}: {decoded['error']}"
    snippet = " ".join(body.split())[:200]
    return f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
