"""The local data plane: selector switch to traffic, probe round trips, zero downtime.

    .venv/bin/python benchmarks/bench_dataplane.py [--switches 40] [--probes 500] [--rps 100]

Brings the local target up, deploys QA from gitops/ into namespace ``bench-dataplane`` and
releases 1.1.0 (root version v2.2.0), so both versions of gateway A run side by side.

- Switch to traffic: a Service of its own (``bench-switch``, so the Rollouts controller does not
  fight the patches) selects gateway A's active pods. Each trial patches its selector to the other
  ReplicaSet's hash and, from just before the patch, asks through it on a fresh connection back
  to back until the other version answers; the figure is patch to first answer.
- Probe round trip: ``Gateway.read`` through the active Service, one at a time (the latency of
  each request, connection included), then ``read_versions`` for both sides at once (wall time).
- Zero downtime: ``steady_traffic`` through active during promote of all three Rollouts, and,
  after a second release, during abort: requests, failures, versions seen.

Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness.delivery import DirectApply  # noqa: E402
from harness.gitops import GitOps  # noqa: E402
from harness.kube import HASH_LABEL, SERVICE, Kube  # noqa: E402
from harness.probes import Side, Traffic  # noqa: E402
from harness.rollouts import Phase, Rollouts  # noqa: E402
from harness.settings import Settings, load_settings  # noqa: E402
from harness.targets import target_for  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402

NAMESPACE = "bench-dataplane"
SERVICES = ("gateway-a", "service-b", "service-c")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def release(settings: Settings, version: str, root_version: str) -> None:
    tree = GitOps(settings.gitops_dir)
    for service in SERVICES:
        tree.bump("qa", service, version, root_version=root_version)
    phases = [d.phase for d in DirectApply(target_for(settings)).deploy("qa")]
    if phases != ["Paused"] * 3:
        raise SystemExit(f"release {version}: expected three Paused Rollouts, got {phases}")


def switches(target: LocalTarget, kube: Kube, rollouts: Rollouts, trials: int) -> list[float]:
    rollout = rollouts.read("gateway-a")
    hashes = {"1.0.0": rollout.stable_hash, "1.1.0": rollout.current_hash}
    target_for(load_settings(namespace=NAMESPACE)).kubectl().apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "bench-switch"},
                "spec": {
                    "selector": {"app": "gateway-a", HASH_LABEL: hashes["1.0.0"]},
                    "ports": [{"name": "http", "port": 3000}],
                },
            }
        ],
        namespace=NAMESPACE,
    )
    url = target.wait_for_dataplane(
        lambda s: any(x["name"] == "bench-switch" and x["endpoints"] for x in s["services"]),
        what="bench-switch served",
        within=30,
    )
    (served,) = [s for s in url["services"] if s["name"] == "bench-switch"]
    base = f"http://{served['address']}:3000/versions"
    latencies = []
    version = "1.0.0"
    with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=5) as client:
        for _ in range(trials):
            version = "1.1.0" if version == "1.0.0" else "1.0.0"
            started = time.monotonic()
            kube.patch(
                SERVICE, "bench-switch", {"spec": {"selector": {HASH_LABEL: hashes[version]}}}
            )
            while True:
                response = client.get(base)
                if response.status_code == 200 and response.json()["a"] == version:
                    break
                if time.monotonic() - started > 10:
                    raise SystemExit(f"switch to {version} not seen within 10 s")
            latencies.append(time.monotonic() - started)
    return latencies


def probes(settings: Settings, count: int) -> tuple[list[float], list[float]]:
    gateway = target_for(settings).gateway()
    single = []
    for _ in range(count):
        answer = gateway.read(Side.ACTIVE)
        if not answer.ok:
            raise SystemExit(f"probe failed: {answer.describe()}")
        single.append(answer.latency)
    both = []
    for _ in range(count // 5):
        started = time.monotonic()
        answers = gateway.read_versions()
        both.append(time.monotonic() - started)
        if not all(a.ok for a in answers.values()):
            raise SystemExit(f"probe failed: {[a.describe() for a in answers.values()]}")
    return single, both


def under_traffic(settings: Settings, rollouts: Rollouts, action: str, rps: float) -> Traffic:
    gateway = target_for(settings).gateway()
    with gateway.steady_traffic(rps=rps) as traffic:
        traffic.wait_until(lambda t: len(t.answers) >= 5 * rps, what="5 s of traffic", within=30)
        for service in SERVICES:
            getattr(rollouts, action)(service)
        phase = Phase.HEALTHY if action == "promote" else Phase.DEGRADED
        for service in SERVICES:
            rollouts.wait_for_phase(service, phase)
        after = len(traffic.answers)
        traffic.wait_until(lambda t: len(t.answers) >= after + 5 * rps, what="5 s more", within=30)
    return traffic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=40)
    parser.add_argument("--probes", type=int, default=500)
    parser.add_argument("--rps", type=float, default=100)
    args = parser.parse_args()

    base = load_settings()
    target = LocalTarget(base, report=lambda line: print(line, flush=True))
    target.up()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "gitops", Path(tmp) / "gitops")
        settings = load_settings(namespace=NAMESPACE, gitops_dir=Path(tmp) / "gitops")
        kubectl = target_for(settings).kubectl()
        kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
        DirectApply(target_for(settings)).deploy("qa")
        kube = Kube(kubeconfig=target.kubeconfig, context=None, namespace=NAMESPACE)
        rollouts = Rollouts(kube, timeout=settings.deadlines.rollout)
        gateway = target_for(settings).gateway()
        gateway.wait_for_version(Side.ACTIVE, "service-c", "1.0.0")
        release(settings, "1.1.0", "v2.2.0")
        gateway.wait_for_version(Side.PREVIEW, "service-c", "1.1.0")

        print(f"selector switches: {args.switches}", flush=True)
        switch = switches(target, kube, rollouts, args.switches)
        print(f"probes: {args.probes}", flush=True)
        single, both = probes(settings, args.probes)
        print("promote under traffic", flush=True)
        promoted = under_traffic(settings, rollouts, "promote", args.rps)
        release(settings, "1.2.0", "v2.3.0")
        gateway.wait_for_version(Side.PREVIEW, "service-c", "1.2.0")
        print("abort under traffic", flush=True)
        aborted = under_traffic(settings, rollouts, "abort", args.rps)
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=false")

    ms = lambda values, q: f"{percentile(values, q) * 1000:.1f} ms"  # noqa: E731
    body = f"""
`python benchmarks/bench_dataplane.py --switches {args.switches} --probes {args.probes} --rps {args.rps:g}`
on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; the local
target's control plane, Rollouts controller, Prometheus and data plane on the same cores.

| figure | p50 | p95 | p99 | max | n |
|---|---|---|---|---|---|
| Service selector patch → first answer from the other version | {ms(switch, 50)} | {ms(switch, 95)} | {ms(switch, 99)} | {max(switch) * 1000:.1f} ms | {len(switch)} |
| `Gateway.read` through active (gateway A → B and C) | {ms(single, 50)} | {ms(single, 95)} | {ms(single, 99)} | {max(single) * 1000:.1f} ms | {len(single)} |
| `Gateway.read_versions`, both sides at once (wall) | {ms(both, 50)} | {ms(both, 95)} | {ms(both, 99)} | {max(both) * 1000:.1f} ms | {len(both)} |

Zero downtime, steady traffic through active at {args.rps:g} requests/s on fresh connections:

| during | requests | failed | gateway-a versions seen on active |
|---|---|---|---|
| promote (1.0.0 → 1.1.0) | {len(promoted.answers)} | {len(promoted.failures)} | {" → ".join(promoted.versions_seen("gateway-a"))} |
| abort (1.2.0 on preview) | {len(aborted.answers)} | {len(aborted.failures)} | {" → ".join(aborted.versions_seen("gateway-a"))} |
"""
    write_section("Data plane", body)
    print(body)
    print(json.dumps({"switch_ms": [round(s * 1000, 2) for s in switch]}))


if __name__ == "__main__":
    main()
