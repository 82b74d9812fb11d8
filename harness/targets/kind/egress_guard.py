"""Nothing a container sends may leave the machine: the host rule that rejects forwarding from
Docker's bridges to any interface that is not a Docker bridge, and the reading of that rule and
its counters.

The rule lives in its own chain, ``BGH-EGRESS-GUARD``, for IPv4 and IPv6. It is jumped to from
``FORWARD`` (so it holds before dockerd has ever run) and from Docker's ``DOCKER-USER`` chain
(which dockerd keeps first in ``FORWARD`` and never flushes). Matching on the outgoing interface
rather than on a list of subnets keeps it right when kind creates a network later: a packet
from a bridge may only be forwarded to a bridge (``docker0`` or a user network's ``br-*``), so it
reaches only subnets a local bridge owns. Verification reads the rules and their packet counters
with ``iptables -S -v``; nothing here sends a packet.

The node image carries the second half (``NODE_GUARD_SCRIPT``): inside each node, traffic still
addressed to the Service CIDR after kube-proxy's translation, and traffic to a pod CIDR no local
bridge owns, is rejected before it can follow the node's default route to the host.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.errors import TargetError

CHAIN = "BGH-EGRESS-GUARD"
# docker0 is Docker's default bridge; every user-defined network (kind's "kind") is a br-<id>.
BRIDGES = ("docker0", "br-+")
PARENTS = ("FORWARD", "DOCKER-USER")


@dataclass(frozen=True)
class Family:
    """One address family's iptables command and the ICMP answer its REJECT sends back."""

    name: str
    command: str
    reject_with: str


FAMILIES = (
    Family("IPv4", "iptables", "icmp-admin-prohibited"),
    Family("IPv6", "ip6tables", "icmp6-adm-prohibited"),
)

Run = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)


def chain_rules(family: Family) -> list[tuple[str, ...]]:
    """The guard chain's rules, in order: bridge to bridge returns, everything else is rejected."""
    rules: list[tuple[str, ...]] = [("-o", bridge, "-j", "RETURN") for bridge in BRIDGES]
    rules.append(("-j", "REJECT", "--reject-with", family.reject_with))
    return rules


def jump_rules() -> list[tuple[str, tuple[str, ...]]]:
    """(parent chain, rule) for every jump into the guard: from each bridge, in each parent."""
    return [(parent, ("-i", bridge, "-j", CHAIN)) for parent in PARENTS for bridge in BRIDGES]


def install(*, run: Run = _run) -> list[str]:
    """Create or repair the guard in both families; return what was changed, one line each.

    Idempotent: an intact guard is left as it is (its counters survive)."""
    changed: list[str] = []
    for family in FAMILIES:
        ipt = (family.command, "-w")
        for chain in (CHAIN, "DOCKER-USER"):
            if run((*ipt, "-S", chain)).returncode != 0:
                _must(run, (*ipt, "-N", chain))
                changed.append(f"{family.name}: created chain {chain}")
        if read(family, run=run).chain_rules != [
            _spec(CHAIN, rule) for rule in chain_rules(family)
        ]:
            _must(run, (*ipt, "-F", CHAIN))
            for rule in chain_rules(family):
                _must(run, (*ipt, "-A", CHAIN, *rule))
            changed.append(
                f"{family.name}: {CHAIN} rejects forwarding from {', '.join(BRIDGES)} "
                "to any non-bridge interface"
            )
        for parent, rule in jump_rules():
            if run((*ipt, "-C", parent, *rule)).returncode != 0:
                _must(run, (*ipt, "-I", parent, "1", *rule))
                changed.append(f"{family.name}: {parent} jumps to {CHAIN} from {rule[1]}")
    return changed


@dataclass(frozen=True)
class GuardState:
    """What one family's rules say, read back from the kernel."""

    family: str
    chain_rules: list[str]
    jumps: list[str]
    rejected_packets: int | None
    missing: list[str]

    @property
    def complete(self) -> bool:
        return not self.missing


def read(family: Family, *, run: Run = _run) -> GuardState:
    """Read one family's guard: its chain, the jumps into it and the REJECT rule's counter."""
    listing = run((family.command, "-w", "-S", "-v"))
    if listing.returncode != 0:
        raise TargetError(
            f"cannot read the {family.name} rules with `{family.command} -S -v` "
            f"(exit {listing.returncode}): {listing.stderr.strip()}"
        )
    chain: list[str] = []
    jumps: list[str] = []
    rejected: int | None = None
    for line in listing.stdout.splitlines():
        words = shlex.split(line)
        if words[:2] == ["-A", CHAIN]:
            spec, counters = _strip_counters(words)
            chain.append(spec)
            if "REJECT" in words:
                rejected = counters[0] if counters else None
        elif len(words) > 2 and words[0] == "-A" and words[-2:] == ["-j", CHAIN]:
            jumps.append(_strip_counters(words)[0])
    wanted_chain = [_spec(CHAIN, rule) for rule in chain_rules(family)]
    missing = [] if chain == wanted_chain else [f"{CHAIN} rules {wanted_chain}, found {chain}"]
    missing += [
        f"jump {_spec(parent, rule)}"
        for parent, rule in jump_rules()
        if _spec(parent, rule) not in jumps
    ]
    return GuardState(family.name, chain, jumps, rejected, missing)


def read_all(*, run: Run = _run) -> list[GuardState]:
    return [read(family, run=run) for family in FAMILIES]


def require(*, run: Run = _run) -> list[GuardState]:
    """The guard's state in both families, or a ``TargetError`` naming what is missing."""
    states = read_all(run=run)
    missing = [f"{s.family}: {m}" for s in states for m in s.missing]
    if missing:
        raise TargetError(
            "the egress guard is not in place, so containers could reach outside this machine; "
            "refusing to start the kind target.\n  missing: "
            + "\n  missing: ".join(missing)
            + "\n  fix: `bgh docker-setup` installs it (as root), then run `bgh up --target kind`"
        )
    return states


def _spec(chain: str, rule: Sequence[str]) -> str:
    return " ".join(("-A", chain, *rule))


def _strip_counters(words: list[str]) -> tuple[str, tuple[int, ...]]:
    """``-A X -i docker0 -c 12 840 -j Y`` -> (``-A X -i docker0 -j Y``, (12, 840))."""
    if "-c" in words:
        at = words.index("-c")
        counters = (int(words[at + 1]), int(words[at + 2]))
        words = words[:at] + words[at + 3 :]
        return " ".join(words), counters
    return " ".join(words), ()


def _must(run: Run, argv: Sequence[str]) -> None:
    result = run(argv)
    if result.returncode != 0:
        raise TargetError(
            f"installing the egress guard failed: `{' '.join(argv)}` exited "
            f"{result.returncode}: {result.stderr.strip()}"
        )


# Installed in the node image as /usr/local/bin/bgh-node-guard and run by a systemd unit ordered
# before containerd, so it holds before the first pod: the Service CIDR and the pod CIDR come
# from /etc/default/bgh-node-guard, written with the cluster's kind config.
NODE_GUARD_SCRIPT = """\
#!/bin/sh
# Reject what kube-proxy did not translate (a packet still addressed to the Service CIDR) and
# what is addressed to a pod CIDR no bridge on this node owns: untranslated, both would follow
# the node's default route to the host and on to the machine's uplink.
set -eu
. /etc/default/bgh-node-guard
for ipt in iptables; do
  $ipt -w -N BGH-NODE-GUARD 2>/dev/null || $ipt -w -F BGH-NODE-GUARD
  $ipt -w -A BGH-NODE-GUARD -d "$SERVICE_CIDR" -j REJECT --reject-with icmp-admin-prohibited
  $ipt -w -A BGH-NODE-GUARD -d "$NODE_POD_CIDR" -j RETURN
  $ipt -w -A BGH-NODE-GUARD -d "$POD_CIDR" -j REJECT --reject-with icmp-admin-prohibited
  for parent in OUTPUT FORWARD; do
    $ipt -w -C "$parent" -j BGH-NODE-GUARD 2>/dev/null || $ipt -w -I "$parent" 1 -j BGH-NODE-GUARD
  done
done
"""

NODE_GUARD_UNIT = """\
[Unit]
Description=Reject untranslated Service and off-node pod traffic before any pod runs
DefaultDependencies=no
Before=containerd.service kubelet.service
After=local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/bin/bgh-node-guard

[Install]
WantedBy=multi-user.target
RequiredBy=containerd.service
"""
