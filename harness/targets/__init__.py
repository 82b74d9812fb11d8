"""Cluster targets: ``local`` (embedded, no Docker), ``kind`` (Docker) and ``existing``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ComponentStatus:
    """One line of ``bgh status``."""

    name: str
    running: bool
    detail: str
