"""The library's shape: one place decides which target we are on."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _reads_of_settings_target(path: Path) -> list[str]:
    """Each place in ``path`` that reads ``<something settings>.target``, as ``file:function``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if (
                isinstance(child, ast.Attribute)
                and child.attr == "target"
                and "settings" in ast.unparse(child.value).split(".")[-1]
            ):
                found.append(f"{path.relative_to(ROOT)}:{function}")
            visit(child, function)

    visit(tree, "<module>")
    return found


def test_target_for_is_the_only_reader_of_settings_target() -> None:
    files = [*(ROOT / "harness").rglob("*.py"), *(ROOT / "steps").rglob("*.py")]
    readers = sorted({reader for file in files for reader in _reads_of_settings_target(file)})
    assert readers == ["harness/targets/__init__.py:target_for"]
