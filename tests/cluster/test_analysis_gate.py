"""The analysis gate against the real Argo Rollouts controller on the local target.

An AnalysisTemplate with the ``web`` provider (the shape of docs/analysis.md) points at a real
``python -m analysis.server`` on loopback, which queries a real Prometheus scraping real demo
service processes under generated traffic. The local target's pods are simulated by kwok and run
no containers, so the metrics come from processes started here, labelled by version: the
Rollout's analysis args name versions, not pod-template hashes. The controller runs on this
machine and calls the provider on loopback exactly as it would call it in a cluster.

The checks are the default ones with their timing scaled down (4 s steps and rate window, a 20 s
window), and the template makes one measurement (no count, no interval), so a run ends promptly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.kube import ANALYSIS_RUN, Kube, analysis_run_from
from harness.rollouts import Phase, Rollouts
from harness.settings import load_settings
from harness.targets.local import LocalTarget
from harness.targets.processes import Process, free_port, wait_http_ok
from tests.cluster.conftest import Cluster, blue_green_manifest
from tests.support.metrics import (
    Spec,
    Traffic,
    scaled_checks,
    start_prometheus,
    start_stack,
    wait_for_scrapes,
)
from tests.support.services import Services, build_services

ACTIVE = Spec("1.0.0", "7d9f8c6b5")
GOOD = Spec("1.1.0", "5c8f9d7b4")
BAD = Spec("1.2.0", "6b7c8d9f2", {"FAULT_ERROR_RATE": "0.5"})
WINDOW = 20.0  # seconds judged
DATA_WITHIN = 90.0
CHECKS = "error-rate,p95-latency,p95-latency-window,request-volume"
ROLLOUT = "service-b"


@dataclass(frozen=True)
class Judge:
    """The analysis server on loopback, and the Prometheus it reads."""

    url: str
    prometheus_url: str


@pytest.fixture(scope="module")
def judge(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Judge]:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("the provider runs on loopback: only the local target's controller reaches it")
    run_dir = tmp_path_factory.mktemp("analysis-gate")
    services = Services(build_services(tmp_path_factory.mktemp("bin")), run_dir)
    traffic: list[Traffic] = []
    processes: list[Process] = []
    try:
        stacks = [start_stack(services, spec) for spec in (ACTIVE, GOOD, BAD)]
        traffic = [Traffic.to(stack) for stack in stacks]
        for t in traffic:
            t.start()
        prometheus, prometheus_url = start_prometheus(run_dir, stacks)
        processes.append(prometheus)
        server = Process("analysis-server", run_dir)
        processes.append(server)
        port = free_port()
        command = [
            sys.executable, "-m", "analysis.server", f"--port={port}",
            f"--prometheus-url={prometheus_url}", f"--checks={scaled_checks(run_dir)}",
            f"--window={WINDOW:g}s",
        ]  # fmt: skip
        server.start(command, cwd=Path(__file__).resolve().parents[2])
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(server, f"{url}/healthz", within=30, command=" ".join(command))
        # The window, the rate window before it, and a margin.
        wait_for_scrapes(prometheus_url, seconds=WINDOW + 5 + 3, within=DATA_WITHIN)
        yield Judge(url, prometheus_url)
    finally:
        for t in traffic:
            t.stop()
        for process in processes:
            process.stop()
        services.stop_all()


def _template(judge_url: str) -> dict[str, Any]:
    """bgh-judge as docs/analysis.md writes it, with one measurement and versions as args."""
    arg = "{{{{args.{}}}}}".format
    url = (
        f"{judge_url}/judge?service={arg('service')}&preview={arg('preview')}"
        f"&active={arg('active')}&checks={CHECKS}&window={WINDOW:g}s"
    )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "bgh-judge"},
        "spec": {
            "args": [{"name": "service"}, {"name": "preview"}, {"name": "active"}],
            "metrics": [
                {
                    "name": "judge",
                    "successCondition": 'result == "Successful"',
                    "failureCondition": 'result == "Failed"',
                    "provider": {
                        "web": {"url": url, "timeoutSeconds": 20, "jsonPath": "{$.phase}"}
                    },
                }
            ],
        },
    }


def _manifest(judge_url: str, *, preview: str, active: str) -> str:
    """The template, then the Services and the Rollout with its pre-promotion analysis."""
    objects = list(yaml.safe_load_all(blue_green_manifest(
        ROLLOUT, image=f"ghcr.io/bluegreen-harness/service-b:{preview}"
    )))  # fmt: skip
    rollout = objects[-1]
    rollout["spec"]["strategy"]["blueGreen"]["prePromotionAnalysis"] = {
        "templates": [{"templateName": "bgh-judge"}],
        "args": [
            {"name": "service", "value": "service-b"},
            {"name": "preview", "value": preview},
            {"name": "active", "value": active},
        ],
    }
    return yaml.safe_dump_all([_template(judge_url), *objects], sort_keys=False)


def _release(cluster: Cluster, namespace: str, judge: Judge, preview: Spec) -> Rollouts:
    """Deploy the active version (the first deploy skips analysis), then release ``preview``."""
    apply = ("apply", "-n", namespace, "-f", "-")
    rollouts = Rollouts(
        Kube(kubeconfig=cluster.target.kubeconfig, context=None, namespace=namespace),
        timeout=load_settings().deadlines.rollout,
    )
    cluster.kubectl(*apply, stdin=_manifest(judge.url, preview=ACTIVE.version,
                                            active=ACTIVE.version))
    rollouts.wait_for_phase(ROLLOUT, Phase.HEALTHY)
    cluster.kubectl(*apply, stdin=_manifest(judge.url, preview=preview.version,
                                            active=ACTIVE.version))
    return rollouts


def _finished_analysis_run(rollouts: Rollouts) -> tuple[str, str, list[Any]]:
    """Wait for the pre-promotion AnalysisRun to finish; its phase, message and measurements."""
    finished = ("Successful", "Failed", "Error", "Inconclusive")
    rollout = rollouts.wait_for(
        ROLLOUT,
        lambda r: r.pre_promotion_analysis is not None
        and r.pre_promotion_analysis.status in finished,
        expecting="a finished pre-promotion AnalysisRun",
        within=load_settings().deadlines.analysis,
    ).value
    assert rollout.pre_promotion_analysis is not None
    run = analysis_run_from(rollouts.kube.get(ANALYSIS_RUN, rollout.pre_promotion_analysis.name))
    assert run.labels.get("rollout-type") == "PrePromotion"
    (metric,) = run.raw["status"]["metricResults"]
    # Argo keeps each measured value as JSON: the string Failed is stored as "\"Failed\"".
    return run.phase, run.message, [json.loads(m["value"]) for m in metric["measurements"]]


def test_a_good_preview_passes_the_gate_and_waits_for_promotion(
    cluster: Cluster, namespace: str, judge: Judge
) -> None:
    rollouts = _release(cluster, namespace, judge, GOOD)
    phase, message, measurements = _finished_analysis_run(rollouts)
    assert (phase, message) == ("Successful", "")
    assert measurements == ["Successful"]
    rollout = rollouts.wait_for_phase(ROLLOUT, Phase.PAUSED)
    assert [c.reason for c in rollout.pause_conditions] == ["BlueGreenPause"]
    active, preview = rollouts.revisions(ROLLOUT, active=1, preview=2)
    assert active.agree and preview.agree
    # `bgh gate --rollout` reads the same Rollout's hashes. The test's Prometheus scrapes only
    # the test's own processes, labelled with other hashes: Inconclusive (exit 3), never
    # Successful.
    gate = subprocess.run(
        [str(Path(sys.executable).with_name("bgh")), "gate", "--rollout", ROLLOUT, "--json"],
        env={**os.environ, "BGH_NAMESPACE": namespace,
             "BGH_KUBECONFIG": str(cluster.target.kubeconfig),
             "BGH_PROMETHEUS_URL": judge.prometheus_url},
        capture_output=True, text=True, timeout=120, check=False,
    )
    body = json.loads(gate.stdout or "{}")
    assert (gate.returncode, body.get("preview"), body.get("active"), body.get("service")) == (
        3, {"label": "rollouts_pod_template_hash", "value": rollout.preview_selector},
        {"label": "rollouts_pod_template_hash", "value": rollout.active_selector}, ROLLOUT,
    ), gate.stderr


def test_a_bad_preview_fails_the_gate_and_active_stays_on_the_old_replica_set(
    cluster: Cluster, namespace: str, judge: Judge
) -> None:
    rollouts = _release(cluster, namespace, judge, BAD)
    phase, message, measurements = _finished_analysis_run(rollouts)
    assert phase == "Failed", message
    assert measurements == ["Failed"]
    rollouts.wait_for_phase(ROLLOUT, Phase.DEGRADED)
    active, _ = rollouts.revisions(ROLLOUT, active=1, preview=2)
    assert active.agree, active


def test_the_local_target_serves_prometheus_and_the_analysis_server(cluster: Cluster) -> None:
    target = cluster.target
    if not isinstance(target, LocalTarget):
        pytest.skip("only the local target runs Prometheus and the analysis server as processes")
    assert httpx.get(f"{target.prometheus_url}/-/ready", timeout=5).is_success
    # No pods are scraped yet: Prometheus answers, with nothing, so the verdict is Inconclusive;
    # an unreachable Prometheus would make it Error (503).
    answer = httpx.get(
        f"{target.analysis_url}/judge", params={"preview": "9.9.9", "active": "9.9.8"}, timeout=30
    )
    assert (answer.status_code, answer.json()["phase"]) == (200, "Inconclusive")
