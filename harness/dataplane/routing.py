"""Where one call inside the local data plane goes: Services, their endpoints, VirtualServices.

Pure: frozen views of Pods, Services and VirtualServices in, a ``Decision`` out. Istio's
semantics, from istio/api ``networking/v1alpha3/virtual_service.proto``:

- routes of a protocol are evaluated in order and the first match wins;
- a route's ``match`` list is ORed, the conditions inside one match block are ANDed, and a route
  without ``match`` matches everything;
- ``sourceLabels`` selects on the calling workload's labels, so traffic from outside the mesh
  (``caller=None``) matches no rule that names source labels;
- a short host name is read in the VirtualService's namespace, not the Service's.

Only what the demo system needs is implemented: mesh-only VirtualServices with http and tcp
routes, ``sourceLabels`` and ``port`` matches, and one destination per route (a Service, an
optional port). Anything else in a VirtualService raises ``ConfigError`` naming the field, never
silently routes somewhere Istio would not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import ConfigError, NotFound
from harness.kube import Pod, Service

Protocol = Literal["http", "tcp"]

CLUSTER_DOMAIN = "svc.cluster.local"
MESH = "mesh"
EXPORT_TO = frozenset({"*", "."})

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class NoRoute(NotFound):
    """A VirtualService covers the host but none of its rules matches the call.

    Istio answers such an HTTP request with 404 (response flag NR); the harness does not guess
    a fallback either.
    """


# -- the VirtualService view -----------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """One match block: every condition present must hold (AND)."""

    source_labels: Mapping[str, str]
    port: int | None

    def matches(self, caller: Pod | None, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if not self.source_labels:
            return True
        if caller is None:
            return False
        return all(caller.labels.get(k) == v for k, v in self.source_labels.items())


@dataclass(frozen=True)
class Destination:
    host: str
    port: int | None


@dataclass(frozen=True)
class Route:
    """One http or tcp rule: any of its match blocks (OR), or none for "everything"."""

    protocol: Protocol
    index: int
    name: str
    match: tuple[Match, ...]
    destination: Destination

    @property
    def label(self) -> str:
        return f"{self.protocol}[{self.index}]" + (f' "{self.name}"' if self.name else "")

    def matches(self, caller: Pod | None, port: int) -> bool:
        return not self.match or any(m.matches(caller, port) for m in self.match)


@dataclass(frozen=True)
class VirtualService:
    name: str
    namespace: str
    hosts: tuple[str, ...]
    http: tuple[Route, ...]
    tcp: tuple[Route, ...]

    def routes(self, protocol: Protocol) -> tuple[Route, ...]:
        return self.http if protocol == "http" else self.tcp


_SPEC_FIELDS = ("hosts", "gateways", "exportTo", "http", "tcp")
_HTTP_ROUTE_FIELDS = ("name", "match", "route")
_TCP_ROUTE_FIELDS = ("match", "route")
_HTTP_MATCH_FIELDS = ("name", "sourceLabels", "port", "gateways")
_TCP_MATCH_FIELDS = ("sourceLabels", "port", "gateways")
_ROUTE_DESTINATION_FIELDS = ("destination", "weight")
_DESTINATION_FIELDS = ("host", "port")
_PORT_FIELDS = ("number",)


class _Reader:
    """Reads one VirtualService's spec, refusing every field the local data plane lacks."""

    def __init__(self, name: str) -> None:
        self.name = name

    def refuse(self, path: str, problem: str, supported: str) -> ConfigError:
        return ConfigError(
            f'VirtualService "{self.name}": {path} {problem}; the local data plane supports '
            f"{supported}. Remove it, or run this scenario on the kind target with real Istio."
        )

    def only(self, obj: Any, path: str, allowed: Sequence[str]) -> Mapping[str, Any]:
        if not isinstance(obj, Mapping):
            raise self.refuse(path, f"is {type(obj).__name__}, not a mapping", "mappings here")
        for key, value in obj.items():
            if key not in allowed and value not in (None, [], {}):
                raise self.refuse(
                    f"{path}.{key}", "is not implemented", "only " + ", ".join(allowed)
                )
        return obj

    def items(self, obj: Any, path: str) -> list[Any]:
        if obj is None:
            return []
        if not isinstance(obj, list):
            raise self.refuse(path, f"is {type(obj).__name__}, not a list", "a list here")
        return obj

    def mesh_only(self, obj: Any, path: str) -> None:
        for i, gateway in enumerate(self.items(obj, path)):
            if gateway != MESH:
                raise self.refuse(
                    f"{path}[{i}]", f"names gateway {gateway!r}", f'only the gateway "{MESH}"'
                )

    def port(self, obj: Any, path: str) -> int:
        if isinstance(obj, bool) or not isinstance(obj, int):
            raise self.refuse(path, f"is {obj!r}, not a port number", "integer ports")
        return obj

    def spec(self, obj: Mapping[str, Any]) -> tuple[tuple[str, ...], list[Route], list[Route]]:
        spec = self.only(obj.get("spec") or {}, "spec", _SPEC_FIELDS)
        hosts = tuple(
            self.host(h, f"spec.hosts[{i}]") for i, h in enumerate(spec.get("hosts") or [])
        )
        if not hosts:
            raise self.refuse("spec.hosts", "is empty", "one or more Service hosts")
        self.mesh_only(spec.get("gateways"), "spec.gateways")
        for i, export in enumerate(self.items(spec.get("exportTo"), "spec.exportTo")):
            if export not in EXPORT_TO:
                raise self.refuse(
                    f"spec.exportTo[{i}]", f"is {export!r}", 'exportTo "*" or "." only'
                )
        http = [
            self.route("http", i, r)
            for i, r in enumerate(self.items(spec.get("http"), "spec.http"))
        ]
        tcp = [
            self.route("tcp", i, r) for i, r in enumerate(self.items(spec.get("tcp"), "spec.tcp"))
        ]
        return hosts, http, tcp

    def host(self, host: Any, path: str) -> str:
        if not isinstance(host, str) or split_host(host, "namespace") is None:
            raise self.refuse(
                path,
                f"is {host!r}",
                "Kubernetes Service names (service, service.namespace, "
                f"service.namespace.{CLUSTER_DOMAIN}); no wildcards, IPs or external hosts",
            )
        return host

    def route(self, protocol: Protocol, index: int, obj: Any) -> Route:
        path = f"spec.{protocol}[{index}]"
        fields = _HTTP_ROUTE_FIELDS if protocol == "http" else _TCP_ROUTE_FIELDS
        route = self.only(obj, path, fields)
        matches = tuple(
            self.match(protocol, f"{path}.match[{i}]", m)
            for i, m in enumerate(self.items(route.get("match"), f"{path}.match"))
        )
        return Route(
            protocol=protocol,
            index=index,
            name=str(route.get("name") or ""),
            match=matches,
            destination=self.destination(path, route.get("route")),
        )

    def match(self, protocol: Protocol, path: str, obj: Any) -> Match:
        fields = _HTTP_MATCH_FIELDS if protocol == "http" else _TCP_MATCH_FIELDS
        match = self.only(obj, path, fields)
        self.mesh_only(match.get("gateways"), f"{path}.gateways")
        labels = match.get("sourceLabels") or {}
        if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
            raise self.refuse(f"{path}.sourceLabels", f"is {labels!r}", "a map of strings")
        port = match.get("port")
        return Match(
            source_labels=dict(labels),
            port=None if port is None else self.port(port, f"{path}.port"),
        )

    def destination(self, path: str, obj: Any) -> Destination:
        weighted = self.items(obj, f"{path}.route")
        if not weighted:
            raise self.refuse(f"{path}.route", "is missing", "routes with one destination")
        targets = [self.target(f"{path}.route[{i}]", w) for i, w in enumerate(weighted)]
        if len(targets) == 1:
            return targets[0][0]
        weights = [weight for _, weight in targets]
        full = [i for i, weight in enumerate(weights) if weight == 100]
        if len(full) != 1 or sum(weights) != 100:
            raise self.refuse(
                f"{path}.route",
                f"splits traffic by weights {weights}",
                "one destination, or weights that send 100 to one of them",
            )
        return targets[full[0]][0]

    def target(self, path: str, obj: Any) -> tuple[Destination, int]:
        target = self.only(obj, path, _ROUTE_DESTINATION_FIELDS)
        destination = self.only(
            target.get("destination"), f"{path}.destination", _DESTINATION_FIELDS
        )
        host = self.host(destination.get("host"), f"{path}.destination.host")
        port = destination.get("port")
        number = None
        if port is not None:
            port = self.only(port, f"{path}.destination.port", _PORT_FIELDS)
            number = self.port(port.get("number"), f"{path}.destination.port.number")
        weight = target.get("weight") or 0
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise self.refuse(f"{path}.weight", f"is {weight!r}", "integer weights")
        return Destination(host=host, port=number), weight


def virtual_service_from(obj: Mapping[str, Any]) -> VirtualService:
    """The routing a VirtualService asks for; ``ConfigError`` for any field not implemented."""
    meta = obj.get("metadata") or {}
    reader = _Reader(str(meta.get("name", "")))
    hosts, http, tcp = reader.spec(obj)
    return VirtualService(
        name=reader.name,
        namespace=str(meta.get("namespace") or ""),
        hosts=hosts,
        http=tuple(http),
        tcp=tuple(tcp),
    )


def split_host(host: str, namespace: str) -> tuple[str, str] | None:
    """(Service, namespace) a host names, a short name read in ``namespace``; None if no Service.

    ``localhost`` names the pod itself, never a Service.
    """
    if host == "localhost":
        return None
    name = host.removesuffix("." + CLUSTER_DOMAIN).removesuffix(".svc")
    parts = name.split(".")
    if len(parts) == 1:
        parts.append(namespace)
    if len(parts) != 2 or not all(_DNS_LABEL.match(p) for p in parts):
        return None
    return parts[0], parts[1]


def protocol_of(port_name: str) -> Protocol | None:
    """The protocol Istio selects from a Service port's name (``http``, ``http-metrics``,
    ``tcp-x``, ...); None when the name says nothing (Istio would sniff; this data plane does not).
    """
    prefix = port_name.split("-", 1)[0].lower()
    if prefix in ("http", "http2", "grpc", "grpc-web"):
        return "http"
    if prefix in ("tcp", "tls", "mongo", "mysql", "redis"):
        return "tcp"
    return None


def container_port(pod: Pod, target_port: str) -> int | None:
    """The pod's port a Service's ``targetPort`` (a number or a container port name) means."""
    if target_port.isdigit():
        return int(target_port)
    return pod.ports.get(target_port)


# -- the router ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Where one call goes: the Service chosen, its port, why, and the pods behind it now."""

    service: Service
    port: int
    target_port: str
    rule: str
    endpoints: tuple[Pod, ...]


def is_endpoint(pod: Pod, service: Service) -> bool:
    """Whether ``service`` sends traffic to ``pod`` now: same namespace, selected, Running,
    ready, not deleting."""
    return (
        pod.namespace == service.namespace
        and bool(service.selector)
        and all(pod.labels.get(k) == v for k, v in service.selector.items())
        and pod.phase == "Running"
        and pod.ready
        and not pod.deleting
    )


class Router:
    """A snapshot of one namespace's Pods, Services and VirtualServices, answering routing."""

    def __init__(
        self,
        *,
        namespace: str,
        pods: Iterable[Pod],
        services: Iterable[Service],
        virtual_services: Iterable[VirtualService],
    ) -> None:
        self.namespace = namespace
        self.pods = tuple(pods)
        self.services = {s.name: s for s in services}
        self.virtual_services: dict[tuple[str, str], VirtualService] = {}
        for vs in virtual_services:
            for host in vs.hosts:
                key = split_host(host, vs.namespace or namespace)
                if key is None:
                    raise ConfigError(
                        f'VirtualService "{vs.name}": host "{host}" names no Kubernetes Service.'
                    )
                other = self.virtual_services.setdefault(key, vs)
                if other is not vs:
                    raise ConfigError(
                        f'VirtualServices "{other.name}" and "{vs.name}" both route host '
                        f'"{key[0]}" in namespace "{key[1]}"; the local data plane supports one '
                        "VirtualService per host (Istio merges them only on gateways)."
                    )

    def endpoints(self, service: Service) -> tuple[Pod, ...]:
        """The pods ``service`` selects now that are Running, ready and not deleting."""
        return tuple(p for p in self.pods if is_endpoint(p, service))

    def service(self, host: str, *, namespace: str | None = None) -> Service:
        """The Service a host names, a short name read in ``namespace`` (default: the router's)."""
        key = split_host(host, namespace or self.namespace)
        if key is not None and key[1] == self.namespace and key[0] in self.services:
            return self.services[key[0]]
        listing = ", ".join(sorted(self.services)) or "none"
        elsewhere = (
            f'; the local data plane serves namespace "{self.namespace}" only'
            if key is not None and key[1] != self.namespace
            else ""
        )
        raise NotFound(
            f'no Service for host "{host}" in namespace "{self.namespace}"{elsewhere}; '
            f"Services there: {listing}."
        )

    def resolve(
        self, caller: Pod | None, host: str, port: int, protocol: Protocol | None = None
    ) -> Decision:
        """Where a call from ``caller`` (None: from outside the mesh) to ``host:port`` goes.

        ``protocol`` None: the one the Service port's name selects (``protocol_of``).
        """
        own = self.service(host)
        _target_port(own, port)
        vs = self.virtual_services.get((own.name, self.namespace))
        if vs is None:
            return self._decision(own, port, f'no VirtualService for "{own.name}": its Service')
        if protocol is None:
            name = next(n for n, number, _ in own.ports if number == port)
            protocol = protocol_of(name)
            if protocol is None:
                raise ConfigError(
                    f'Service "{own.name}" port {port} is named {name!r}, which selects no '
                    f'protocol; VirtualService "{vs.name}" routes it, so name the port for its '
                    "protocol as Istio expects (http, http-<suffix>, tcp, tcp-<suffix>)."
                )
        routes = vs.routes(protocol)
        if not routes:
            return self._decision(
                own, port, f'VirtualService "{vs.name}" has no {protocol} routes: its Service'
            )
        for route in routes:
            if route.matches(caller, port):
                target = self.service(route.destination.host, namespace=vs.namespace or None)
                return self._decision(
                    target,
                    route.destination.port or port,
                    f'VirtualService "{vs.name}" {route.label}',
                )
        who = f'pod "{caller.name}" labels {dict(caller.labels)}' if caller else "outside the mesh"
        tried = ", ".join(r.label for r in routes)
        raise NoRoute(
            f'VirtualService "{vs.name}" has no {protocol} route for a call from {who} to '
            f"{host}:{port}; rules tried in order: {tried}."
        )

    def _decision(self, service: Service, port: int, rule: str) -> Decision:
        return Decision(
            service=service,
            port=port,
            target_port=_target_port(service, port),
            rule=rule,
            endpoints=self.endpoints(service),
        )


def _target_port(service: Service, port: int) -> str:
    for _name, number, target in service.ports:
        if number == port:
            return target
    listing = ", ".join(f"{name or '-'} {number}" for name, number, _ in service.ports) or "none"
    raise NotFound(f'Service "{service.name}" has no port {port}; ports there: {listing}.')
