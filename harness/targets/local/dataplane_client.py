"""The local data plane as its clients see it: its ``/state``, the Services it serves, pod logs.

The data plane (``harness.dataplane``, a process of its own) runs each Running pod's service
binary and serves every Kubernetes Service on a loopback address. This reads what it reports over
HTTP, which has no watch: ``wait_for`` is a short capped backoff with the last state in its error.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from harness.errors import NotFound, TargetError, indent_tail
from harness.probes import Side
from harness.waits import poll


class DataPlaneUnreachable(TargetError):
    """The data plane did not answer ``/state``: at ``url``, for ``reason``."""

    def __init__(self, url: str, reason: str, log: Path) -> None:
        super().__init__(
            f"the data plane does not answer at {url}: {reason}; `bgh status` shows whether it "
            f"runs, its log is {log}"
        )
        self.url = url
        self.reason = reason


class DataPlaneClient:
    """HTTP client of one local target's data plane."""

    def __init__(self, url: Callable[[], str], *, log: Path, run_dir: Path) -> None:
        self._url = url
        self.log = log
        self.run_dir = run_dir

    @property
    def url(self) -> str:
        """Base URL of the data plane's ``/healthz`` and ``/state``."""
        return self._url()

    def read(self) -> dict[str, Any]:
        """The data plane's ``/state``: pods, their addresses and logs, Service listeners."""
        url = f"{self.url}/state"
        try:
            response = httpx.get(url, timeout=5.0, trust_env=False)
            response.raise_for_status()
            state: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DataPlaneUnreachable(url, str(exc), self.log) from exc
        return state

    def wait_for(
        self, ok: Callable[[dict[str, Any]], bool], *, what: str, within: float
    ) -> dict[str, Any]:
        """Read ``/state`` until ``ok`` holds; HTTP has no watch, so a short capped backoff."""
        state, met = poll(self.read, ok, within=within, cap=0.5)
        if not met:
            raise TargetError(
                f"the data plane did not reach {what} within {within:.0f}s; last state:\n"
                + indent_tail(json.dumps(state, indent=2), lines=60)
            )
        return state

    def service_url(self, namespace: str, name: str, port: int) -> str:
        """``http://address:port`` where the data plane serves a Service."""
        state = self.read()
        served = [s for s in state["services"] if s["namespace"] == namespace]
        for service in served:
            if service["name"] == name and port in service["ports"]:
                return f"http://{service['address']}:{port}"
        listing = ", ".join(f"{s['name']} {s['ports']}" for s in served) or "none"
        raise NotFound(
            f'the data plane serves no Service "{name}" port {port} in namespace "{namespace}"; '
            f"served there: {listing}. Problems: {state['problems'] or 'none'}"
        )

    def pod_logs(self, namespace: str, name: str) -> str | None:
        """The log of a pod's process (the last 200 kB), or None if the data plane ran none."""
        path = self.run_dir / "pods" / namespace / f"{name}.log"
        try:
            return path.read_text(errors="replace")[-200_000:]
        except OSError:
            return None

    def crash_pod(self, namespace: str, name: str) -> int:
        """SIGKILL the process the data plane runs for a pod, as a container crashes; the data
        plane writes the pod not ready and restarts it (CrashLoopBackOff's first 1 s). The pid."""
        pods = [p for p in self.read()["pods"] if p["namespace"] == namespace]
        found = next((p for p in pods if p["name"] == name), None)
        if found is None or not found["pid"]:
            running = ", ".join(p["name"] for p in pods if p["pid"]) or "none"
            raise NotFound(
                f'the data plane runs no process for pod "{name}" in namespace "{namespace}"; '
                f"running there: {running}"
            )
        pid = int(found["pid"])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError as exc:  # it exited between the read and the kill
            raise TargetError(
                f'pod "{name}" in namespace "{namespace}": its process {pid} was gone before '
                f"the kill; the data plane's log is {self.log}"
            ) from exc
        return pid

    def summary(self) -> str:
        """One line for ``bgh status``: pods, restarts, Services, problems, the loopback networks
        they have addresses in; or why not."""
        try:
            state = self.read()
        except DataPlaneUnreachable as exc:
            return f"the data plane does not answer at {exc.url}: {exc.reason}"
        pods = state["pods"]
        ready = sum(1 for p in pods if p["ready"])
        restarts = sum(p["restarts"] for p in pods)
        problems = len(state["problems"])
        networks = state.get("networks") or {}
        return (
            f"{len(pods)} pod processes ({ready} ready, {restarts} restarts), "
            f"{len(state['services'])} Services, {problems} problems; addresses: pods "
            f"{networks.get('pods', '?')}, Services {networks.get('services', '?')}"
        )


class LocalServices:
    """Where the local data plane serves gateway A's Services, remembered for a second."""

    TTL = 1.0

    def __init__(
        self,
        dataplane: DataPlaneClient,
        namespace: str,
        *,
        service: str = "gateway-a",
        port: int = 3000,
    ) -> None:
        self.dataplane = dataplane
        self.namespace = namespace
        self.names = {Side.ACTIVE: service, Side.PREVIEW: f"{service}-preview"}
        self.port = port
        self._known: dict[Side, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def locate(self, side: Side) -> str:
        with self._lock:
            known = self._known.get(side)
            if known is not None and time.monotonic() - known[1] < self.TTL:
                return known[0]
            url = self.dataplane.service_url(self.namespace, self.names[side], self.port)
            self._known[side] = (url, time.monotonic())
            return url
