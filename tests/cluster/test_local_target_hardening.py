"""The local target keeps to itself: loopback sockets only, owner-only state and keys.

Run after ``bgh up`` (the session fixture): every TCP and UDP socket listening in a process the
target started, or in one of their children (the data plane's pods), is on a loopback address.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.targets.local import LocalTarget
from tests.cluster.conftest import Cluster

pytestmark = pytest.mark.cluster

SOCKET = re.compile(
    r"^(?P<proto>\S+)\s+\S+\s+\d+\s+\d+\s+(?P<local>\S+)\s+\S+\s+users:(?P<users>.*)$"
)


def _local(cluster: Cluster) -> LocalTarget:
    if not isinstance(cluster.target, LocalTarget):
        pytest.skip("only the local target starts processes on this machine")
    return cluster.target


def _descendants(roots: set[int]) -> set[int]:
    parents: dict[int, int] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat_file.parent.name)] = int(fields[1])
    found = set(roots)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return found


def _listening(pids: set[int]) -> list[tuple[str, str, str]]:
    """(protocol, local address, process) of every listening socket owned by ``pids``."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.fail("ss (iproute2) is needed to list listening sockets: apt-get install iproute2")
    out = subprocess.run(
        [ss, "-H", "-l", "-t", "-u", "-n", "-p"], capture_output=True, text=True, check=True
    ).stdout
    sockets = []
    for line in out.splitlines():
        match = SOCKET.match(line)
        if not match:
            continue
        owners = re.findall(r'\("([^"]+)",pid=(\d+)', match["users"])
        for name, pid in owners:
            if int(pid) in pids:
                sockets.append((match["proto"], match["local"], f"{name}[{pid}]"))
    return sorted(set(sockets))


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]").split("%")[0]
    return host.startswith("127.") or host == "::1"


def _upstream_wildcards(target: LocalTarget) -> set[tuple[str, int]]:
    """(process, port) that upstream binds to every interface with no flag to change it:
    argo-rollouts controller/controller.go (a constant ``listenAddr = "0.0.0.0:%d"``) and Argo
    CD's controller/appcontroller.go (``"0.0.0.0:%d"`` for metrics). Metrics and health only."""
    ports = target.state.read()
    allowed = {
        ("rollouts-controller", ports["rollouts_metrics_port"]),
        ("rollouts-controller", ports["rollouts_healthz_port"]),
    }
    if "argocd_controller_metrics_port" in ports:
        allowed.add(("argocd-application-controller", ports["argocd_controller_metrics_port"]))
    return allowed


def test_every_socket_the_local_target_opens_is_on_loopback(cluster: Cluster) -> None:
    target = _local(cluster)
    optional = set(target.argocd.processes()) if not target.argocd.running() else set()
    processes = [p for p in target.processes() if p not in optional]
    assert [p.name for p in processes if not p.is_running()] == [], "see `bgh status`"
    owners = {}
    for process in processes:
        pid = process.pid()
        assert pid is not None
        owners.update(dict.fromkeys(_descendants({pid}), process.name))
    sockets = _listening(set(owners))
    print("\n".join(f"{proto:4} {local:24} {owner}" for proto, local, owner in sockets))
    assert sockets, "no listening socket found for the target's processes; ss saw none of them"
    exposed = {
        (owners[int(owner.rsplit("[", 1)[1].rstrip("]"))], int(local.rsplit(":", 1)[1]))
        for _proto, local, owner in sockets
        if not _is_loopback(local)
    }
    assert exposed <= _upstream_wildcards(target)


def test_the_state_root_and_keys_are_owner_only(cluster: Cluster) -> None:
    target = _local(cluster)
    assert stat.S_IMODE(target.root.stat().st_mode) == 0o700
    keys = [target.kubeconfig, *target.control_plane.cluster_dir().rglob("*.key")]
    assert len(keys) > 1, "kwokctl wrote no private keys where expected"
    modes = {str(key): oct(stat.S_IMODE(key.stat().st_mode)) for key in keys}
    assert modes == {str(key): "0o600" for key in keys}
