"""What ``bgh up`` recorded for the commands after it: the loopback ports, in ``state.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TargetError


@dataclass(frozen=True)
class State:
    """The ports of one local target, by name (``prometheus_port``, ``kube_apiserver_port``...)."""

    file: Path

    def read(self) -> dict[str, int]:
        try:
            ports: dict[str, int] = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        return ports

    def write(self, ports: dict[str, int]) -> None:
        self.file.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")

    def port(self, key: str) -> int:
        """A recorded port; a TargetError saying to run ``bgh up`` when there is none."""
        port = self.read().get(key)
        if port is None:
            raise TargetError(
                f"the local target has no {key.replace('_', ' ')} recorded in {self.file}; "
                "run `bgh up` first"
            )
        return port
