"""Sample events: tests load the same `events/*.json` files `lastgood invoke` uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


def event_path(name: str) -> Path:
    """`events/<name>` (with or without `.json`); fails listing the available events."""
    filename = name if name.endswith(".json") else f"{name}.json"
    path = EVENTS_DIR / filename
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in EVENTS_DIR.glob("*.json")))
        raise FileNotFoundError(f"no event {filename!r} in {EVENTS_DIR}; available: {available}")
    return path


def load_event(name: str) -> dict[str, Any]:
    """Load `events/<name>` as a dict (a fresh copy per call, safe to modify)."""
    data: dict[str, Any] = json.loads(event_path(name).read_text(encoding="utf-8"))
    return data
