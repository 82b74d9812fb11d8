"""Docker for the kind target on a machine where none runs yet.

On a normal Docker host nothing here changes anything: a daemon that answers is used as it is.
Where no daemon answers and we are root, it installs Debian's ``docker.io`` when ``dockerd`` is
missing, puts the egress guard in place (``egress_guard.install``) *before* dockerd can start a
container, and starts dockerd, with a runc wrapper as its default runtime when this machine's
capability bounding set lacks ``CAP_SYS_RESOURCE`` (``files/runc-wrapper.py`` says why). It
reports each thing it did, and leaves a marker in ``/run/bgh`` (gone after a reboot, like the
dockerd it describes): on a machine with that marker the kind target refuses to start while the
guard is not intact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, TargetError, log_tail
from harness.targets.kind import egress_guard

Report = Callable[[str], None]

MARKER = Path("/run/bgh/dockerd.json")
RUNTIME_NAME = "bgh-runc"
WRAPPER_SOURCE = Path(__file__).parent / "files" / "runc-wrapper.py"
CAP_SYS_RESOURCE = 24  # linux/capability.h
# Debian's client speaks the API of Debian's dockerd; a newer client elsewhere on PATH may not.
DEBIAN_CLIENT = Path("/usr/bin/docker")


@dataclass(frozen=True)
class DockerHost:
    """The Docker daemon the kind target talks to, and whether this harness set it up."""

    client: str
    server_version: str
    set_up_here: bool
    actions: tuple[str, ...] = ()


def _existing_client() -> str | None:
    if DEBIAN_CLIENT.exists() and Path("/usr/sbin/dockerd").exists():
        return str(DEBIAN_CLIENT)
    return shutil.which("docker")


def client() -> str:
    """The docker client to run: Debian's when its dockerd is the one installed, else PATH's."""
    found = _existing_client()
    if found is None:
        raise ConfigError(
            "the kind target needs Docker: no `docker` on PATH. Install Docker, or run "
            "`bgh docker-setup` as root on Debian to install docker.io and start it"
        )
    return found


def server_version(docker: str) -> str | None:
    """The daemon's version, or None when no daemon answers."""
    try:
        result = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=15,
        )
    except subprocess.TimeoutExpired:
        return None
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None


def set_up_here() -> bool:
    return MARKER.exists()


def ensure(*, cache_dir: Path, report: Report, timeout: float = 120.0) -> DockerHost:
    """A Docker daemon that answers, set up as the module docstring says when none does."""
    actions: list[str] = []

    def did(line: str) -> None:
        actions.append(line)
        report(f"docker set-up: {line}")

    docker = _existing_client()
    version = server_version(docker) if docker else None
    if docker is not None and version is not None:
        if set_up_here():
            # dockerd was started here: its containers are only safe behind the guard.
            egress_guard.require()
        return DockerHost(docker, version, set_up_here(), ())
    _require_root("start dockerd")
    if docker is None or shutil.which("dockerd") is None:
        did("installing Debian's docker.io (apt-get install docker.io): dockerd is missing")
        _apt_install("docker.io", cache_dir)
    docker = client()
    for change in egress_guard.install():
        did(f"egress guard: {change}")
    argv = ["dockerd"]
    if not has_capability(CAP_SYS_RESOURCE):
        wrapper = install_runtime_wrapper(cache_dir)
        argv += ["--add-runtime", f"{RUNTIME_NAME}={wrapper}", "--default-runtime", RUNTIME_NAME]
        did(
            f"this machine's capability bounding set lacks CAP_SYS_RESOURCE: dockerd's default "
            f"runtime is {wrapper} (runc without that capability)"
        )
    log_path = cache_dir / "kind" / "logs" / "dockerd.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    version = _wait_for_daemon(docker, process, log_path, timeout=timeout)
    MARKER.parent.mkdir(parents=True, exist_ok=True)
    MARKER.write_text(json.dumps({"pid": process.pid, "argv": argv, "log": str(log_path)}) + "\n")
    did(f"started dockerd {version} (pid {process.pid}): {' '.join(argv)}; log {log_path}")
    egress_guard.require()
    return DockerHost(docker, version, True, tuple(actions))


def has_capability(number: int) -> bool:
    """Whether this process's capability bounding set holds capability ``number``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return bool(int(line.split()[1], 16) >> number & 1)
    return True


def install_runtime_wrapper(cache_dir: Path) -> Path:
    runc = shutil.which("runc") or "/usr/sbin/runc"
    # The system's Python, not a virtualenv's or a version manager's shim: dockerd runs this
    # for every container, long after the command that set it up.
    python = next(
        (p for p in ("/usr/bin/python3", shutil.which("python3")) if p and Path(p).exists()),
        sys.executable,
    )
    path = cache_dir / "kind" / "runtime" / "runc-without-sys-resource"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"#!{python}\n" + WRAPPER_SOURCE.read_text().replace("@RUNC@", runc)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    path.chmod(0o755)
    return path


def _wait_for_daemon(
    docker: str, process: subprocess.Popen[bytes], log_path: Path, *, timeout: float
) -> str:
    # dockerd has no readiness event to watch; this is a probe with a capped backoff.
    deadline = time.monotonic() + timeout
    pause = 0.1
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise TargetError(
                f"dockerd exited with {process.returncode} while starting\n"
                f"  log: {log_path}\n{log_tail(log_path)}"
            )
        version = server_version(docker)
        if version is not None:
            return version
        time.sleep(pause)
        pause = min(pause * 2, 2.0)
    raise TargetError(
        f"dockerd did not answer `docker version` within {timeout:.0f}s\n"
        f"  log: {log_path}\n{log_tail(log_path)}"
    )


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise ConfigError(
            f"no Docker daemon answers, and only root may {what}; start Docker yourself "
            "(e.g. `sudo systemctl start docker`) or run `sudo bgh docker-setup`"
        )


def _apt_install(package: str, cache_dir: Path) -> None:
    log_path = cache_dir / "kind" / "logs" / "apt-docker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log_path.open("w") as log:
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
            result = subprocess.run(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, check=False, timeout=900
            )
            if result.returncode != 0:
                raise TargetError(
                    f"`{' '.join(argv)}` failed (exit {result.returncode})\n"
                    f"  log: {log_path}\n{log_tail(log_path)}"
                )
