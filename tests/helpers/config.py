"""The suite's own config (tests/conftest.py points LASTGOOD_CONFIG at it), never the project's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lastgood.core.config import read_config_document

ROOT = Path(__file__).resolve().parents[2]
SUITE_CONFIG = ROOT / "tests" / "fixtures" / "config" / "demo.toml"


def suite_config_document() -> dict[str, Any]:
    """A fresh copy of the suite's config document (the demo's sources and datasets), to extend."""
    return read_config_document(SUITE_CONFIG)
