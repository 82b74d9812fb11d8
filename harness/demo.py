"""`bgh demo`: the main job on the local target, end to end, with progress.

1. Bring the local target up (building what the cache lacks).
2. Build the demo services and run gateway A, service B and service C on loopback; show A's answer.
3. Release a new version of service B as a blue-green Rollout under the real controller: it waits
   on preview while active is untouched; promote; active switches. Every step is a harness call
   (the same ones the runbooks use) and every wait is a watch.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from harness.errors import TargetError
from harness.kube import Kube
from harness.rollouts import Phase, Rollouts
from harness.settings import Settings
from harness.targets import builds
from harness.targets.local import LocalTarget
from harness.targets.processes import Process, free_port, wait_http_ok

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"
IMAGE = "ghcr.io/bluegreen-harness/service-b"

ROLLOUT = """
apiVersion: v1
kind: Service
metadata: {{name: service-b-active}}
spec: {{selector: {{app: service-b}}, ports: [{{port: 8081}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: service-b-preview}}
spec: {{selector: {{app: service-b}}, ports: [{{port: 8081}}]}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: service-b}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: service-b}}}}
  template:
    metadata: {{labels: {{app: service-b}}}}
    spec:
      containers: [{{name: service-b, image: "{image}:1.0.0", ports: [{{containerPort: 8081}}]}}]
  strategy:
    blueGreen:
      activeService: service-b-active
      previewService: service-b-preview
      autoPromotionEnabled: false
"""

Report = Callable[[str], None]


def run(settings: Settings, report: Report) -> None:
    target = LocalTarget(settings, report=report)
    target.up()
    _services(settings, target, report)
    _release(settings, target, report)
    report("demo done; the local target is still up (`bgh status`, `bgh down`)")


def _services(settings: Settings, target: LocalTarget, report: Report) -> None:
    binaries = builds.build_demo_services(
        SERVICES_DIR, target.root / "demo" / "bin", go=settings.local.go, report=report
    )
    run_dir = target.root / "demo"
    ports = {"a": free_port(), "b": free_port(), "c": free_port(), "c-metrics": free_port()}
    common = {"HOST": "127.0.0.1", "VERSION": "1.0.0"}
    specs = [
        ("service-b", {"PORT": str(ports["b"])}, f"http://127.0.0.1:{ports['b']}/readyz"),
        (
            "service-c",
            {"PORT": str(ports["c"]), "METRICS_PORT": str(ports["c-metrics"])},
            f"http://127.0.0.1:{ports['c-metrics']}/readyz",
        ),
        (
            "gateway-a",
            {
                "PORT": str(ports["a"]),
                "SERVICE_B_URL": f"http://127.0.0.1:{ports['b']}",
                "SERVICE_C_ADDR": f"127.0.0.1:{ports['c']}",
                "GREETING": "Hello from blue",
            },
            f"http://127.0.0.1:{ports['a']}/readyz",
        ),
    ]
    processes = []
    try:
        for name, env, ready in specs:
            process = Process(name, run_dir)
            argv = [str(binaries / name)]
            process.start(argv, env={**common, "POD_NAME": f"{name}-demo", **env})
            processes.append(process)
            wait_http_ok(process, ready, within=settings.timeout("up"), command=argv[0])
        answer = httpx.get(f"http://127.0.0.1:{ports['a']}/versions", timeout=5)
        report(f"gateway A on 127.0.0.1:{ports['a']} answers {answer.status_code}: {answer.text}")
        if answer.status_code != 200:
            raise TargetError(f"gateway A did not answer 200: {answer.text}")
    finally:
        for process in processes:
            process.stop()


def _release(settings: Settings, target: LocalTarget, report: Report) -> None:
    kubectl = builds.KUBERNETES.install_dir(settings.cache_dir) / "kubectl"
    namespace = settings.namespace

    def kubectl_run(*argv: str, stdin: str | None = None) -> str:
        command = [str(kubectl), f"--kubeconfig={target.kubeconfig}", *argv]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise TargetError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout

    manifest = json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    )
    kubectl_run("apply", "-f", "-", stdin=manifest)
    kubectl_run("delete", "rollout", "service-b", "-n", namespace, "--ignore-not-found", "--wait")
    kubectl_run("apply", "-n", namespace, "-f", "-", stdin=ROLLOUT.format(image=IMAGE))
    rollouts = Rollouts(
        Kube(kubeconfig=target.kubeconfig, context=None, namespace=namespace),
        timeout=settings.timeout("rollout"),
    )
    step = time.monotonic()
    rollouts.wait_for_phase("service-b", Phase.HEALTHY)
    report(f"service-b 1.0.0 is Healthy in {time.monotonic() - step:.1f}s")

    step = time.monotonic()
    rollouts.set_image_version("service-b", "1.1.0")
    rollouts.wait_for_phase("service-b", Phase.PAUSED)
    active, preview = rollouts.revisions("service-b", active=1, preview=2)
    report(
        f"released 1.1.0: Paused in {time.monotonic() - step:.1f}s; "
        f"active still on revision 1 ({active.service_selector}), "
        f"preview on revision 2 ({preview.service_selector}); selectors agree: "
        f"{active.agree and preview.agree}"
    )

    step = time.monotonic()
    rollouts.promote("service-b")
    rollouts.wait_for_phase("service-b", Phase.HEALTHY)
    active, _ = rollouts.revisions("service-b", active=2, preview=2)
    report(
        f"promoted: Healthy in {time.monotonic() - step:.1f}s; active now on revision 2 "
        f"({active.service_selector}); selectors agree: {active.agree}"
    )
