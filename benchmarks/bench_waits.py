"""Wait notice latency and wait correctness under faults, on the local target.

    .venv/bin/python benchmarks/bench_waits.py [--trials 200] [--faults 100]

Latency: for each trial one writer patches an annotation on a Rollout while two observers wait for
that value, the harness's watch-based ``wait_for`` and a 1 s polling loop (the baseline, written
here on purpose); each observer's latency is the time from just before the write to its return.

Faults: the harness waits through a loopback TCP proxy in front of the API server. Each trial
starts a wait, then cuts every proxied connection (the watch stream dies mid-wait) and writes the
awaited value while the cut is fresh; every tenth trial instead restarts the control plane, kube-apiserver included.
A trial is right when the wait returns the awaited value; wrong results and timeouts are counted.
Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness import builds  # noqa: E402
from harness.errors import Unreachable  # noqa: E402
from harness.kube import ROLLOUT, Kube, Resource, Rollout, rollout_from  # noqa: E402
from harness.settings import load_settings  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402
from harness.waits import wait_for  # noqa: E402

KEY = "bench.bgh/trial"
NAMESPACE = "bench-waits"
MANIFEST = """
apiVersion: v1
kind: Service
metadata: {name: w-active}
spec: {selector: {app: w}, ports: [{port: 80}]}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: w}
spec:
  replicas: 1
  selector: {matchLabels: {app: w}}
  template:
    metadata: {labels: {app: w}}
    spec: {containers: [{name: app, image: "ghcr.io/bluegreen-harness/service-b:1.0.0"}]}
  strategy: {blueGreen: {activeService: w-active, autoPromotionEnabled: false}}
"""


class Proxy:
    """A loopback TCP proxy whose open connections can all be cut at once."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self.lock:
                self.open.difference_update((a, b))

    def cut(self) -> int:
        with self.lock:
            victims = list(self.open)
        for sock in victims:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(victims)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def annotation(rollout: Rollout) -> str:
    return rollout.annotations.get(KEY, "")


def write(kube: Kube, value: str) -> None:
    """The test driver's write; while the API server restarts it retries, for up to 60 s."""
    give_up = time.monotonic() + 60
    while True:
        try:
            kube.patch(ROLLOUT, "w", {"metadata": {"annotations": {KEY: value}}})
            return
        except Unreachable:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def watch_observer(source: Resource[Rollout], value: str, ready: threading.Event) -> float:
    """Wait for ``value`` with the harness's wait; returns when it returned."""

    def describe(rollout: Rollout) -> str:
        ready.set()
        return f"{KEY}={annotation(rollout)}"

    waited = wait_for(
        source, "w", lambda r: annotation(r) == value, what=f"trial {value}",
        describe=describe, within=30,
    )  # fmt: skip
    ended = time.perf_counter()
    if annotation(waited.value) != value:
        raise AssertionError(f"wrong result: {annotation(waited.value)!r} != {value!r}")
    return ended


def run_latency(kube: Kube, trials: int) -> dict[str, list[float]]:
    source = Resource(kube, ROLLOUT, rollout_from)
    results: dict[str, list[float]] = {"watch": [], "poll": []}
    for trial in range(trials):
        value = f"latency-{trial}"
        ready = threading.Event()
        ends: dict[str, float] = {}

        def by_watch(value: str = value, ready: threading.Event = ready) -> None:
            ends["watch"] = watch_observer(source, value, ready)

        def by_poll(value: str = value) -> None:
            while True:
                if annotation(rollout_from(kube.get(ROLLOUT, "w"))) == value:
                    ends["poll"] = time.perf_counter()
                    return
                time.sleep(1.0)

        watcher = threading.Thread(target=by_watch)
        watcher.start()
        ready.wait(10)
        poller = threading.Thread(target=by_poll)
        poller.start()
        # Write at a random point of the poll interval, so the poll loop is measured fairly.
        time.sleep(random.uniform(0.05, 1.0))
        started = time.perf_counter()
        write(kube, value)
        watcher.join(35)
        poller.join(35)
        for kind in ("watch", "poll"):
            results[kind].append((ends[kind] - started) * 1000)
    return results


def run_faults(target: LocalTarget, writer: Kube, count: int) -> dict[str, int]:
    port = json.loads((target.root / "state.json").read_text())["kube_apiserver_port"]
    proxy = Proxy(port)
    config = target.kubeconfig.read_text().replace(f"127.0.0.1:{port}", f"127.0.0.1:{proxy.port}")
    proxied_config = target.root / "kubeconfig-proxied"
    proxied_config.write_text(config)
    source = Resource(
        Kube(kubeconfig=proxied_config, context=None, namespace=NAMESPACE), ROLLOUT, rollout_from
    )
    outcome = {"right": 0, "wrong": 0, "timeout": 0, "cuts": 0, "restarts": 0}
    for trial in range(count):
        value = f"fault-{trial}"
        ready = threading.Event()
        result: dict[str, str] = {}

        def waiter(value: str = value, ready: threading.Event = ready) -> None:
            try:
                watch_observer(source, value, ready)
                result["outcome"] = "right"
            except AssertionError:
                result["outcome"] = "wrong"
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none hidden
                result["outcome"] = f"timeout: {exc}"

        thread = threading.Thread(target=waiter)
        thread.start()
        ready.wait(10)
        time.sleep(0.05)
        if trial % 10 == 9:
            target.restart_control_plane()
            outcome["restarts"] += 1
        else:
            proxy.cut()
            outcome["cuts"] += 1
        write(writer, value)
        thread.join(60)
        kind = result.get("outcome", "timeout: no answer")
        outcome["right" if kind == "right" else "wrong" if kind == "wrong" else "timeout"] += 1
        if kind.startswith("timeout"):
            print(f"trial {trial}: {kind}", file=sys.stderr)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--faults", type=int, default=100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings()
    target = LocalTarget(settings, report=lambda line: print(line, file=sys.stderr))
    target.up()
    kubectl = builds.KUBERNETES.install_dir(settings.cache_dir) / "kubectl"
    base = [str(kubectl), f"--kubeconfig={target.kubeconfig}"]
    subprocess.run([*base, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([*base, "create", "namespace", NAMESPACE], check=True, capture_output=True)
    subprocess.run([*base, "apply", "-n", NAMESPACE, "-f", "-"], input=MANIFEST.encode(),
                   check=True, capture_output=True)  # fmt: skip
    kube = Kube(kubeconfig=target.kubeconfig, context=None, namespace=NAMESPACE)

    latency = run_latency(kube, args.trials)
    faults = run_faults(target, kube, args.faults)
    subprocess.run([*base, "delete", "namespace", NAMESPACE, "--wait=false"], check=False,
                   capture_output=True)  # fmt: skip

    def row(kind: str) -> str:
        values = latency[kind]
        return (
            f"| {kind} | {len(values)} | {statistics.median(values):.1f} ms | "
            f"{percentile(values, 0.95):.1f} ms | {max(values):.1f} ms |"
        )

    p95 = percentile(latency["watch"], 0.95)
    body = f"""Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by `python benchmarks/bench_waits.py` on {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, against the local target (kube-apiserver {builds.KUBERNETES.version}).

Wait notice latency: the time from just before the API write that makes the predicate true to the
wait returning. Both observers saw the same writes in the same run.

| observer | trials | p50 | p95 | max |
|---|---|---|---|---|
{row("watch")}
{row("poll")}

Goal p95 ≤ 50 ms for the watch: **{"met" if p95 <= 50 else "missed"}** ({p95:.1f} ms).

Waits under faults ({args.faults} trials through a TCP proxy in front of the API server):
{faults["cuts"]} with every connection cut mid-wait, {faults["restarts"]} with the control plane (kube-apiserver
included) stopped and started again mid-wait. Right results: **{faults["right"]}**, wrong results: **{faults["wrong"]}** (goal 0),
timeouts: **{faults["timeout"]}**.
"""
    write_section("Waits (issue: Harness core)", body)
    print(body)


if __name__ == "__main__":
    main()
