"""The egress guard, read back from the kernel: its rules and their counters. Nothing here sends
a packet anywhere; the counters were moved by what the cluster itself tried to send."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness.errors import TargetError
from harness.targets.kind import KindTarget, docker_host, egress_guard
from harness.targets.kind import node_image as node
from harness.targets.kind.docker_host import client

pytestmark = pytest.mark.skipif(
    not docker_host.set_up_here(),
    reason="the egress guard exists only where bgh set Docker up (`bgh docker-setup`); "
    "this machine's Docker was not",
)


def test_the_host_guard_rejects_forwarding_from_docker_bridges_in_both_families() -> None:
    for state in egress_guard.require():
        assert state.chain_rules[-1].endswith(
            "-j REJECT --reject-with "
            + ("icmp-admin-prohibited" if state.family == "IPv4" else "icmp6-adm-prohibited")
        )
        assert state.chain_rules[:2] == [
            f"-A {egress_guard.CHAIN} -o docker0 -j RETURN",
            f"-A {egress_guard.CHAIN} -o br-+ -j RETURN",
        ]
        assert state.rejected_packets is not None, "the REJECT rule's counter could not be read"


def test_docker_user_sends_bridge_traffic_to_the_guard_before_dockers_own_rules() -> None:
    """dockerd keeps DOCKER-USER first in FORWARD; the guard must be jumped to from there."""
    forward = subprocess.run(
        ["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    rules = [line for line in forward if line.startswith("-A FORWARD")]
    assert rules[0] == "-A FORWARD -j DOCKER-USER", rules[:3]
    user = subprocess.run(
        ["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert set(user[1:3]) == {
        f"-A DOCKER-USER -i br-+ -j {egress_guard.CHAIN}",
        f"-A DOCKER-USER -i docker0 -j {egress_guard.CHAIN}",
    }, user


def test_a_missing_jump_is_reported_and_the_kind_target_refuses() -> None:
    """Remove one jump, see ``require`` refuse with what is missing, then repair it."""
    assert os.geteuid() == 0
    rule = ("-i", "docker0", "-j", egress_guard.CHAIN)
    subprocess.run(["iptables", "-w", "-D", "DOCKER-USER", *rule], check=True)
    try:
        with pytest.raises(TargetError, match="refusing to start the kind target") as caught:
            egress_guard.require()
        assert f"jump -A DOCKER-USER -i docker0 -j {egress_guard.CHAIN}" in str(caught.value)
    finally:
        repaired = egress_guard.install()
    assert repaired == [f"IPv4: DOCKER-USER jumps to {egress_guard.CHAIN} from docker0"]
    egress_guard.require()


def test_the_node_guard_rejects_untranslated_service_and_off_node_pod_traffic(
    kind_target: KindTarget,
) -> None:
    """Read inside the node: the chain, its place first in OUTPUT and FORWARD, and its counters.
    (Before kube-proxy's rules exist CoreDNS calls the API server's ClusterIP: the first rule's
    counter is where those packets end.)"""
    node_name = "bgh-control-plane"

    def node_rules(*argv: str) -> list[str]:
        return subprocess.run(
            [client(), "exec", node_name, "iptables", "-w", *argv],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.splitlines()

    chain = [r for r in node_rules("-S", "BGH-NODE-GUARD", "-v") if r.startswith("-A")]
    specs = [
        " ".join(w for i, w in enumerate(r.split()) if not _is_counter(r.split(), i)) for r in chain
    ]
    assert specs == [
        f"-A BGH-NODE-GUARD -d {node.SERVICE_SUBNET} -j REJECT --reject-with icmp-admin-prohibited",
        f"-A BGH-NODE-GUARD -d {node.NODE_POD_SUBNET} -j RETURN",
        f"-A BGH-NODE-GUARD -d {node.POD_SUBNET} -j REJECT --reject-with icmp-admin-prohibited",
    ]
    for parent in ("OUTPUT", "FORWARD"):
        assert f"-A {parent} -j BGH-NODE-GUARD" in node_rules("-S", parent)
    assert all(" -c " in rule for rule in chain), "the node guard's counters could not be read"


def _is_counter(words: list[str], i: int) -> bool:
    return (
        words[i] == "-c" or (i >= 1 and words[i - 1] == "-c") or (i >= 2 and words[i - 2] == "-c")
    )
