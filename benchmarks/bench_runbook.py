"""One release cycle through the harness against the same cycle through `kubectl argo rollouts`.

    .venv/bin/python benchmarks/bench_runbook.py [--rounds 5]

On the local target, the demo system deployed from gitops/ in namespace ``bench-runbook``. Each
round releases a new version of service B twice, alternating who drives it:

- harness: ``set_image_version`` -> ``wait_for_phase(Paused)`` -> ``Gateway.wait_for_version``
  on preview -> ``promote`` -> ``wait_for_phase(Healthy)``;
- plugin: ``kubectl argo rollouts set image`` -> ``status --watch`` until it prints Paused (it
  returns by itself only on Healthy or Degraded) -> the same probe -> ``promote`` ->
  ``status --watch`` (returns on Healthy).

The ratio is harness time over plugin time per round (goal <= 1.10); the median is reported.
Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness import builds  # noqa: E402
from harness.delivery import DirectApply  # noqa: E402
from harness.kube import ROLLOUT, Kube  # noqa: E402
from harness.probes import Gateway, Side  # noqa: E402
from harness.rollouts import Phase, Rollouts  # noqa: E402
from harness.settings import load_settings  # noqa: E402
from harness.targets import target_for  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402

NAMESPACE = "bench-runbook"
IMAGE = "ghcr.io/bluegreen-harness/service-b"


def harness_cycle(rollouts: Rollouts, gateway: Gateway, version: str) -> float:
    started = time.monotonic()
    rollouts.set_image_version("service-b", version)
    rollouts.wait_for_phase("service-b", Phase.PAUSED)
    gateway.wait_for_version(Side.PREVIEW, "service-b", version)
    rollouts.promote("service-b")
    rollouts.wait_for_phase("service-b", Phase.HEALTHY)
    return time.monotonic() - started


def plugin_cycle(plugin: list[str], gateway: Gateway, version: str) -> float:
    def run(*argv: str) -> None:
        subprocess.run([*plugin, *argv, "-n", NAMESPACE], check=True, capture_output=True)

    def watch_until(word: str) -> None:
        # `status --watch` prints each phase and returns by itself only on Healthy or Degraded;
        # for Paused, stop it at the line it prints, as a person watching it would.
        with subprocess.Popen(
            [*plugin, "status", "service-b", "--watch", "--timeout", "120s", "-n", NAMESPACE],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        ) as status:
            assert status.stdout is not None
            for line in status.stdout:
                if line.startswith(word):
                    break
            else:
                raise SystemExit(f"status --watch ended without {word}")
            status.terminate()

    started = time.monotonic()
    run("set", "image", "service-b", f"service-b={IMAGE}:{version}")
    watch_until("Paused")
    gateway.wait_for_version(Side.PREVIEW, "service-b", version)
    run("promote", "service-b")
    run("status", "service-b", "--watch", "--timeout", "120s")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    base = load_settings()
    target = LocalTarget(base, report=lambda line: print(line, flush=True))
    target.up()
    plugin_binary = builds.ARGO_ROLLOUTS.install_dir(base.cache_dir) / "kubectl-argo-rollouts"
    plugin = [str(plugin_binary), f"--kubeconfig={target.kubeconfig}"]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "gitops", Path(tmp) / "gitops")
        settings = load_settings(namespace=NAMESPACE, gitops_dir=Path(tmp) / "gitops")
        kubectl = target_for(settings).kubectl()
        kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true")
        DirectApply(target_for(settings)).deploy("qa")
        kube = Kube(kubeconfig=target.kubeconfig, context=None, namespace=NAMESPACE)
        rollouts = Rollouts(kube, timeout=120)
        # Old ReplicaSets go at once, so every cycle starts from one ReplicaSet: with the chart's
        # 30 s delay, whichever cycle comes second in a round also waits for the controller to
        # deal with a third ReplicaSet (about 1 s), and the order, not the tool, decides.
        kube.patch(ROLLOUT, "service-b", {"spec": {"strategy": {"blueGreen": {"scaleDownDelaySeconds": 0}}}})
        gateway = target_for(settings).gateway()
        gateway.wait_for_version(Side.ACTIVE, "service-b", "1.0.0")
        ours, theirs = [], []
        for round_ in range(args.rounds):
            # Alternate who goes first so neither always meets a warmer controller.
            first_harness = round_ % 2 == 0
            for who in ("harness", "plugin") if first_harness else ("plugin", "harness"):
                version = f"1.{round_ + 1}.{0 if who == 'harness' else 1}"
                if who == "harness":
                    ours.append(harness_cycle(rollouts, gateway, version))
                else:
                    theirs.append(plugin_cycle(plugin, gateway, version))
            print(f"round {round_ + 1}: harness {ours[-1]:.2f}s, plugin {theirs[-1]:.2f}s")
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=false")

    ratios = [o / t for o, t in zip(ours, theirs, strict=True)]
    rows = "\n".join(
        f"| {i + 1} | {o:.2f} s | {t:.2f} s | {o / t:.2f} |"
        for i, (o, t) in enumerate(zip(ours, theirs, strict=True))
    )
    body = f"""
`python benchmarks/bench_runbook.py --rounds {args.rounds}` on {platform.machine()},
{os.cpu_count()} cores: release -> Paused -> probe preview -> promote -> Healthy of service B in
the deployed demo system (scaleDownDelaySeconds 0), driven by the harness and by `kubectl argo rollouts` (set image,
status --watch, promote, status --watch) in turn, the same probe in both.

| round | harness | plugin | ratio |
|---|---|---|---|
{rows}

Median ratio {statistics.median(ratios):.2f} (goal <= 1.10); median cycle: harness
{statistics.median(ours):.2f} s, plugin {statistics.median(theirs):.2f} s.
"""
    write_section("Runbook cycle against the plugin", body)
    print(body)


if __name__ == "__main__":
    main()
