"""Argo CD on the local target: commit-to-preview latency, and what Argo CD adds to build and run.

    .venv/bin/python benchmarks/bench_argocd.py [--rounds 5] [--cold-build]

On the local target with Argo CD started (``start_argocd``), the demo system delivered by Argo CD
from a repository of its own into namespace ``bench-argocd``. Each round releases service B
(a new version and the next root version) as a commit and times, from just before the commit:

- pushed: ``git commit`` of the version file and ``git push``;
- synced: every QA child Application Synced at the commit (refresh asked for at once, not left
  to Argo CD's poll);
- paused: every Rollout Paused with the new version on preview;
- preview ready: gateway A's preview answers with service B at the new version.

Then it promotes and waits for Healthy (not timed). Memory: resident set of Redis, the repo
server and the application controller after the rounds. ``--cold-build`` also builds Argo CD's
binary into a scratch cache with empty Go module and build caches (downloads included) and
reports the wall time and the peak memory of the build's processes.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
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
from harness.delivery import ArgoCDDelivery, settle  # noqa: E402
from harness.git import GitRepository  # noqa: E402
from harness.gitops import GitOps  # noqa: E402
from harness.kube import Kube  # noqa: E402
from harness.probes import Side  # noqa: E402
from harness.release import next_root_version  # noqa: E402
from harness.rollouts import Phase, Rollouts  # noqa: E402
from harness.settings import load_settings  # noqa: E402
from harness.targets import target_for  # noqa: E402
from harness.targets.local import LocalTarget  # noqa: E402

NAMESPACE = "bench-argocd"


def rss_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cold_build() -> tuple[float, float]:
    """Seconds and peak MiB of building Argo CD with every Go cache empty."""
    scratch = Path(tempfile.mkdtemp(prefix="bgh-cold-argocd-"))
    env = {
        **os.environ,
        "GOCACHE": str(scratch / "gocache"),
        "GOMODCACHE": str(scratch / "gomod"),
    }
    code = (
        "from pathlib import Path; from harness import builds; "
        f"builds.ensure_built(builds.ARGO_CD, cache_dir=Path({str(scratch / 'bgh')!r}))"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    seconds = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # The module cache is read-only on disk; make it removable.
    subprocess.run(["chmod", "-R", "u+w", str(scratch)], check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-build", action="store_true")
    args = parser.parse_args()

    settings = load_settings(namespace=NAMESPACE)
    target = LocalTarget(settings, report=print)
    target.up()
    started = time.monotonic()
    target.start_argocd()
    print(f"Argo CD up in {time.monotonic() - started:.1f}s")
    scratch = Path(tempfile.mkdtemp(prefix="bench-argocd-"))
    repository = GitRepository(scratch / "repository")
    repository.seed(settings.gitops_dir.resolve(), suffix=NAMESPACE, namespace=NAMESPACE)
    delivery = ArgoCDDelivery(target.argocd_client(), repository)
    settings = settings.model_copy(update={"gitops_dir": repository.gitops_dir})
    started = time.monotonic()
    delivery.bootstrap()
    bootstrap = time.monotonic() - started
    kube = Kube(kubeconfig=target.kubeconfig, context=None, namespace=NAMESPACE)
    rollouts = Rollouts(kube, timeout=settings.deadlines.rollout)
    names = rollouts.names()
    settle(rollouts, names, existing=())
    gateway = target_for(settings).gateway()
    tree = GitOps(repository.gitops_dir)

    rows = []
    try:
        for round_ in range(1, args.rounds + 1):
            version = "1.1.0" if round_ % 2 else "1.2.0"
            root = next_root_version(tree.read_versions("qa").root_version)
            bump = tree.bump("qa", "service-b", version, root_version=root)
            t0 = time.monotonic()
            delivery.repository.commit(bump.file, bump.message)
            revision = delivery.repository.push()
            pushed = time.monotonic() - t0
            delivery.wait_synced_at(revision)
            synced = time.monotonic() - t0
            settle(rollouts, names, existing=names)
            paused = time.monotonic() - t0
            gateway.wait_for_version(Side.PREVIEW, "service-b", version)
            ready = time.monotonic() - t0
            rows.append((round_, version, pushed, synced, paused, ready))
            print(f"round {round_}: pushed {pushed:.2f}s synced {synced:.2f}s "
                  f"paused {paused:.2f}s preview ready {ready:.2f}s")  # fmt: skip
            rollouts.promote_each(names)
            rollouts.wait_for_every_phase(names, Phase.HEALTHY)
        memory = {
            process.name: rss_mib(process.pid()) for process in target.argocd.processes()
        }
    finally:
        delivery.teardown()
        target_for(settings).kubectl().run("delete", "namespace", NAMESPACE, "--wait=false")
        shutil.rmtree(scratch, ignore_errors=True)

    cold = cold_build() if args.cold_build else None
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    table = "\n".join(
        f"| {r} | {v} | {p:.2f} s | {s:.2f} s | {pa:.2f} s | {ready:.2f} s |"
        for r, v, p, s, pa, ready in rows
    )
    median = statistics.median(r[5] for r in rows)
    body = f"""
`python benchmarks/bench_argocd.py --rounds {args.rounds}{" --cold-build" if cold else ""}` on
{machine}: service B released as a commit (new version and next root version) to a repository
Argo CD {builds.ARGO_CD.version} syncs from, on the local target; times from just before the
commit, with a refresh asked for at once (Argo CD's own poll is every 3 minutes).

| round | version | pushed | Argo CD synced | Rollouts Paused | preview answers |
|---|---|---|---|---|---|
{table}

Commit to preview ready: median {median:.2f} s, worst {max(r[5] for r in rows):.2f} s.
Bootstrap of the root app (root and four QA children synced and healthy): {bootstrap:.1f} s.

Memory after the rounds (resident): {", ".join(f"{n} {m:.0f} MiB" for n, m in memory.items())};
{sum(memory.values()):.0f} MiB in all.
"""
    if cold:
        body += (
            f"\nCold build of the `argocd` binary (empty Go module and build caches, downloads "
            f"included, Go 1.27 toolchain fetched): {cold[0] / 60:.1f} min, peak "
            f"{cold[1] / 1024:.1f} GiB in one build process. Cached afterwards: a second "
            "`bgh up --with-argocd` builds nothing.\n"
        )
    write_section("Argo CD on the local target", body)


if __name__ == "__main__":
    main()
