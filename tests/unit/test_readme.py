"""The README's settings table is generated from the Settings class, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from harness.settings import settings_table

README = Path(__file__).parents[2] / "README.md"


def test_readme_settings_table_matches_the_class() -> None:
    text = README.read_text()
    found = re.search(r"<!-- settings-table:[^>]*-->\n(.*?)<!-- /settings-table -->", text, re.S)
    assert found, "README.md lost its settings-table markers"
    assert found.group(1).strip() == settings_table(), "run `bgh settings` and paste its output"
