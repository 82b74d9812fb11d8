"""Finding gateway A's URLs from the objects that expose its Services (harness/discovery.py)."""

from __future__ import annotations

from typing import Any

from harness.discovery import find_url


def service(name: str = "gateway-a", kind: str = "ClusterIP", **extra: Any) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": 3000}
    if kind == "NodePort":
        port["nodePort"] = 30300
    return {
        "metadata": {"name": name},
        "spec": {"type": kind, "ports": [port]},
        **extra,
    }


def test_a_load_balancer_answers_on_its_ingress_address() -> None:
    lb = service(kind="LoadBalancer", status={"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}})
    found = find_url(lb, namespace="demo")
    assert found.url == "http://10.1.2.3:3000"
    assert "LoadBalancer" in found.source


def test_a_load_balancer_still_pending_falls_through_to_the_cluster_name() -> None:
    found = find_url(service(kind="LoadBalancer", status={}), namespace="demo")
    assert found.url == "http://gateway-a.demo.svc.cluster.local:3000"
    assert "only inside the cluster" in found.source


def test_an_ingress_rule_to_the_service_gives_its_host_and_path_with_tls() -> None:
    ingress = {
        "metadata": {"name": "shop"},
        "spec": {
            "tls": [{"hosts": ["preview.shop.example"]}],
            "rules": [
                {"host": "active.shop.example", "http": {"paths": [
                    {"path": "/", "backend": {"service": {"name": "gateway-a"}}}]}},
                {"host": "preview.shop.example", "http": {"paths": [
                    {"path": "/a/", "backend": {"service": {"name": "gateway-a-preview"}}}]}},
            ],
        },
    }  # fmt: skip
    active = find_url(service(), namespace="demo", ingresses=[ingress])
    preview = find_url(service("gateway-a-preview"), namespace="demo", ingresses=[ingress])
    assert (active.url, preview.url) == (
        "http://active.shop.example",
        "https://preview.shop.example/a",
    )
    assert active.source == "Ingress shop"


def test_an_istio_virtual_service_on_a_gateway_gives_its_host() -> None:
    virtual_service = {
        "metadata": {"name": "front"},
        "spec": {
            "hosts": ["*.example", "shop.example"],
            "gateways": ["istio-system/public", "mesh"],
            "http": [{"route": [{"destination": {"host": "gateway-a.demo.svc.cluster.local"}}]}],
        },
    }
    gateway = {"metadata": {"name": "public"}, "spec": {"servers": [{"port": {"number": 443}}]}}
    found = find_url(
        service(), namespace="demo", virtual_services=[virtual_service], gateways=[gateway]
    )
    assert found.url == "https://shop.example"


def test_a_mesh_only_virtual_service_is_no_way_in() -> None:
    mesh_only = {
        "metadata": {"name": "inner"},
        "spec": {
            "hosts": ["gateway-a"],
            "http": [{"route": [{"destination": {"host": "gateway-a"}}]}],
        },
    }
    found = find_url(service(), namespace="demo", virtual_services=[mesh_only])
    assert found.url.endswith(".svc.cluster.local:3000")


def test_a_node_port_prefers_a_node_external_address() -> None:
    def node(name: str, kind: str, address: str) -> dict[str, object]:
        return {
            "metadata": {"name": name},
            "status": {"addresses": [{"type": kind, "address": address}]},
        }

    nodes = [node("n1", "InternalIP", "10.0.0.5"), node("n2", "ExternalIP", "203.0.113.9")]
    found = find_url(service(kind="NodePort"), namespace="demo", nodes=nodes)
    assert found.url == "http://203.0.113.9:30300"
    assert "node n2" in found.source
