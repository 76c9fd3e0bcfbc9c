"""The settings reference documents every setting, with its default."""

from __future__ import annotations

import re
from pathlib import Path

from django_vendor_notifications.conf import DEFAULTS

SETTINGS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def test_every_setting_has_a_section_and_a_line_in_the_defaults_block() -> None:
    page = SETTINGS_PAGE.read_text()
    headings = {name.strip() for line in re.findall(r"^## (.+)$", page, re.M)
                for name in line.split(",")}
    defaults_block = page.split("```python", 1)[1].split("```", 1)[0]

    missing_sections = sorted(set(DEFAULTS) - headings)
    missing_defaults = sorted(key for key in DEFAULTS if f'"{key}":' not in defaults_block)

    assert not missing_sections, f"docs/settings.md has no section for {missing_sections}"
    assert not missing_defaults, f"docs/settings.md's defaults block lacks {missing_defaults}"
