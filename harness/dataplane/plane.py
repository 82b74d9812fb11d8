"""The data plane: pod processes, Service listeners and sidecar-like egress, kept in step with the
API by watches.

What it does for the objects the informers report, after every change:

- **Pods.** Every Running, not-deleting pod whose container image is a demo service
  (``.../gateway-a:1.1.0``) gets its own loopback address (127.1.x.y; harness/dataplane/networks.py
  says which network when several data planes run) and a process of the real binary with the
  container's environment: the image's own ``ENV`` (``VERSION`` from the image tag,
  ``IMAGE_GREETING`` from ``services/builds.yaml``; see ``harness.images``), then the pod's env,
  then ``HOST`` (the pod address) and ``POD_NAME``.
  Environment values that name a Service (``http://service-b:3000``, ``service-c:3000``) are
  pointed at a loopback listener owned by that pod, the sidecar's role: calls through it are
  routed with the pod as the caller, so VirtualService ``sourceLabels`` rules see its labels.
- **Services.** Every Service with a selector gets its own loopback address (127.2.x.y) listening
  on its ports, the kube-proxy role: each new connection goes to a ready pod the selector matches
  at that moment, round robin. A selector switch applies to the next connection; connections
  already open finish where they started.
- **Prometheus.** Every pod process is written to a file_sd targets file with the labels ``pod``,
  ``namespace``, ``app``, ``rollouts_pod_template_hash`` and ``root_version``.
- **Pod status.** Once a pod's process has been ready or has exited, its readiness, restart count
  and state are written back to the pod's status in the API, as the kubelet writes them
  (harness/dataplane/status.py), so the ReplicaSet and Rollouts controllers see a crashed or hung
  pod as not ready and count it again when it recovers. Until then kwok's Ready stands.

Anything it cannot honour (a VirtualService field it does not implement, a Service port it cannot
bind, a binary that keeps exiting) is logged, kept under ``problems`` in the state it serves, and
the affected calls are refused rather than sent somewhere Istio or Kubernetes would not send them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.dataplane.forwarder import Endpoint, Forwarder
from harness.dataplane.pods import PodProcess, probe_client
from harness.dataplane.routing import (
    Router,
    VirtualService,
    container_port,
    is_endpoint,
    split_host,
    virtual_service_from,
)
from harness.dataplane.status import ContainerView, readiness_patch
from harness.errors import HarnessError
from harness.images import Builds
from harness.kube import (
    HASH_LABEL,
    POD,
    SERVICE,
    VIRTUAL_SERVICE,
    Kind,
    Pod,
    Service,
    pod_from,
    service_from,
)

log = logging.getLogger("bgh.dataplane")

DEMO_SERVICES = ("gateway-a", "service-b", "service-c")
# Where every binary serves /readyz and /metrics when the pod does not say (services/README.md).
DEFAULT_OPS_PORT = 9090
# A lone data plane's networks (slot 0 of harness/dataplane/networks.py).
POD_NETWORK = ipaddress.IPv4Network("127.1.0.0/16")
SERVICE_NETWORK = ipaddress.IPv4Network("127.2.0.0/16")

_SERVICE_REFERENCE = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*://)?(?P<host>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)"
    r":(?P<port>[0-9]{1,5})(?P<rest>/.*)?$"
)

Key = tuple[str, str]  # (namespace, name)
StatusWriter = Callable[[str, str, dict[str, Any]], None]
"""(namespace, pod name, merge patch of its ``status`` subresource); blocking, run off the loop."""
RETRY_STATUS_AFTER = 1.0


def image_service(image: str) -> tuple[str, str] | None:
    """(demo service, version) an image runs, e.g. ``ghcr.io/x/service-b:1.1.0`` -> service-b,
    1.1.0; None for any other image. A digest-only reference has version ``latest``."""
    reference = image.split("@", 1)[0]
    repository, _, tag = reference.rpartition(":")
    if "/" in tag or not repository:  # "host:port/name" without a tag
        repository, tag = reference, ""
    service = repository.rsplit("/", 1)[-1]
    if service not in DEMO_SERVICES:
        return None
    return service, tag or "latest"


class Addresses:
    """Loopback addresses handed out per key from one network, reused after release."""

    def __init__(self, network: ipaddress.IPv4Network) -> None:
        self._hosts = network.hosts()
        self._free: list[str] = []
        self._taken: dict[str, str] = {}

    def take(self, key: str) -> str:
        if key not in self._taken:
            self._taken[key] = self._free.pop() if self._free else str(next(self._hosts))
        return self._taken[key]

    def release(self, key: str) -> None:
        address = self._taken.pop(key, None)
        if address is not None:
            self._free.append(address)


@dataclass
class ServiceListener:
    """One Service's loopback address and a forwarder per port."""

    service: Service
    address: str
    forwarders: dict[int, Forwarder] = field(default_factory=dict)


@dataclass
class RunningPod:
    """A pod the data plane runs: its view, process and egress listeners."""

    pod: Pod
    service: str
    version: str
    process: PodProcess
    metrics_port: int
    egress: dict[tuple[str, int], Forwarder] = field(default_factory=dict)
    container: str = ""


class DataPlane:
    """Reconciles processes and listeners with the Pods, Services and VirtualServices seen."""

    KINDS = (POD, SERVICE, VIRTUAL_SERVICE)

    def __init__(
        self,
        *,
        binaries: Path,
        run_dir: Path,
        targets_file: Path | None = None,
        namespaces: frozenset[str] | None = None,
        builds: Builds | None = None,
        write_status: StatusWriter | None = None,
        pod_network: ipaddress.IPv4Network = POD_NETWORK,
        service_network: ipaddress.IPv4Network = SERVICE_NETWORK,
    ) -> None:
        self.binaries = binaries
        self.builds = builds if builds is not None else Builds.load()
        self.run_dir = run_dir
        self.targets_file = targets_file
        self.namespaces = namespaces  # None: every namespace
        self.write_status = write_status  # None: the API's pod status is left alone
        self.objects: dict[str, dict[Key, Mapping[str, Any]]] = {k.plural: {} for k in self.KINDS}
        self.synced: set[str] = set()
        self.pods: dict[str, RunningPod] = {}  # by uid
        self.listeners: dict[Key, ServiceListener] = {}
        self.routers: dict[str, Router] = {}
        self.refused_hosts: dict[Key, str] = {}  # (service, namespace) -> why its VS is refused
        self.problems: dict[str, str] = {}
        self.networks = {"pods": str(pod_network), "services": str(service_network)}
        self._pod_addresses = Addresses(pod_network)
        self._service_addresses = Addresses(service_network)
        self._round_robin: dict[Key, itertools.count[int]] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._dirty = asyncio.Event()
        self._targets_written = ""
        self._writing: set[str] = set()  # uids whose status write is in flight
        self._written: dict[str, ContainerView] = {}  # by uid: what the API was last told
        self._probe_client = probe_client()  # shared by every pod's readiness probe

    # -- input ------------------------------------------------------------------------------

    def apply(self, kind: Kind, event: str, obj: Any) -> None:
        """Record one informer event; ``reconcile`` acts on it."""
        store = self.objects[kind.plural]
        if event == "SYNC":
            store.clear()
            for item in obj:
                store[_key(item)] = item
            self.synced.add(kind.plural)
        elif event == "DELETED":
            store.pop(_key(obj), None)
        else:
            store[_key(obj)] = obj
        self._dirty.set()

    @property
    def ready(self) -> bool:
        return self.synced >= {k.plural for k in self.KINDS}

    def changed(self) -> None:
        """A pod process changed (ready, exited): refresh targets and state."""
        self._dirty.set()

    async def run(self) -> None:
        """Reconcile after every batch of changes, until cancelled."""
        try:
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                if self.ready:
                    await self.reconcile()
        finally:
            await self.close()

    # -- reconciling ------------------------------------------------------------------------

    async def reconcile(self) -> None:
        pods = [pod_from(o) for o in self.objects[POD.plural].values()]
        services = [service_from(o) for o in self.objects[SERVICE.plural].values()]
        self._route(pods, services)
        await self._run_pods(pods)
        await self._listen(services)
        self._write_targets()
        self._report_readiness()

    def _route(self, pods: list[Pod], services: list[Service]) -> None:
        self.refused_hosts = {}
        by_namespace: dict[str, list[VirtualService]] = {}
        for key, raw in self.objects[VIRTUAL_SERVICE.plural].items():
            problem = f"VirtualService {key[0]}/{key[1]}"
            try:
                by_namespace.setdefault(key[0], []).append(virtual_service_from(raw))
                self.problems.pop(problem, None)
            except HarnessError as exc:
                self._problem(problem, str(exc))
                for host in (raw.get("spec") or {}).get("hosts") or []:
                    target = split_host(str(host), key[0])
                    if target is not None:
                        self.refused_hosts[target] = str(exc)
        routers = {}
        for namespace in {p.namespace for p in pods} | {s.namespace for s in services}:
            problem = f"namespace {namespace}"
            try:
                routers[namespace] = Router(
                    namespace=namespace,
                    pods=[p for p in pods if p.namespace == namespace],
                    services=[s for s in services if s.namespace == namespace],
                    virtual_services=by_namespace.get(namespace, []),
                )
                self.problems.pop(problem, None)
            except HarnessError as exc:
                self._problem(problem, str(exc))
        self.routers = routers

    def _wanted(self, pod: Pod) -> tuple[str, str] | None:
        if self.namespaces is not None and pod.namespace not in self.namespaces:
            return None
        if pod.phase != "Running" or pod.deleting:
            return None
        for image in pod.images.values():
            found = image_service(image)
            if found is not None:
                return found
        return None

    async def _run_pods(self, pods: list[Pod]) -> None:
        seen = set()
        for pod in pods:
            wanted = self._wanted(pod)
            if wanted is None:
                continue
            seen.add(pod.uid)
            running = self.pods.get(pod.uid)
            if running is None:
                self.pods[pod.uid] = await self._start(pod, *wanted)
            else:
                running.pod = pod  # labels may change; routing reads the latest
        for uid in [uid for uid in self.pods if uid not in seen]:
            running = self.pods.pop(uid)
            task = asyncio.create_task(self._stop_pod(uid, running))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def _start(self, pod: Pod, service: str, version: str) -> RunningPod:
        address = self._pod_addresses.take(pod.uid)
        env = {**self.builds.image_env(service, version), **pod.env}
        egress: dict[tuple[str, int], Forwarder] = {}
        for name, value in env.items():
            env[name] = await self._egress(pod, value, egress)
        env |= {"HOST": address, "POD_NAME": pod.name}
        ops_port = self._ops_port(pod, env)
        metrics_port = int(pod.annotations.get("prometheus.io/port") or ops_port)
        process = PodProcess(
            namespace=pod.namespace,
            name=pod.name,
            uid=pod.uid,
            argv=[str(self.binaries / service)],
            env=env,
            address=address,
            ready_url=f"http://{address}:{ops_port}/readyz",
            log_path=self.run_dir / "pods" / pod.namespace / f"{pod.name}.log",
            probe_client=self._probe_client,
            on_change=self.changed,
        )
        container = next(
            (name for name, image in pod.images.items() if image_service(image) is not None), ""
        )
        running = RunningPod(pod, service, version, process, metrics_port, egress, container)
        log.info(
            "pod %s/%s: starting %s %s on %s (egress: %s)",
            pod.namespace,
            pod.name,
            service,
            version,
            address,
            ", ".join(f"{h}:{p}" for h, p in egress) or "none",
        )
        process.start()
        return running

    def _ops_port(self, pod: Pod, env: Mapping[str, str]) -> int:
        if pod.readiness_port:
            found = container_port(pod, pod.readiness_port)
            if found is not None:
                return found
        value = env.get("METRICS_PORT", "")
        return int(value) if value.isdigit() else DEFAULT_OPS_PORT

    async def _egress(self, pod: Pod, value: str, egress: dict[tuple[str, int], Forwarder]) -> str:
        """``value`` with a Service reference pointed at the pod's own egress listener."""
        match = _SERVICE_REFERENCE.match(value)
        if match is None or split_host(match["host"], pod.namespace) is None:
            return value
        host, port = match["host"], int(match["port"])
        forwarder = egress.get((host, port))
        if forwarder is None:
            uid = pod.uid

            def pick() -> Endpoint | None:
                return self._pick_egress(uid, host, port)

            forwarder = Forwarder(f"{pod.namespace}/{pod.name} -> {host}:{port}", pick)
            await forwarder.start()
            egress[(host, port)] = forwarder
        return f"{match['scheme'] or ''}127.0.0.1:{forwarder.port}{match['rest'] or ''}"

    async def _stop_pod(self, uid: str, running: RunningPod, *, most: float = 20.0) -> None:
        grace = min(running.pod.termination_grace_seconds, most)
        log.info("pod %s: gone; stopping its process (grace %ds)", running.process.key, grace)
        await running.process.stop(grace=grace)
        await asyncio.gather(*(f.close(drain=grace) for f in running.egress.values()))
        self._pod_addresses.release(uid)
        self._dirty.set()

    async def _listen(self, services: list[Service]) -> None:
        wanted = {
            (s.namespace, s.name): s
            for s in services
            if s.selector and (self.namespaces is None or s.namespace in self.namespaces)
        }
        for key in [k for k in self.listeners if k not in wanted]:
            await self._close_listener(self.listeners.pop(key))
        for key, service in wanted.items():
            listener = self.listeners.get(key)
            ports = {number for _, number, _ in service.ports}
            if listener is not None and set(listener.forwarders) != ports:
                await self._close_listener(self.listeners.pop(key))
                listener = None
            if listener is None:
                listener = ServiceListener(service, self._service_addresses.take(_text(key)))
                self.listeners[key] = listener
                for port in sorted(ports):
                    await self._open(listener, port)
            listener.service = service

    async def _open(self, listener: ServiceListener, port: int) -> None:
        service = listener.service
        key = (service.namespace, service.name)

        def pick() -> Endpoint | None:
            return self._pick_service(key, port)

        forwarder = Forwarder(
            f"Service {_text(key)}:{port}", pick, host=listener.address, port=port
        )
        problem = f"Service {_text(key)} port {port}"
        try:
            await forwarder.start()
        except OSError as exc:
            self._problem(problem, f"cannot listen on {listener.address}:{port}: {exc}")
            return
        self.problems.pop(problem, None)
        listener.forwarders[port] = forwarder

    async def _close_listener(self, listener: ServiceListener) -> None:
        key = (listener.service.namespace, listener.service.name)
        self._service_addresses.release(_text(key))
        for forwarder in listener.forwarders.values():
            task = asyncio.create_task(forwarder.close())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    # -- pod status, as the kubelet writes it ------------------------------------------------

    def _report_readiness(self) -> None:
        """Write each pod's readiness back where the API does not say it yet."""
        write = self.write_status
        if write is None:
            return
        for uid in [uid for uid in self._written if uid not in self.pods]:
            del self._written[uid]
        for uid, running in self.pods.items():
            process = running.process
            if uid in self._writing or not (process.has_been_ready or process.exits):
                continue  # a write in flight, or a first start with nothing to say yet
            raw = self.objects[POD.plural].get((running.pod.namespace, running.pod.name))
            if raw is None:
                continue
            code = process.exits[-1].code if process.exits else None
            view = ContainerView(
                name=running.container,
                ready=process.ready,
                restarts=process.restarts,
                running=process.pid is not None,
                # The kubelet reports a signal as 128 + its number (SIGKILL: 137).
                last_exit_code=128 - code if code is not None and code < 0 else code,
            )
            # The informer's copy lags a write by one event: what was written counts as said.
            patch = readiness_patch(raw, view, now=_now())
            if patch is None or self._written.get(uid) == view:
                continue
            self._writing.add(uid)
            task = asyncio.create_task(self._write(write, uid, running, view, patch))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def _write(
        self,
        write: StatusWriter,
        uid: str,
        running: RunningPod,
        view: ContainerView,
        patch: dict[str, Any],
    ) -> None:
        pod = running.pod
        problem = f"pod {pod.namespace}/{pod.name} status"
        try:
            await asyncio.to_thread(write, pod.namespace, pod.name, patch)
        except HarnessError as exc:
            if uid in self.pods:  # a pod being deleted has no status worth writing
                self._problem(problem, f"cannot write its readiness to the API: {exc}")
                asyncio.get_running_loop().call_later(RETRY_STATUS_AFTER, self._dirty.set)
        else:
            self._written[uid] = view
            self.problems.pop(problem, None)
            ready = patch["status"]["conditions"]
            log.info(
                "pod %s/%s: wrote Ready=%s to the API",
                pod.namespace,
                pod.name,
                next(c["status"] for c in ready if c["type"] == "Ready"),
            )
        finally:
            self._writing.discard(uid)

    # -- choosing endpoints (called per connection) -----------------------------------------

    def _pick_service(self, key: Key, port: int) -> Endpoint | None:
        """kube-proxy: a ready pod the Service selects now; no VirtualService applies."""
        listener = self.listeners.get(key)
        if listener is None:
            return None
        service = listener.service
        for _name, number, target in service.ports:
            if number == port:
                return self._choose(key, service, target)
        return None

    def _pick_egress(self, uid: str, host: str, port: int) -> Endpoint | None:
        """The sidecar: route a call from pod ``uid`` through the VirtualServices."""
        caller = self.pods.get(uid)
        if caller is None:
            return None
        namespace = caller.pod.namespace
        problem = f"egress {namespace}/{caller.pod.name} -> {host}:{port}"
        router = self.routers.get(namespace)
        try:
            if router is None:
                raise HarnessError(
                    self.problems.get(f"namespace {namespace}", "no Services in the namespace")
                )
            own = router.service(host)
            refused = self.refused_hosts.get((own.name, namespace))
            if refused is not None:
                raise HarnessError(f"refused: {refused}")
            decision = router.resolve(caller.pod, host, port)
        except HarnessError as exc:
            self._problem(problem, str(exc))
            return None
        self.problems.pop(problem, None)
        key = (namespace, decision.service.name)
        return self._choose(key, decision.service, decision.target_port)

    def _choose(self, key: Key, service: Service, target_port: str) -> Endpoint | None:
        candidates = []
        for uid, running in self.pods.items():
            if running.process.ready and is_endpoint(running.pod, service):
                number = container_port(running.pod, target_port)
                if number is not None:
                    candidates.append((uid, running.process.address, number))
        if not candidates:
            return None
        candidates.sort()
        turn = next(self._round_robin.setdefault(key, itertools.count()))
        _, address, number = candidates[turn % len(candidates)]
        return address, number

    # -- outputs ----------------------------------------------------------------------------

    def _write_targets(self) -> None:
        if self.targets_file is None:
            return
        groups = [
            {
                "targets": [f"{r.process.address}:{r.metrics_port}"],
                "labels": {
                    "namespace": r.pod.namespace,
                    "pod": r.pod.name,
                    "app": r.pod.labels.get("app", r.service),
                    "rollouts_pod_template_hash": r.pod.labels.get(HASH_LABEL, ""),
                    "root_version": r.pod.labels.get("root-version", ""),
                },
            }
            for r in sorted(self.pods.values(), key=lambda r: (r.pod.namespace, r.pod.name))
        ]
        text = json.dumps(groups, indent=2) + "\n"
        if text == self._targets_written:
            return
        self.targets_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.targets_file.with_suffix(".tmp")
        temporary.write_text(text)
        os.replace(temporary, self.targets_file)  # Prometheus never reads half a file
        self._targets_written = text

    def state(self) -> dict[str, Any]:
        """What runs where: the document ``GET /state`` serves and probes read."""
        pods = [
            {
                "namespace": r.pod.namespace,
                "name": r.pod.name,
                "service": r.service,
                "version": r.version,
                "address": r.process.address,
                "pid": r.process.pid,
                "ready": r.process.ready,
                "restarts": r.process.restarts,
                "last_exit": (
                    {"code": r.process.exits[-1].code, "log_tail": r.process.exits[-1].log_tail}
                    if r.process.exits
                    else None
                ),
                "log": str(r.process.log_path),
                "egress": {f"{h}:{p}": f"127.0.0.1:{f.port}" for (h, p), f in r.egress.items()},
            }
            for r in sorted(self.pods.values(), key=lambda r: (r.pod.namespace, r.pod.name))
        ]
        services = [
            {
                "namespace": key[0],
                "name": key[1],
                "address": listener.address,
                "ports": sorted(listener.forwarders),
                "selector": dict(listener.service.selector),
                "endpoints": sorted(
                    r.pod.name
                    for r in self.pods.values()
                    if r.process.ready and is_endpoint(r.pod, listener.service)
                ),
                "connections": {
                    str(port): {
                        "accepted": f.counters.accepted,
                        "refused": f.counters.refused,
                        "failed": f.counters.failed,
                    }
                    for port, f in listener.forwarders.items()
                },
            }
            for key, listener in sorted(self.listeners.items())
        ]
        return {
            "ready": self.ready,
            "networks": self.networks,
            "pods": pods,
            "services": services,
            "problems": dict(sorted(self.problems.items())),
        }

    def _problem(self, key: str, message: str) -> None:
        if self.problems.get(key) != message:
            log.warning("%s: %s", key, message)
            self.problems[key] = message

    async def close(self) -> None:
        """Stop every pod process and listener (drained), as ``bgh down`` expects."""
        for uid, running in list(self.pods.items()):
            self.pods.pop(uid)
            # Shutting down: a short grace, so the supervisor never has to SIGKILL this process
            # and leave pod processes behind.
            task = asyncio.create_task(self._stop_pod(uid, running, most=5.0))
            self._stopping.add(task)
        for listener in self.listeners.values():
            await self._close_listener(listener)
        self.listeners.clear()
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        await self._probe_client.aclose()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _text(key: Key) -> str:
    return f"{key[0]}/{key[1]}"
