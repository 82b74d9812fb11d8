"""The loopback networks one data plane hands out, claimed so that two data planes never share one.

A lone data plane gives pods addresses from 127.1.0.0/16 and Services from 127.2.0.0/16 (the
demo's Services answer on 127.2.0.x:3000). A second local target on the machine (another state
directory) runs a data plane of its own; were both to hand out 127.1.0.1, their pods would
collide. So each data plane claims a slot for as long as it runs, the first one free: slot ``n``
gives pods 127.(2n+1).0.0/16 and Services 127.(2n+2).0.0/16. The claim is an abstract Unix
socket named after the slot: the kernel releases it when the process ends, even by SIGKILL, and
abstract sockets belong to the network namespace, exactly the scope in which loopback addresses
collide.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from harness.errors import TargetError

SLOTS = 63  # 127.1.0.0 to 127.126.255.255
CLAIM_NAME = "bgh-dataplane-networks-{slot}"


@dataclass(frozen=True)
class Networks:
    """A slot held by this process: where its pods and Services get their addresses."""

    slot: int
    pods: ipaddress.IPv4Network
    services: ipaddress.IPv4Network
    claim: socket.socket

    def release(self) -> None:
        self.claim.close()


def claim_networks(*, slots: int = SLOTS) -> Networks:
    """The first slot no other process in this network namespace holds; a TargetError when
    every one is taken."""
    for slot in range(slots):
        claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            claim.bind("\0" + CLAIM_NAME.format(slot=slot))
        except OSError:
            claim.close()
            continue
        return Networks(
            slot,
            ipaddress.IPv4Network(f"127.{2 * slot + 1}.0.0/16"),
            ipaddress.IPv4Network(f"127.{2 * slot + 2}.0.0/16"),
            claim,
        )
    raise TargetError(
        f"every one of the {slots} loopback network slots of the data plane is held by another "
        "data plane on this machine (see `ss -xlp | grep bgh-dataplane`); stop one with `bgh down`"
    )
