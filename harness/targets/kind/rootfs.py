"""Debian root filesystems made with ``debootstrap``, for images built where none can be pulled.

Three are used: ``node``, the packages kind's ``images/base/Dockerfile`` installs (containerd,
runc and the CNI plugins from Debian instead of kind's own builds); ``slim``, a minimal base with
iptables and conntrack (kube-proxy's image, Prometheus's, and the stand-in for the services' base
images); and ``python``, Debian's Python for the analysis server's image.
Each lands in ``<cache>/kind/rootfs/<name>-<suite>-<key>/``, the key hashing the package list,
and is made once: debootstrap writes into a staging directory renamed only when it succeeds.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import versions
from harness.errors import ConfigError, TargetError, log_tail

Report = Callable[[str], None]
MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Rootfs:
    name: str
    packages: tuple[str, ...]
    suite: str = versions.DEBIAN_SUITE

    def key(self) -> str:
        text = " ".join((self.suite, MIRROR, *sorted(self.packages)))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def directory(self, cache_dir: Path) -> Path:
        return cache_dir / "kind" / "rootfs" / f"{self.name}-{self.suite}-{self.key()}"


NODE = Rootfs(
    "node",
    (
        "systemd",
        "systemd-sysv",
        "containerd",
        "runc",
        "containernetworking-plugins",
        "iptables",
        "nftables",
        "conntrack",
        "iproute2",
        "ethtool",
        "util-linux",
        "mount",
        "kmod",
        "socat",
        "ca-certificates",
        "curl",
        "jq",
        "procps",
        "libseccomp2",
        "pigz",
    ),
)
SLIM = Rootfs("slim", ("iptables", "conntrack", "ca-certificates"))
# The analysis server's base (analysis/Dockerfile's PYTHON_IMAGE): Debian's Python 3.11 and pip.
PYTHON = Rootfs("python", ("python3", "python3-pip", "python-is-python3", "ca-certificates"))


def ensure(rootfs: Rootfs, *, cache_dir: Path, report: Report) -> Path:
    """The root filesystem's directory, made with debootstrap first when the cache lacks it."""
    directory = rootfs.directory(cache_dir)
    if directory.is_dir():
        return directory
    if shutil.which("debootstrap") is None:
        raise ConfigError(
            "building kind images without a registry needs debootstrap "
            "(apt-get install debootstrap), or a machine that can pull the pinned images"
        )
    logs = cache_dir / "kind" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"debootstrap-{rootfs.name}.log"
    staging = directory.with_name(directory.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(rootfs.packages),
        rootfs.suite,
        str(staging),
        MIRROR,
    ]
    report(
        f"debootstrap {rootfs.name} root filesystem ({rootfs.suite}, {len(rootfs.packages)} "
        f"packages); log {log_path}"
    )
    started = time.monotonic()
    with log_path.open("w") as log:
        result = subprocess.run(
            argv, stdout=log, stderr=subprocess.STDOUT, check=False, timeout=1800
        )
    if result.returncode != 0:
        raise TargetError(
            f"debootstrap of the {rootfs.name} root filesystem failed (exit {result.returncode})"
            f"\n  command: {' '.join(argv)}\n  log: {log_path}\n{log_tail(log_path)}"
        )
    # Package caches are not part of any image.
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (staging / cache).glob("*"):
            if item.is_file():
                item.unlink()
    staging.rename(directory)
    report(f"{rootfs.name} root filesystem made in {time.monotonic() - started:.0f}s")
    return directory
