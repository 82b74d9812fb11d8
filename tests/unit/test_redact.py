"""What artifacts keep of an object: every name, never an env value, a secret-looking annotation
or a token."""

from __future__ import annotations

import json

from harness.redact import LAST_APPLIED, REDACTED, redact_object, redact_text

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl"


def pod(env_value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "service-b-abc",
            "annotations": {
                "example.com/api-token": "tok-123",
                "prometheus.io/path": "/metrics",
                LAST_APPLIED: json.dumps(
                    {
                        "spec": {
                            "containers": [
                                {"name": "b", "env": [{"name": "X", "value": env_value}]}
                            ]
                        }
                    }
                ),
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "service-b",
                    "image": "ghcr.io/bluegreen-harness/service-b:1.0.0",
                    "env": [
                        {"name": "DATABASE_URL", "value": env_value},
                        {
                            "name": "POD_NAME",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                        },
                    ],
                }
            ]
        },
    }


def test_env_values_are_redacted_and_their_names_kept() -> None:
    redacted = redact_object(pod("postgres://user:hunter2@db"))
    text = json.dumps(redacted)
    assert "hunter2" not in text
    env = redacted["spec"]["containers"][0]["env"]  # type: ignore[index]
    assert env[0] == {"name": "DATABASE_URL", "value": REDACTED}
    assert env[1] == {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    assert redacted["spec"]["containers"][0]["image"].endswith("service-b:1.0.0")  # type: ignore[index]


def test_secret_looking_annotations_and_the_last_applied_copy_are_redacted() -> None:
    annotations = redact_object(pod("hunter2"))["metadata"]["annotations"]
    assert annotations["example.com/api-token"] == REDACTED
    assert annotations["prometheus.io/path"] == "/metrics"
    assert "hunter2" not in annotations[LAST_APPLIED]
    assert '"name": "X"' in annotations[LAST_APPLIED]


def test_secret_named_args_and_headers_are_redacted_others_kept() -> None:
    run = {
        "spec": {
            "args": [
                {"name": "service", "value": "service-b"},
                {"name": "api-key", "value": "k-1"},
            ],
            "metrics": [
                {"provider": {"web": {"headers": [{"key": "Authorization", "value": "x"}]}}}
            ],
        }
    }
    redacted = redact_object(run)["spec"]
    assert redacted["args"] == [
        {"name": "service", "value": "service-b"},
        {"name": "api-key", "value": REDACTED},
    ]
    assert redacted["metrics"][0]["provider"]["web"]["headers"][0]["value"] == REDACTED


def test_tokens_in_free_text_are_redacted() -> None:
    line = f"request with Authorization: Bearer abcdefgh12345678 and token {JWT} failed"
    assert redact_text(line) == (
        f"request with Authorization: {REDACTED} and token {REDACTED} failed"
    )
    assert redact_text("Rollout service-b paused") == "Rollout service-b paused"
