"""A Degraded the controller recovers from, waited through on the real controller.

A Rollout with a short progressDeadlineSeconds and no progressDeadlineAbort whose new pods cannot
be scheduled goes Degraded (ProgressDeadlineExceeded); once a node can take them they run, the
ReplicaSet makes progress and the controller clears the condition by itself. A wait for Paused
started while it is Degraded must go on and report the excursion.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from harness import bluegreen
from harness.bluegreen import NO_NODE, BlueGreen
from harness.kube import Kube
from harness.rollouts import Phase, Rollouts
from tests.cluster.conftest import Cluster


@pytest.fixture
def rollouts(cluster: Cluster, namespace: str) -> Rollouts:
    kube = Kube(kubeconfig=cluster.target.kubeconfig, context=None, namespace=namespace)
    return Rollouts(kube, timeout=60)


@pytest.fixture
def held_node(cluster: Cluster) -> Iterator[str]:
    """A simulated node that gets the held pods' node selector when the test says so; the label
    is removed afterwards."""
    node = cluster.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").strip()
    yield node
    (key,) = NO_NODE
    cluster.kubectl("label", "node", node, f"{key}-", "--overwrite")


class _Seen(logging.Handler):
    """Sets ``event`` when a wait logs that it is waiting through an excursion."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting through" in record.getMessage():
            self.event.set()


def test_a_wait_for_paused_goes_on_through_progress_deadline_exceeded_and_reports_it(
    cluster: Cluster, namespace: str, rollouts: Rollouts, held_node: str
) -> None:
    web = BlueGreen("web", fields={"progressDeadlineSeconds": "3"})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(web.objects()))
    rollouts.wait_for_phase("web", Phase.HEALTHY)
    bluegreen.release(rollouts, "web", "1.1.0", schedulable=False)
    degraded = rollouts.wait_for_phase("web", Phase.DEGRADED)
    assert degraded.status_message.startswith("ProgressDeadlineExceeded"), degraded.status_message

    seen = _Seen()
    logging.getLogger("bgh.wait").addHandler(seen)
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(rollouts.waited_for_phase, "web", Phase.PAUSED)
            assert seen.event.wait(30), "the wait never reported waiting through the Degraded"
            ((key, value),) = NO_NODE.items()
            cluster.kubectl("label", "node", held_node, f"{key}={value}", "--overwrite")
            waited = waiting.result(timeout=90)
    finally:
        logging.getLogger("bgh.wait").removeHandler(seen)

    assert len(waited.excursions) == 1, waited.excursions
    (excursion,) = waited.excursions
    assert excursion.reason.startswith("Degraded (ProgressDeadlineExceeded"), excursion.reason
    assert excursion.seconds is not None and 0 < excursion.seconds < waited.seconds
    assert rollouts.revision_mismatches("web", active=1, preview=2) == []
