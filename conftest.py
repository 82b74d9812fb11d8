"""Suite-wide pytest configuration: every test under tests/cluster/ needs the local target.

Marking them here lets a developer without the time for a cluster run `pytest -m "not cluster"`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CLUSTER_TESTS = Path(__file__).parent / "tests" / "cluster"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.cluster)

# pytester runs the runbook plugin against small feature files (tests/unit/test_runbook_errors.py).
pytest_plugins = ["pytester"]
