"""How API refusals become harness errors: a missing permission and rejected credentials are told
apart, so a runbook that skips for the first can never skip for the second."""

from __future__ import annotations

import json

from harness.kube import NODE, REPLICA_SET, ApiError, Forbidden, Unauthorized, _translate


def refusal(status: int, message: str) -> ApiError:
    error = _translate(status, "", json.dumps({"message": message}).encode(), "GET", "/api/v1/x")
    assert isinstance(error, ApiError)
    return error


def test_a_rejected_token_is_unauthorized_and_not_forbidden() -> None:
    error = refusal(401, "Unauthorized")
    assert isinstance(error, Unauthorized)
    assert not isinstance(error, Forbidden)
    assert "401 Unauthorized" in str(error)
    assert "expired or invalid" in str(error)


def test_a_missing_permission_is_forbidden_and_names_the_roles() -> None:
    error = refusal(403, 'pods is forbidden: User "x" cannot list resource "pods"')
    assert isinstance(error, Forbidden)
    assert 'cannot list resource "pods"' in str(error)
    assert "gitops/rbac/harness-roles.yaml" in str(error)


def test_a_node_is_cluster_scoped_whatever_namespace_the_client_is_bound_to() -> None:
    assert NODE.path("demo", "node-000000") == "/api/v1/nodes/node-000000"
    assert REPLICA_SET.path("demo", "web-1") == "/apis/apps/v1/namespaces/demo/replicasets/web-1"
