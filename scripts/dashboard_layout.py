"""Draw the backup-health dashboard's layout as an SVG (docs/dashboard-layout.svg).

The picture is the widget grid of the dashboard `make build` derives for the demo config
(devstack/demo/lastgood.toml): each widget's place, size, title, and what it shows (metric
names, objective lines, alarm count). It is a layout, not a screenshot of live data.
tests/infrastructure/test_dashboard.py holds the committed file equal to what this draws.

    python scripts/dashboard_layout.py [--config PATH] [--out docs/dashboard-layout.svg]
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "devstack" / "demo" / "lastgood.toml"
DEFAULT_OUT = "docs/dashboard-layout.svg"
COLUMN, ROW, MARGIN, HEADER = 50, 28, 16, 56  # pixels per grid column / row unit
FILL = {"metric": "#eef4fb", "alarm": "#fdeeee", "text": "#f4f4f4"}
STROKE = {"metric": "#5b8ac6", "alarm": "#c65b5b", "text": "#9a9a9a"}

for path in (ROOT / "shared", ROOT):
    if str(path) not in sys.path:
        sys.path.append(str(path))


def demo_body(config_file: Path = DEMO_CONFIG) -> dict[str, Any]:
    """The dashboard body make build derives for `config_file` (placeholders left as text)."""
    from lastgood.core.config import load_config_file

    from scripts import dashboard, derive_template

    config = load_config_file(config_file)
    values = derive_template.derive(config)
    rendered = derive_template.render(derive_template.load_template(), values, config_name=config_file.name)
    dashboard.attach_dashboard(rendered, config, {k: v["Name"] for k, v in values["Source"].items()})
    body: dict[str, Any] = json.loads(
        rendered["Resources"][dashboard.DASHBOARD]["Properties"]["DashboardBody"]["Fn::Sub"]
    )
    return body


def describe(widget: dict[str, Any]) -> list[str]:
    """A few short lines saying what a widget shows."""
    props = widget["properties"]
    if widget["type"] == "alarm":
        count = len(props["alarms"])
        return [f"alarm status: {count} alarm{'s' if count != 1 else ''}", "(state shown in place)"]
    if widget["type"] == "text":
        return ["markdown: what this dashboard is,", "its sources and datasets"]
    names: list[str] = []
    for line in props.get("metrics", []):
        plain = [p for p in line if not isinstance(p, dict)]
        label = (
            plain[1]
            if plain
            else next(p["expression"] for p in line if isinstance(p, dict) and "expression" in p)
        )
        if label not in names:
            names.append(label)
    lines = [", ".join(names)]
    for note in props.get("annotations", {}).get("horizontal", []):
        lines.append(f"--- {note['label']}")
    return lines


def _text(x: float, y: float, content: str, size: int, weight: str = "normal", color: str = "#222") -> str:
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="{size}" '
        f'font-weight="{weight}" fill="{color}">{escape(content)}</text>'
    )


def _axes(x: float, y: float, width: float, height: float, props: dict[str, Any]) -> list[str]:
    """An empty chart frame with one dashed line per objective (no data is drawn)."""
    parts = [
        f'<path d="M{x:.0f} {y:.0f} V{y + height:.0f} H{x + width:.0f}" fill="none" stroke="#9fb6d6" stroke-width="1"/>'
    ]
    notes = props.get("annotations", {}).get("horizontal", [])
    for index, note in enumerate(notes):
        level = y + height * (0.25 + 0.3 * index)
        parts.append(
            f'<line x1="{x:.0f}" y1="{level:.0f}" x2="{x + width:.0f}" y2="{level:.0f}" '
            f'stroke="{note.get("color", "#d62728")}" stroke-width="1.2" stroke-dasharray="5 3"/>'
        )
    return parts


def _count(body: dict[str, Any], dimension: str) -> int:
    """How many distinct `dimension` values (sources, datasets) the body's metrics carry."""
    found = set()
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            plain = [p for p in line if not isinstance(p, dict)]
            pairs = dict(zip(plain[2::2], plain[3::2], strict=False))
            if dimension in pairs:
                found.add(pairs[dimension])
    return len(found)


def render_svg(body: dict[str, Any]) -> str:
    widgets = body["widgets"]
    width = 24 * COLUMN + 2 * MARGIN
    height = HEADER + max(w["y"] + w["height"] for w in widgets) * ROW + MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _text(
            MARGIN, 24, "lastgood backup-health dashboard: LAYOUT (widget grid, not live data)", 18, "bold"
        ),
        _text(
            MARGIN,
            44,
            f"Derived by make build from the demo config ({_count(body, 'source')} sources, "
            f"{_count(body, 'dataset')} datasets): one row per declared source and dataset. "
            "Lines marked --- are the objectives the alarms use.",
            12,
            color="#555",
        ),
    ]
    for w in widgets:
        x = MARGIN + w["x"] * COLUMN + 2
        y = HEADER + w["y"] * ROW + 2
        wpx, hpx = w["width"] * COLUMN - 4, w["height"] * ROW - 4
        kind = w["type"]
        out.append(
            f'<rect x="{x}" y="{y}" width="{wpx}" height="{hpx}" rx="4" fill="{FILL[kind]}" '
            f'stroke="{STROKE[kind]}" stroke-width="1.5"/>'
        )
        chars = max(8, int(wpx / 6.6))
        title = w["properties"].get("title") or "lastgood: backup health (header)"
        cursor = y + 16
        for piece in textwrap.wrap(title, chars)[:2]:
            out.append(_text(x + 6, cursor, piece, 12, "bold"))
            cursor += 15
        if kind == "metric":
            out.extend(_axes(x + 6, y + hpx * 0.55, wpx - 12, hpx * 0.45 - 8, w["properties"]))
        for line in describe(w):
            for piece in textwrap.wrap(line, int(wpx / 5.6)):
                if cursor > y + hpx - 6:
                    break
                out.append(_text(x + 6, cursor, piece, 10, color="#444"))
                cursor += 13
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEMO_CONFIG))
    parser.add_argument("--out", default=str(ROOT / DEFAULT_OUT))
    args = parser.parse_args(argv)
    Path(args.out).write_text(render_svg(demo_body(Path(args.config))), encoding="utf-8")
    print(f"{args.out}: dashboard layout for {args.config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
