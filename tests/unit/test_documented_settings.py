"""Every setting is documented in docs/configuration.md and listed in .env.example."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidings.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("document", ["docs/configuration.md", ".env.example"])
@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_is_documented(document: str, field: str) -> None:
    assert f"TIDINGS_{field.upper()}" in (ROOT / document).read_text()
