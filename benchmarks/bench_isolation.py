"""Two local targets at once, their listening sockets, and how fast a crashed pod reaches the API.

    .venv/bin/python benchmarks/bench_isolation.py [--kills 6]

Run it in a network namespace of its own (every socket listed is then one of these targets').

- Two targets: ``bgh up`` in two fresh state directories at the same moment; the wall time until
  both are ready, whether they share any port or loopback network, and every TCP socket listening
  in the namespace afterwards that is not on loopback.
- Readiness written back: QA deployed into the first target; the processes of ``--kills`` of its
  pods (six at most) are killed (SIGKILL) one after the other, each once. The figures are kill to
  the pod's Ready=False in the API, and kill to Ready=True again (the data plane restarts a
  process 1 s after it exits), both as a watch on the pod sees them.

Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness.delivery import DirectApply  # noqa: E402
from harness.kube import POD, Kube, Pod, Resource, pod_from  # noqa: E402
from harness.settings import load_settings  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402
from harness.waits import wait_for  # noqa: E402

BGH = Path(sys.executable).parent / "bgh"


def bgh(command: str, state_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BGH), command, "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def not_on_loopback() -> list[str]:
    out = subprocess.run(
        ["ss", "-H", "-l", "-t", "-n", "-p"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        local = line.split()[3]
        host = local.rsplit(":", 1)[0].strip("[]")
        if not (host.startswith("127.") or host == "::1"):
            found.append(f"{local} {line.split('users:', 1)[-1]}")
    return found


def pod_ready(pods: Resource[Pod], name: str, ready: bool, since: float) -> float:
    wait_for(
        pods,
        name,
        lambda pod: pod.ready is ready,
        what=f"Pod {name}: Ready={ready}",
        describe=lambda pod: f"ready={pod.ready}",
        within=30,
    )
    return time.monotonic() - since


def kill_and_watch(target: LocalTarget, kills: int) -> tuple[list[float], list[float]]:
    """Kill each of ``kills`` pods' processes once: a second kill within a minute would meet
    the doubled restart back-off (CrashLoopBackOff), not the write-back."""
    kube = Kube(kubeconfig=target.kubeconfig, context=None, namespace="demo")
    pods = Resource(kube, POD, pod_from)
    down, up = [], []
    state = target.wait_for_dataplane(
        lambda s: sum(p["ready"] for p in s["pods"] if p["namespace"] == "demo") >= 6,
        what="the six demo pods' processes ready",
        within=60,
    )
    victims = [p for p in state["pods"] if p["namespace"] == "demo"][:kills]
    for pod in victims:
        killed = time.monotonic()
        os.kill(pod["pid"], signal.SIGKILL)
        down.append(pod_ready(pods, pod["name"], False, killed))
        up.append(pod_ready(pods, pod["name"], True, killed))
    return down, up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=6)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bgh-bench-isolation-"))
    state_dirs = [scratch / "first", scratch / "second"]
    try:
        started = time.monotonic()
        starting = [bgh("up", d) for d in state_dirs]
        for process in starting:
            output = process.communicate(timeout=900)[0]
            if process.returncode != 0:
                raise SystemExit(f"bgh up failed:\n{output[-3000:]}")
        both = time.monotonic() - started
        targets = [LocalTarget(load_settings(state_dir=d)) for d in state_dirs]
        ports = [t.state.read() for t in targets]
        shared = set(ports[0].values()) & set(ports[1].values())
        networks = [t.read_dataplane()["networks"] for t in targets]
        exposed = not_on_loopback()
        tree = scratch / "gitops"
        shutil.copytree(ROOT / "gitops", tree)
        first = LocalTarget(targets[0].settings.model_copy(update={"gitops_dir": tree}))
        DirectApply(first).deploy("qa")
        down, up = kill_and_watch(first, args.kills)
    finally:
        for process in [bgh("down", d) for d in state_dirs]:
            process.communicate(timeout=300)
        shutil.rmtree(scratch, ignore_errors=True)

    def ms(values: list[float]) -> str:
        return (
            f"{statistics.median(values) * 1000:.0f} ms | {max(values) * 1000:.0f} ms | "
            f"{len(values)}"
        )

    listening = "\n".join(f"    {line}" for line in exposed) or "    (none)"
    nets = " and ".join(f"{n['pods']}, {n['services']}" for n in networks)
    why = "the Rollouts controllers' metrics and healthz: upstream binds `0.0.0.0`, no flag"
    body = f"""
Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by
`python benchmarks/bench_isolation.py --kills {args.kills}` in a network namespace of its own,
on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.

| two local targets, `bgh up` at the same moment in two state directories | result |
|---|---|
| wall time until both are ready | {both:.1f} s |
| ports each recorded in `state.json` | {len(ports[0])} and {len(ports[1])}; shared: {len(shared)} |
| data plane networks (pods, Services) | {nets} |
| TCP sockets listening off loopback, both targets up | {len(exposed)} ({why}) |

{listening}

The demo system's pods in the first target, each pod's process killed (SIGKILL) once while
ready, as a watch on the pod sees it (the data plane restarts a process 1 s after it exits):

| figure | median | slowest | n |
|---|---|---|---|
| kill → pod Ready=False in the API | {ms(down)} |
| kill → pod Ready=True again | {ms(up)} |
"""
    print(body)
    write_section("Two local targets at once; a crashed pod's readiness (issue #18)", body)


if __name__ == "__main__":
    main()
