"""``analysis`` stands alone: it never imports ``harness`` and never imports pytest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ANALYSIS = Path(__file__).resolve().parents[3] / "analysis"
FORBIDDEN = ("harness", "pytest", "_pytest", "pytest_bdd")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(ANALYSIS.glob("*.py")), ids=lambda p: p.name)
def test_module_imports_neither_harness_nor_pytest(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN)
    assert bad == [], f"{path.name} imports {bad}"


def test_the_package_has_the_modules_the_layout_names() -> None:
    modules = {p.stem for p in ANALYSIS.glob("*.py")}
    assert {"checks", "prometheus", "judge", "report", "server", "cli"} <= modules
