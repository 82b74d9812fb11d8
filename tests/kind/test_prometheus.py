"""Prometheus in the kind cluster finds a demo pod by Kubernetes service discovery and scrapes it
with the labels the local target's Prometheus gives the same pod, read from the host through
``target.prometheus_url`` (kubectl proxy on loopback). The ``@analysis`` runbooks judge through
the same path; this checks the series themselves, which a runbook's verdict only implies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from analysis.prometheus import Prometheus
from harness.bluegreen import Scratch
from harness.targets.kind import KindTarget
from tests.support.metrics import eventually

HASH = "0123abcd"


@pytest.fixture
def scratch(kind_target: KindTarget) -> Iterator[Scratch]:
    namespace = Scratch(kind_target, prefix="prom")
    yield namespace
    namespace.close()


def _pod(image: str, *, annotated: bool) -> dict[str, object]:
    name = "service-c-annotated" if annotated else "service-c-plain"
    annotations = (
        {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "9090",
            "prometheus.io/path": "/metrics",
        }
        if annotated
        else {}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {
                "app": "service-c",
                "rollouts-pod-template-hash": HASH,
                "root-version": "v9",
            },
            "annotations": annotations,
        },
        "spec": {
            "containers": [
                {
                    "name": "service-c",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [
                        {"name": "tcp", "containerPort": 3000},
                        {"name": "metrics", "containerPort": 9090},
                    ],
                }
            ]
        },
    }


def test_an_annotated_pod_is_scraped_with_the_local_targets_labels(
    kind_target: KindTarget, scratch: Scratch
) -> None:
    image = next(
        i.reference for i in kind_target.images if (i.service, i.version) == ("service-c", "1.0.0")
    )
    kind_target.kubectl().apply(
        [_pod(image, annotated=True), _pod(image, annotated=False)], namespace=scratch.namespace
    )
    url = kind_target.prometheus_url
    assert url is not None and url.startswith("http://127.0.0.1:")
    with Prometheus(url, timeout=10) as prometheus:
        series = eventually(
            lambda: prometheus.query(f'up{{namespace="{scratch.namespace}"}} == 1'),
            bool,
            within=90,
            describe=f"a scraped target in namespace {scratch.namespace}",
        )
        metrics = prometheus.query(
            f"count by (service, version, pod) "
            f'(bgh_request_duration_seconds_bucket{{namespace="{scratch.namespace}"}})'
        )
    labels = [dict(s.labels) for s in series]
    assert [
        (d["pod"], d["app"], d["rollouts_pod_template_hash"], d["root_version"]) for d in labels
    ] == [("service-c-annotated", "service-c", HASH, "v9")], (
        "only the annotated pod, once (one target per pod, not per container port)"
    )
    assert labels[0]["instance"].endswith(":9090")
    assert [dict(m.labels) for m in metrics] == [
        {"service": "service-c", "version": "1.0.0", "pod": "service-c-annotated"}
    ], "the pod's own metrics, with its service and version labels"
