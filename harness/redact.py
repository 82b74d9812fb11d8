"""Secrets out of artifacts: what is written for a failed runbook keeps every name, never a value
that may be a credential.

Artifacts are uploaded by CI (the kind workflow) and pasted into bug reports, so this runs on
every object and text before it is written (harness/artifacts.py). It replaces:
- every container ``env`` value (``value``; ``valueFrom`` only names where a value comes from and
  is kept), since env is where tokens and passwords reach a pod;
- the value of any ``{name|key, value}`` item (AnalysisRun args, web provider headers) and of any
  annotation whose name looks like a secret (token, secret, password, credential, key, auth);
- ``kubectl.kubernetes.io/last-applied-configuration``, a copy of the object, redacted the same
  way;
- bearer tokens and JSON Web Tokens anywhere in a string (events, logs, probe answers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_SECRET_NAME = re.compile(
    r"token|secret|passw(or)?d|credential|api[-_]?key|private[-_]?key|auth", re.IGNORECASE
)
_TOKEN = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"  # an Authorization header's value
    r"|eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # a JWT (ServiceAccount tokens)
)


def redact_text(text: str) -> str:
    """``text`` with bearer tokens and JSON Web Tokens replaced."""
    return _TOKEN.sub(REDACTED, text)


def redact_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the API object ``obj`` with env values, secret-looking annotations and tokens
    replaced; every name and every other field kept."""
    return dict(_redact(obj, key=""))


def _redact(value: Any, *, key: str) -> Any:
    if isinstance(value, Mapping):
        if key == "annotations":
            return {name: _annotation(name, text) for name, text in value.items()}
        return _redact_mapping(value, in_env=key == "env")
    if isinstance(value, list):
        return [_redact(item, key=key) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redact_mapping(value: Mapping[str, Any], *, in_env: bool) -> dict[str, Any]:
    label = str(value.get("name", value.get("key", "")))
    secret_item = "value" in value and (in_env or bool(_SECRET_NAME.search(label)))
    return {
        name: REDACTED if secret_item and name == "value" else _redact(item, key=name)
        for name, item in value.items()
    }


def _annotation(name: str, text: Any) -> Any:
    if name == LAST_APPLIED and isinstance(text, str):
        try:
            return json.dumps(redact_object(json.loads(text)), sort_keys=True)
        except (ValueError, TypeError, AttributeError):
            return REDACTED
    if _SECRET_NAME.search(name.rpartition("/")[2]):
        return REDACTED
    return _redact(text, key=name)
