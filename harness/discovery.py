"""Where gateway A's active and preview Services answer, found from a cluster someone else runs.

On the existing target the settings may name both URLs (``BGH_GATEWAY_URL``,
``BGH_GATEWAY_PREVIEW_URL``); those always win. A side they leave out is looked up from the
objects that expose its Service, first match wins:

1. the Service itself, ``type: LoadBalancer``: ``http://<ingress ip or hostname>:<port>``;
2. an Ingress (networking.k8s.io/v1) with a rule whose backend is the Service:
   ``http(s)://<host><path>`` (https when a ``tls`` entry lists the host);
3. an Istio VirtualService bound to a Gateway (not only ``mesh``) that routes to the Service:
   ``http(s)://<host>`` for its first host without a wildcard (https when the Gateway has a
   server on 443 for it);
4. the Service, ``type: NodePort``: ``http://<a node's ExternalIP, else InternalIP>:<nodePort>``;
5. the Service's cluster DNS name, ``http://<name>.<namespace>.svc.cluster.local:<port>``,
   which answers only from inside the cluster (the nightly CronJob in docs/nightly.md).

The URL found is logged with where it came from, so a probe that cannot reach it says why it
tried that address.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError, HarnessError, NotFound
from harness.kube import (
    INGRESS,
    ISTIO_GATEWAY,
    NODE,
    SERVICE,
    VIRTUAL_SERVICE,
    ApiError,
    Kind,
    Kube,
)

log = logging.getLogger("bgh.discovery")

Obj = Mapping[str, Any]
_VARIABLES = {"active": "BGH_GATEWAY_URL", "preview": "BGH_GATEWAY_PREVIEW_URL"}


@dataclass(frozen=True)
class Found:
    """One side's URL and which object gave it."""

    url: str
    source: str


def _port(service: Obj) -> Mapping[str, Any]:
    ports = (service.get("spec") or {}).get("ports") or [{}]
    return dict(ports[0])


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _from_load_balancer(service: Obj) -> Found | None:
    spec, status = service.get("spec") or {}, service.get("status") or {}
    if spec.get("type") != "LoadBalancer":
        return None
    for ingress in (status.get("loadBalancer") or {}).get("ingress") or []:
        address = ingress.get("ip") or ingress.get("hostname")
        if address:
            port = _port(service).get("port", 80)
            return Found(f"http://{address}:{port}", f"LoadBalancer Service {_name(service)}")
    return None


def _from_ingress(service_name: str, ingresses: Iterable[Obj]) -> Found | None:
    for ingress in ingresses:
        spec = ingress.get("spec") or {}
        tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
        for rule in spec.get("rules") or []:
            host = rule.get("host")
            if not host or host.startswith("*"):
                continue
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = (path.get("backend") or {}).get("service") or {}
                if backend.get("name") == service_name:
                    scheme = "https" if host in tls_hosts else "http"
                    prefix = str(path.get("path") or "/").rstrip("/")
                    return Found(f"{scheme}://{host}{prefix}", f"Ingress {_name(ingress)}")
    return None


def _routes_to(virtual_service: Obj, service_name: str, namespace: str) -> bool:
    spec = virtual_service.get("spec") or {}
    short = {service_name, f"{service_name}.{namespace}", f"{service_name}.{namespace}.svc"}
    short.add(f"{service_name}.{namespace}.svc.cluster.local")
    for kind in ("http", "tcp", "tls"):
        for route in spec.get(kind) or []:
            for destination in route.get("route") or []:
                if (destination.get("destination") or {}).get("host") in short:
                    return True
    return False


def _from_istio(
    service_name: str, namespace: str, virtual_services: Iterable[Obj], gateways: Sequence[Obj]
) -> Found | None:
    for virtual_service in virtual_services:
        spec = virtual_service.get("spec") or {}
        bound = [g for g in spec.get("gateways") or [] if g != "mesh"]
        if not bound or not _routes_to(virtual_service, service_name, namespace):
            continue
        hosts = [h for h in spec.get("hosts") or [] if "*" not in h]
        if not hosts:
            continue
        names = {g.rpartition("/")[2] for g in bound}
        secure = any(
            int((server.get("port") or {}).get("number") or 0) == 443
            for gateway in gateways
            if _name(gateway) in names
            for server in (gateway.get("spec") or {}).get("servers") or []
        )
        scheme = "https" if secure else "http"
        return Found(
            f"{scheme}://{hosts[0]}",
            f"Istio VirtualService {_name(virtual_service)} on Gateway {', '.join(sorted(names))}",
        )
    return None


def _from_node_port(service: Obj, nodes: Iterable[Obj]) -> Found | None:
    if (service.get("spec") or {}).get("type") != "NodePort":
        return None
    node_port = _port(service).get("nodePort")
    if not node_port:
        return None
    for wanted in ("ExternalIP", "InternalIP"):
        for node in nodes:
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == wanted and address.get("address"):
                    return Found(
                        f"http://{address['address']}:{node_port}",
                        f"NodePort Service {_name(service)} on node {_name(node)}",
                    )
    return None


def find_url(
    service: Obj,
    *,
    namespace: str,
    ingresses: Sequence[Obj] = (),
    virtual_services: Sequence[Obj] = (),
    gateways: Sequence[Obj] = (),
    nodes: Sequence[Obj] = (),
) -> Found:
    """Where ``service`` answers, from the objects that expose it (the order in the docstring)."""
    name = _name(service)
    found = (
        _from_load_balancer(service)
        or _from_ingress(name, ingresses)
        or _from_istio(name, namespace, virtual_services, gateways)
        or _from_node_port(service, nodes)
    )
    if found is not None:
        return found
    port = _port(service).get("port", 80)
    return Found(
        f"http://{name}.{namespace}.svc.cluster.local:{port}",
        f"ClusterIP Service {name} (its cluster DNS name: answers only inside the cluster)",
    )


def _list(kube: Kube, kind: Kind, *, all_namespaces: bool = False) -> list[dict[str, Any]]:
    """The objects of ``kind``; none when the cluster lacks the kind (no Istio) or this identity
    may not list it (the read-only nightly identity cannot list Nodes)."""
    try:
        return kube.list(kind, all_namespaces=all_namespaces)[0]
    except (NotFound, ApiError) as exc:
        log.info("gateway discovery: cannot list %s (%s); skipping them", kind.plural, exc)
        return []


class ClusterServices:
    """Gateway A's URLs on the existing target: the settings' first, then found from the
    cluster once (on first use) and kept for the run."""

    def __init__(
        self, connect: Callable[[], Kube], given: Mapping[str, str], names: Mapping[str, str]
    ) -> None:
        self.connect = connect  # the cluster is reached only when a URL must be found there
        self.given = dict(given)
        self.names = dict(names)  # side -> Service name
        self._found: dict[str, Found] = {}
        self._lock = threading.Lock()

    def locate(self, side: str) -> str:
        if side in self.given:
            return self.given[side]
        with self._lock:
            if side not in self._found:
                try:
                    self._found[side] = self._discover(self.names[side])
                except HarnessError as exc:
                    variable = _VARIABLES.get(side, "BGH_GATEWAY_URL")
                    raise ConfigError(
                        f"gateway A's {side} URL is not set and was not found from the cluster "
                        f"({exc}); set {variable} (e.g. {variable}=https://{side}.demo.example.com)"
                    ) from exc
                found = self._found[side]
                log.info("gateway A %s: %s (from %s)", side, found.url, found.source)
            return self._found[side].url

    def _discover(self, service_name: str) -> Found:
        kube = self.connect()
        service = kube.get(SERVICE, service_name)
        return find_url(
            service,
            namespace=kube.namespace,
            ingresses=_list(kube, INGRESS),
            virtual_services=_list(kube, VIRTUAL_SERVICE),
            gateways=_list(kube, ISTIO_GATEWAY, all_namespaces=True),
            nodes=_list(kube, NODE, all_namespaces=True)
            if (service.get("spec") or {}).get("type") == "NodePort"
            else [],
        )

    def sources(self) -> dict[str, str]:
        """Where each side's URL came from, for the report."""
        found = {side: f"{f.url} (from {f.source})" for side, f in self._found.items()}
        return {**found, **{side: f"{url} (from the settings)" for side, url in self.given.items()}}
