"""One pod's process: the real service binary, started, probed, restarted, stopped like a kubelet.

The binary runs with the pod's own loopback address as ``HOST``, so every pod listens on its real
container ports without clashing. Readiness is the service's ``/readyz``, probed as the kubelet
probes it: after each start a short capped backoff until the first success (HTTP has no watch),
then once every ``PROBE_PERIOD`` seconds for as long as the process runs; ``FAILURE_THRESHOLD``
failures in a row make a ready process not ready, one success makes it ready again. A process
that exits is not ready at once, is restarted with a doubling back-off (1 s up to 30 s, like
CrashLoopBackOff) and every exit is recorded, so nobody probes a dead pod for ever without being
told why. Whoever owns the process hears of every change (``on_change``); the data plane writes
it back to the pod's status in the API (harness/dataplane/plane.py).

Every pod's probes go through one client the owner gives (``probe_client``): building an
``httpx.AsyncClient`` loads a CA bundle, about 30 ms of CPU, and one per pod start did that on the
data plane's only event loop, the loop every hop through a Service or sidecar waits on, just when
a release starts its pods and users are browsing.

Each process gets SIGKILL when the data plane dies (its parent-death signal, set by util-linux's
``setpriv --pdeathsig`` before the binary runs), so a killed data plane leaves no pod holding its
addresses; ``bgh down`` also stops whatever runs from the data plane's binaries directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.errors import log_tail

log = logging.getLogger("bgh.dataplane")

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# The kubelet's defaults are 10 s and 3; a shorter period so a hung pod is noticed within a
# runbook's step, not half a minute later.
PROBE_PERIOD = 1.0
PROBE_TIMEOUT = 1.0
FAILURE_THRESHOLD = 3


def probe_client() -> httpx.AsyncClient:
    """The client every readiness probe of a data plane shares; built once, as it is costly.

    A new connection per probe, as the kubelet's HTTP prober makes, and no limit on how many
    pods are probed at once.
    """
    return httpx.AsyncClient(
        timeout=PROBE_TIMEOUT,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        trust_env=False,
    )


@dataclass(frozen=True)
class Exit:
    """One time the process ended without being asked to."""

    code: int | None
    at: float
    log_tail: str


@dataclass
class PodProcess:
    """The supervised process of one pod (namespace/name, identified by its uid)."""

    namespace: str
    name: str
    uid: str
    argv: list[str]
    env: Mapping[str, str]
    address: str
    ready_url: str
    log_path: Path
    probe_client: httpx.AsyncClient
    on_change: Callable[[], None] = lambda: None
    ready: bool = False
    has_been_ready: bool = False
    pid: int | None = None
    restarts: int = 0
    exits: list[Exit] = field(default_factory=list)
    _process: asyncio.subprocess.Process | None = None
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def start(self) -> None:
        """Run and supervise the process in the background of the running loop."""
        self._task = asyncio.create_task(self._supervise(), name=f"pod {self.key}")

    async def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM (the services drain in-flight requests), SIGKILL after ``grace`` seconds."""
        self._stopping = True
        self._set_ready(False)
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _supervise(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stopping:
            started = time.monotonic()
            await self._run_once()
            if self._stopping:
                return
            if time.monotonic() - started > 2 * MAX_BACKOFF:
                backoff = FIRST_BACKOFF  # it ran fine for a while: not a crash loop
            self.restarts += 1
            log.warning(
                "pod %s: process exited (code %s); restart %d in %.0fs; log: %s",
                self.key,
                self.exits[-1].code if self.exits else None,
                self.restarts,
                backoff,
                self.log_path,
            )
            self.on_change()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _run_once(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            out.write(f"\n$ {' '.join(self.argv)}  (HOST={self.address})\n".encode())
            out.flush()
            try:
                self._process = await asyncio.create_subprocess_exec(
                    *_dies_with_parent(self.argv),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    env=dict(self.env),
                    start_new_session=True,
                )
            except OSError as exc:
                out.write(f"could not start: {exc}\n".encode())
                self.exits.append(Exit(None, time.time(), str(exc)))
                return
        self.pid = self._process.pid
        self.on_change()
        probe = asyncio.create_task(self._probe_readiness(self._process))
        code = await self._process.wait()
        probe.cancel()
        self._set_ready(False)
        self.pid = None
        if not self._stopping:
            self.exits.append(Exit(code, time.time(), log_tail(self.log_path, lines=10)))

    async def _probe_readiness(self, process: asyncio.subprocess.Process) -> None:
        delay = 0.02
        failures = 0
        answered = False  # since this start
        while process.returncode is None:
            try:
                ok = (await self.probe_client.get(self.ready_url)).is_success
            except httpx.HTTPError:
                ok = False
            failures = 0 if ok else failures + 1
            answered |= ok
            if ok:
                self._set_ready(True)
            elif failures >= FAILURE_THRESHOLD:
                self._set_ready(False)
            await asyncio.sleep(PROBE_PERIOD if answered else delay)
            delay = min(delay * 2, 0.5)

    def _set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            self.has_been_ready |= ready
            log.info("pod %s: %s", self.key, "ready" if ready else "not ready")
            self.on_change()


def _dies_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run with SIGKILL as its parent-death signal (a kubelet's pods die with it too)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("setpriv (util-linux) not found: pod processes may outlive the data plane")
        return argv
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]
