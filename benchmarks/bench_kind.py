"""The kind target's image and cluster figures on a machine that builds its own images.

    .venv/bin/python benchmarks/bench_kind.py

Cold: the node image, the Go base and the service images are removed from Docker first, so they
are built again (the debootstrap root filesystems and the Go binaries stay cached; their own
first-build times are read from the cache, where each build recorded it). Warm: the same calls
again, which find everything cached. `kind create cluster` is timed twice from the built node
image, the cluster deleted after each. Results go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.results import write_section  # noqa: E402
from harness.settings import load_settings  # noqa: E402
from harness.targets.kind import SERVICES_DIR, KindTarget, binaries, docker_host  # noqa: E402
from harness.targets.kind.docker import Docker  # noqa: E402
from harness.targets.kind.images import LocalImages  # noqa: E402
from harness.targets.kind.node_image import NodeImageBuilder  # noqa: E402


def _timed(action: object) -> float:
    started = time.monotonic()
    action()  # type: ignore[operator]
    return time.monotonic() - started


def main() -> None:
    settings = load_settings(target="kind", state_dir=Path("/tmp/bgh-bench-kind"))
    host = docker_host.ensure(cache_dir=settings.cache_dir, report=print)
    docker = Docker(host.client, log_dir=settings.cache_dir / "kind" / "logs")
    nodes = NodeImageBuilder(docker, cache_dir=settings.cache_dir, report=print)
    images = LocalImages(nodes, services_dir=SERVICES_DIR, report=print)
    target = KindTarget(settings, report=print)
    services = list(target.images)

    nodes.build_binaries()
    listed = docker.run("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split()
    # Every image sharing the services' build layers goes, compose's too, or the classic
    # builder's cache would make the cold build a warm one.
    prefixes = (
        "bgh.local/kind-node:", "bgh.local/golang:", "bgh.local/static:",
        "ghcr.io/bluegreen-harness/", "bluegreen-harness/",
    )
    stale = [ref for ref in listed if ref.startswith(prefixes)]
    if stale:
        docker.run("rmi", "-f", *stale)
    # The classic builder keeps its cache as untagged images; they go too.
    docker.run("image", "prune", "-f")
    node_cold = _timed(nodes.ensure)
    node_warm = _timed(nodes.ensure)
    node_reference = nodes.ensure().reference
    images_cold = _timed(lambda: images.service_images(services, local_bases=True))
    images_warm = _timed(lambda: images.service_images(services, local_bases=True))

    kind = str(builds_path(settings.cache_dir))
    target.root.mkdir(parents=True, exist_ok=True)
    target.config_file.write_text(yaml.safe_dump(target.cluster_config(built_node_image=True)))
    subprocess.run([kind, "delete", "cluster", "--name", "bgh"], capture_output=True, check=False)
    creates = []
    for _ in range(2):
        creates.append(
            _timed(
                lambda: subprocess.run(
                    [
                        *(kind, "create", "cluster", "--name", "bgh"),
                        *("--config", str(target.config_file), "--image", node_reference),
                        *("--kubeconfig", str(target.kubeconfig), "--wait", "180s"),
                    ],
                    check=True,
                    capture_output=True,
                )
            )
        )
        delete = [kind, "delete", "cluster", "--name", "bgh"]
        subprocess.run(delete, check=True, capture_output=True)

    first_builds = []
    for component in (*binaries.NODE_COMPONENTS, binaries.KIND_CLI):
        info = component.install_dir(settings.cache_dir / "kind") / "BUILD-INFO"
        took = info.read_text().splitlines()[1] if info.exists() else "not recorded"
        first_builds.append(f"| first build: {component.name} {component.version} | {took} |")

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_section(
        "kind target on a machine that cannot pull (issue: kind target, executed)",
        f"""
Measured {now} by `python benchmarks/bench_kind.py` on 2 shared CPUs, Linux
{platform.release()}, Docker {host.server_version}, kind {kind_version(kind)}.

| measurement | result |
|---|---|
| node image, cold (root filesystems, Go binaries cached) | {node_cold:.0f} s |
| node image, warm (`docker image inspect`) | {node_warm:.1f} s |
| service images ({len(services)}: Go base, every service and version), cold | {images_cold:.0f} s |
| service images, warm (Docker's layer cache) | {images_warm:.1f} s |
| `kind create cluster` from the node image, Ready (2 runs) | {creates[0]:.1f}, {creates[1]:.1f} s |
{chr(10).join(first_builds)}
""",
    )


def builds_path(cache_dir: Path) -> Path:
    return binaries.KIND_CLI.install_dir(cache_dir / "kind") / "kind"


def kind_version(kind: str) -> str:
    return subprocess.run([kind, "version"], capture_output=True, text=True).stdout.split()[1]


if __name__ == "__main__":
    main()
