"""What ``bgh up`` recorded for the commands after it (the loopback ports, in ``state.json``), and
the lock that keeps two commands from changing one state directory at once."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
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


@dataclass(frozen=True)
class StateLock:
    """One command at a time changes a state directory: ``up`` and ``down`` hold this lock
    (``flock``, released by the kernel when its holder exits, even by SIGKILL). The file says
    who holds it, so the command refused can name it."""

    file: Path

    @contextlib.contextmanager
    def held(self, command: str) -> Iterator[None]:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with self.file.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "a process that has not said who it is"
                raise TargetError(
                    f"{self.file.parent} is in use by {holder}; wait for it to finish, or run "
                    "this with another BGH_STATE_DIR"
                ) from None
            handle.seek(0)
            handle.truncate()
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
            handle.write(f"`{command}` (pid {os.getpid()}, started {started})\n")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
