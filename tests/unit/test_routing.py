"""Routing in the local data plane, from recorded objects shaped like the API's: no cluster.

The VirtualServices and Services mirror gitops/charts/demo-service; one test renders the chart
with the pinned Helm to keep the two honest.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import gitops
from harness.dataplane.routing import (
    NoRoute,
    Protocol,
    Router,
    VirtualService,
    is_endpoint,
    protocol_of,
    virtual_service_from,
)
from harness.errors import ConfigError, NotFound
from harness.gitops import GitOps
from harness.kube import Pod, Service, pod_from, service_from
from harness.settings import load_settings

NAMESPACE = "demo"
ROOT_VERSION = "v2.1.0"
TREE = Path(__file__).parents[2] / "gitops"
OLD_VIRTUAL_SERVICE = (
    Path(__file__).parents[1] / "fixtures" / "virtualservice-root-version-only.yaml"
)


def pod(
    name: str,
    labels: dict[str, str],
    *,
    phase: str = "Running",
    ready: bool = True,
    deleting: bool = False,
) -> Pod:
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE, "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return pod_from(
        {
            "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "demo:1"}]},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            },
        }
    )


def service(name: str, selector: dict[str, str], *ports: tuple[str, int]) -> Service:
    return service_from(
        {
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "selector": selector,
                "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports],
            },
        }
    )


def http_vs(name: str, port: int) -> dict[str, Any]:
    """As the chart renders an http service's VirtualService."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "hosts": [name],
            "http": [
                {
                    "name": "preview",
                    "match": [{"sourceLabels": {"root-version": ROOT_VERSION}}],
                    "route": [
                        {"destination": {"host": f"{name}-preview", "port": {"number": port}}}
                    ],
                },
                {
                    "name": "active",
                    "route": [{"destination": {"host": name, "port": {"number": port}}}],
                },
            ],
        },
    }


def tcp_vs(name: str, port: int) -> dict[str, Any]:
    """As the chart renders a tcp service's VirtualService."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "hosts": [name],
            "tcp": [
                {
                    "match": [{"sourceLabels": {"root-version": ROOT_VERSION}, "port": port}],
                    "route": [
                        {"destination": {"host": f"{name}-preview", "port": {"number": port}}}
                    ],
                },
                {
                    "match": [{"port": port}],
                    "route": [{"destination": {"host": name, "port": {"number": port}}}],
                },
            ],
        },
    }


# Mid-release: service-b's active ReplicaSet is "old", its preview "new"; gateway A likewise,
# and its preview pods carry the new root version.
HASH = "rollouts-pod-template-hash"
GATEWAY_OLD = pod("gateway-a-old-1", {"app": "gateway-a", HASH: "old", "root-version": "v2.0.0"})
GATEWAY_NEW = pod(
    "gateway-a-new-1", {"app": "gateway-a", HASH: "new", "root-version": ROOT_VERSION}
)
B_OLD = pod("service-b-old-1", {"app": "service-b", HASH: "old"})
B_NEW = pod("service-b-new-1", {"app": "service-b", HASH: "new"})
C_OLD = pod("service-c-old-1", {"app": "service-c", HASH: "old"})
C_NEW = pod("service-c-new-1", {"app": "service-c", HASH: "new"})
PODS = (GATEWAY_OLD, GATEWAY_NEW, B_OLD, B_NEW, C_OLD, C_NEW)

SERVICES = (
    service("gateway-a", {"app": "gateway-a", HASH: "old"}, ("http", 3000)),
    service("gateway-a-preview", {"app": "gateway-a", HASH: "new"}, ("http", 3000)),
    service("service-b", {"app": "service-b", HASH: "old"}, ("http", 8081)),
    service("service-b-preview", {"app": "service-b", HASH: "new"}, ("http", 8081)),
    service("service-c", {"app": "service-c", HASH: "old"}, ("tcp", 8082), ("http-metrics", 9082)),
    service(
        "service-c-preview",
        {"app": "service-c", HASH: "new"},
        ("tcp", 8082),
        ("http-metrics", 9082),
    ),
)


def router(
    *virtual_services: dict[str, Any],
    pods: tuple[Pod, ...] = PODS,
    services: tuple[Service, ...] = SERVICES,
) -> Router:
    chart = (http_vs("service-b", 8081), tcp_vs("service-c", 8082))
    return Router(
        namespace=NAMESPACE,
        pods=pods,
        services=services,
        virtual_services=[virtual_service_from(v) for v in virtual_services or chart],
    )


# -- the chart's routing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "host", "port", "protocol", "chosen", "rule", "endpoints"),
    [
        (GATEWAY_NEW, "service-b", 8081, "http", "service-b-preview", 'http[0] "preview"', [B_NEW]),
        (GATEWAY_OLD, "service-b", 8081, "http", "service-b", 'http[1] "active"', [B_OLD]),
        (None, "service-b", 8081, "http", "service-b", 'http[1] "active"', [B_OLD]),
        (GATEWAY_NEW, "service-c", 8082, "tcp", "service-c-preview", "tcp[0]", [C_NEW]),
        (GATEWAY_OLD, "service-c", 8082, "tcp", "service-c", "tcp[1]", [C_OLD]),
        (
            GATEWAY_NEW,
            f"service-b.{NAMESPACE}.svc.cluster.local",
            8081,
            "http",
            "service-b-preview",
            'http[0] "preview"',
            [B_NEW],
        ),
    ],
)
def test_the_chart_routes_callers_by_root_version(
    caller: Pod | None,
    host: str,
    port: int,
    protocol: Protocol,
    chosen: str,
    rule: str,
    endpoints: list[Pod],
) -> None:
    decision = router().resolve(caller, host, port, protocol)
    assert (decision.service.name, decision.port, decision.endpoints) == (
        chosen,
        port,
        tuple(endpoints),
    )
    assert decision.rule.endswith(rule)


def test_a_host_without_virtual_service_goes_to_its_own_service() -> None:
    decision = router().resolve(None, "gateway-a-preview", 3000, "http")
    assert (decision.service.name, decision.endpoints) == ("gateway-a-preview", (GATEWAY_NEW,))
    assert "no VirtualService" in decision.rule


def test_a_virtual_service_without_routes_for_the_protocol_leaves_the_service_alone() -> None:
    decision = router().resolve(GATEWAY_NEW, "service-c", 9082, "http")
    assert decision.service.name == "service-c"
    assert "no http routes" in decision.rule


def rendered_routes(tree: Path) -> tuple[Router, str]:
    """The routes of ``tree`` rendered for qa with the pinned Helm (built once and cached, like
    test_gitops), and the root version its VirtualServices match."""
    helm = gitops.helm_binary(load_settings())
    objects = GitOps(tree).render("qa", helm=helm, namespace=NAMESPACE)
    rendered = [virtual_service_from(o) for o in objects if o["kind"] == "VirtualService"]
    routes = Router(
        namespace=NAMESPACE,
        pods=PODS,
        services=[service_from(o) for o in objects if o["kind"] == "Service"],
        virtual_services=rendered,
    )
    return routes, rendered[0].http[0].match[0].source_labels["root-version"]


def test_the_chart_as_rendered_by_helm_routes_the_same() -> None:
    routes, root = rendered_routes(TREE)
    labels = {"app": "gateway-a", HASH: "new", "root-version": root}
    new_caller = pod("gateway-a-new-2", {**labels, "role": "preview"})
    # The hazard the role label closes: an active caller that carries the newest root version.
    active_caller = pod("gateway-a-new-3", {**labels, "role": "active"})
    assert routes.resolve(new_caller, "service-b", 3000, "http").service.name == (
        "service-b-preview"
    )
    assert routes.resolve(new_caller, "service-c", 3000, "tcp").service.name == (
        "service-c-preview"
    )
    assert routes.resolve(GATEWAY_OLD, "service-b", 3000, "http").service.name == "service-b"
    assert routes.resolve(GATEWAY_OLD, "service-c", 3000, "tcp").service.name == "service-c"
    assert routes.resolve(active_caller, "service-b", 3000, "http").service.name == "service-b"
    assert routes.resolve(active_caller, "service-c", 3000, "tcp").service.name == "service-c"


def test_the_old_virtual_service_kept_as_a_fixture_still_sends_active_callers_to_preview(
    tmp_path: Path,
) -> None:
    """tests/cluster/test_provenance.py swaps this fixture into the chart to prove the invariants
    catch it: it must still render with today's chart, and still be the hazard."""
    tree = tmp_path / "gitops"
    shutil.copytree(TREE, tree)
    shutil.copy(OLD_VIRTUAL_SERVICE, tree / "charts/demo-service/templates/virtualservice.yaml")
    routes, root = rendered_routes(tree)
    active_caller = pod(
        "gateway-a-new-3", {"app": "gateway-a", HASH: "new", "root-version": root, "role": "active"}
    )
    assert routes.resolve(active_caller, "service-b", 3000, "http").service.name == (
        "service-b-preview"
    )
    assert routes.resolve(active_caller, "service-c", 3000, "tcp").service.name == (
        "service-c-preview"
    )


# -- Istio's match semantics -----------------------------------------------------------------


def vs(*http: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "service-b"}, "spec": {"hosts": ["service-b"], "http": list(http)}}


def to(host: str, *, name: str = "", **match: Any) -> dict[str, Any]:
    route: dict[str, Any] = {"route": [{"destination": {"host": host}}]}
    if name:
        route["name"] = name
    if match:
        route["match"] = match["blocks"]
    return route


TEAM_X = pod("caller-x", {"app": "caller", "team": "x", "tier": "1"})
TEAM_Y = pod("caller-y", {"app": "caller", "team": "y", "tier": "1"})
TIER_2 = pod("caller-2", {"app": "caller", "team": "x", "tier": "2"})


@pytest.mark.parametrize(
    ("rules", "caller", "chosen"),
    [
        # the first matching rule wins, even when a later one matches too
        (
            [
                to("service-b-preview", blocks=[{"sourceLabels": {"team": "x"}}]),
                to("service-b", blocks=[{"sourceLabels": {"team": "x", "tier": "1"}}]),
            ],
            TEAM_X,
            "service-b-preview",
        ),
        # AND within a block: team x alone is not enough
        (
            [
                to("service-b-preview", blocks=[{"sourceLabels": {"team": "x", "tier": "1"}}]),
                to("service-b"),
            ],
            TIER_2,
            "service-b",
        ),
        # AND across kinds of condition: the port must match too
        (
            [
                to("service-b-preview", blocks=[{"sourceLabels": {"team": "x"}, "port": 9999}]),
                to("service-b"),
            ],
            TEAM_X,
            "service-b",
        ),
        # OR across blocks: either team
        (
            [
                to(
                    "service-b-preview",
                    blocks=[{"sourceLabels": {"team": "x"}}, {"sourceLabels": {"team": "y"}}],
                ),
                to("service-b"),
            ],
            TEAM_Y,
            "service-b-preview",
        ),
        # a route without match matches everything, so a later rule never runs
        ([to("service-b-preview"), to("service-b")], TEAM_X, "service-b-preview"),
        # an empty match block has no condition
        ([to("service-b-preview", blocks=[{}])], None, "service-b-preview"),
        # a port condition alone matches outside callers too
        ([to("service-b-preview", blocks=[{"port": 8081}])], None, "service-b-preview"),
        # outside the mesh matches no sourceLabels rule
        (
            [to("service-b-preview", blocks=[{"sourceLabels": {"team": "x"}}]), to("service-b")],
            None,
            "service-b",
        ),
    ],
)
def test_routes_follow_istio_match_semantics(
    rules: list[dict[str, Any]], caller: Pod | None, chosen: str
) -> None:
    assert router(vs(*rules)).resolve(caller, "service-b", 8081, "http").service.name == chosen


def test_a_destination_without_port_keeps_the_called_port() -> None:
    decision = router(vs(to("service-b-preview"))).resolve(None, "service-b", 8081, "http")
    assert (decision.port, decision.target_port) == (8081, "8081")


def test_weights_that_send_everything_to_one_destination_pick_it() -> None:
    rule = {
        "route": [
            {"destination": {"host": "service-b"}, "weight": 0},
            {"destination": {"host": "service-b-preview"}, "weight": 100},
        ]
    }
    assert router(vs(rule)).resolve(None, "service-b", 8081, "http").service.name == (
        "service-b-preview"
    )


def test_a_call_no_rule_matches_names_the_rules_tried() -> None:
    only_x = to("service-b-preview", name="team-x", blocks=[{"sourceLabels": {"team": "x"}}])
    with pytest.raises(NoRoute, match=r'no http route .* pod "caller-y".* http\[0\] "team-x"'):
        router(vs(only_x)).resolve(TEAM_Y, "service-b", 8081, "http")


# -- endpoints -------------------------------------------------------------------------------


def test_a_selector_switch_changes_the_endpoints() -> None:
    before = router().resolve(GATEWAY_OLD, "service-b", 8081, "http")
    promoted = tuple(
        service("service-b", {"app": "service-b", HASH: "new"}, ("http", 8081))
        if s.name == "service-b"
        else s
        for s in SERVICES
    )
    after = router(services=promoted).resolve(GATEWAY_OLD, "service-b", 8081, "http")
    assert (before.endpoints, after.endpoints) == ((B_OLD,), (B_NEW,))


@pytest.mark.parametrize(
    ("candidate", "selected"),
    [
        (pod("b", {"app": "service-b", HASH: "old"}), True),
        (pod("b", {"app": "service-b", HASH: "old", "extra": "label"}), True),
        (pod("b", {"app": "service-b", HASH: "new"}), False),
        (pod("b", {"app": "service-b"}), False),
        (pod("b", {"app": "service-b", HASH: "old"}, ready=False), False),
        (pod("b", {"app": "service-b", HASH: "old"}, deleting=True), False),
        (pod("b", {"app": "service-b", HASH: "old"}, phase="Pending"), False),
        (pod("b", {"app": "service-b", HASH: "old"}, phase="Succeeded"), False),
    ],
)
def test_endpoints_are_selected_running_ready_and_not_deleting(
    candidate: Pod, selected: bool
) -> None:
    assert is_endpoint(candidate, SERVICES[2]) is selected


def test_a_service_with_an_empty_selector_has_no_endpoints() -> None:
    assert router().endpoints(service("external", {}, ("http", 80))) == ()


# -- what is not found -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("service-x", 8081, 'no Service for host "service-x" .* Services there: gateway-a, '),
        ("service-b.other", 8081, 'serves namespace "demo" only'),
        ("service-b", 9999, 'Service "service-b" has no port 9999; ports there: http 8081'),
    ],
)
def test_an_unknown_host_or_port_is_not_found(host: str, port: int, message: str) -> None:
    with pytest.raises(NotFound, match=message):
        router().resolve(None, host, port, "http")


def test_a_destination_without_service_is_not_found() -> None:
    with pytest.raises(NotFound, match='no Service for host "service-z"'):
        router(vs(to("service-z"))).resolve(None, "service-b", 8081, "http")


def test_two_virtual_services_for_one_host_are_refused() -> None:
    with pytest.raises(ConfigError, match='"service-b" and "other" both route host "service-b"'):
        router(
            http_vs("service-b", 8081),
            {**http_vs("service-b", 8081), "metadata": {"name": "other"}},
        )


# -- what is refused -------------------------------------------------------------------------


def refused(path: str, value: Any) -> dict[str, Any]:
    """The chart's http VirtualService with ``value`` set at ``path`` (dots and [indexes])."""
    obj = copy.deepcopy(http_vs("service-b", 8081))
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    node: Any = obj
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    node[int(last) if last.isdigit() else last] = value
    return obj


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("spec.gateways", ["istio-system/gateway"], "spec.gateways[0]"),
        ("spec.gateways", ["mesh", "gw"], "spec.gateways[1]"),
        ("spec.tls", [{"match": [{"sniHosts": ["b"]}]}], "spec.tls"),
        ("spec.exportTo", ["other"], "spec.exportTo[0]"),
        ("spec.hosts", ["*.example.com"], "spec.hosts[0]"),
        ("spec.hosts", ["10.0.0.1"], "spec.hosts[0]"),
        ("spec.hosts", [], "spec.hosts"),
        ("spec.http[0].match[0].uri", {"prefix": "/v2"}, "spec.http[0].match[0].uri"),
        ("spec.http[0].match[0].headers", {"x": {"exact": "1"}}, "spec.http[0].match[0].headers"),
        ("spec.http[0].match[0].method", {"exact": "GET"}, "spec.http[0].match[0].method"),
        ("spec.http[0].match[0].sourceNamespace", "demo", "spec.http[0].match[0].sourceNamespace"),
        ("spec.http[0].match[0].gateways", ["gw"], "spec.http[0].match[0].gateways[0]"),
        ("spec.http[0].match[0].port", "http", "spec.http[0].match[0].port"),
        ("spec.http[0].match[0].sourceLabels", {"a": 1}, "spec.http[0].match[0].sourceLabels"),
        ("spec.http[0].rewrite", {"uri": "/"}, "spec.http[0].rewrite"),
        ("spec.http[0].redirect", {"uri": "/"}, "spec.http[0].redirect"),
        ("spec.http[0].directResponse", {"status": 503}, "spec.http[0].directResponse"),
        ("spec.http[0].retries", {"attempts": 3}, "spec.http[0].retries"),
        ("spec.http[0].timeout", "1s", "spec.http[0].timeout"),
        ("spec.http[0].fault", {"abort": {"httpStatus": 500}}, "spec.http[0].fault"),
        ("spec.http[0].mirror", {"host": "service-b"}, "spec.http[0].mirror"),
        ("spec.http[0].headers", {"request": {"set": {"a": "b"}}}, "spec.http[0].headers"),
        ("spec.http[0].route", [], "spec.http[0].route"),
        ("spec.http[0].route[0].headers", {"request": {}}, "spec.http[0].route[0].headers"),
        (
            "spec.http[0].route[0].destination.subset",
            "v2",
            "spec.http[0].route[0].destination.subset",
        ),
        (
            "spec.http[0].route[0].destination.host",
            "example.com.evil",
            "spec.http[0].route[0].destination.host",
        ),
        (
            "spec.http[0].route[0].destination.port",
            {"name": "http"},
            "spec.http[0].route[0].destination.port.name",
        ),
        (
            "spec.http[1].route",
            [
                {"destination": {"host": "service-b"}, "weight": 80},
                {"destination": {"host": "service-b-preview"}, "weight": 20},
            ],
            "spec.http[1].route",
        ),
        (
            "spec.http[1].route",
            [{"destination": {"host": "service-b"}}, {"destination": {"host": "service-b"}}],
            "spec.http[1].route",
        ),
        (
            "spec.tcp",
            [{"match": [{"destinationSubnets": ["10.0.0.0/8"]}], "route": []}],
            "spec.tcp[0].match[0].destinationSubnets",
        ),
        ("spec.tcp", [{"name": "x", "route": []}], "spec.tcp[0].name"),
    ],
)
def test_an_unimplemented_field_is_refused_with_its_path(path: str, value: Any, field: str) -> None:
    with pytest.raises(ConfigError) as refusal:
        virtual_service_from(refused(path, value))
    message = str(refusal.value)
    assert message.startswith(f'VirtualService "service-b": {field} ')
    assert "the local data plane supports" in message


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("spec.gateways", ["mesh"]),
        ("spec.exportTo", ["*"]),
        ("spec.exportTo", ["."]),
        ("spec.http[0].match[0].gateways", ["mesh"]),
        ("spec.http[0].match[0].name", "preview-callers"),
        ("spec.hosts", [f"service-b.{NAMESPACE}.svc.cluster.local"]),
        ("spec.tls", []),
    ],
)
def test_supported_fields_are_accepted(path: str, value: Any) -> None:
    assert isinstance(virtual_service_from(refused(path, value)), VirtualService)


def test_pods_of_another_namespace_are_never_endpoints() -> None:
    """Identical pod templates in two namespaces carry the same hash label."""
    labels = {"app": "service-b", "rollouts-pod-template-hash": "6c4b"}
    here = pod("service-b-6c4b-a", labels)
    there = pod_from(
        {
            "metadata": {"name": "service-b-6c4b-b", "namespace": "other", "labels": labels},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    active = service("service-b", labels, ("http", 8081))
    assert is_endpoint(here, active)
    assert not is_endpoint(there, active)


@pytest.mark.parametrize(
    ("name", "protocol"),
    [
        ("http", "http"),
        ("http-metrics", "http"),
        ("grpc", "http"),
        ("tcp", "tcp"),
        ("tcp-version", "tcp"),
        ("", None),
        ("web", None),
    ],
)
def test_the_port_name_selects_the_protocol_as_istio_does(name: str, protocol: str | None) -> None:
    assert protocol_of(name) == protocol


def test_an_unnamed_port_under_a_virtual_service_is_refused() -> None:
    router = Router(
        namespace=NAMESPACE,
        pods=[],
        services=[service("service-b", {"app": "service-b"}, ("", 8081))],
        virtual_services=[
            virtual_service_from(
                {
                    "metadata": {"name": "service-b", "namespace": NAMESPACE},
                    "spec": {
                        "hosts": ["service-b"],
                        "http": [{"route": [{"destination": {"host": "service-b"}}]}],
                    },
                }
            )
        ],
    )
    with pytest.raises(ConfigError, match=r"port 8081 is named '', which selects no protocol"):
        router.resolve(None, "service-b", 8081)
