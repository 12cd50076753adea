"""The backup-health dashboard follows the declared sources and datasets and shows only real metrics.

`make build` derives the dashboard body from the config (scripts/dashboard.py, called by
scripts/derive_template.py); these tests derive it exactly that way for a team's own config
(two PostgreSQL databases and one MongoDB, no datasets) and for the demo config, and read the
widgets back: one row per declared source and dataset, each metric one the code emits with
the documented dimensions, each objective line the config's, each alarm in place.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lastgood.core.config import LastgoodConfig, load_config_file

from scripts import dashboard, dashboard_layout, derive_template
from tests.helpers.emitted_metrics import documented_dimensions, emitted_metric_names
from tests.helpers.template import ALARM_TYPE, ROOT, expand, load, raw_template

OWN_CONFIG = ROOT / "tests/fixtures/config/two-postgres-one-mongodb.toml"
DEMO_CONFIG = ROOT / "tests/fixtures/config/demo.toml"
CONFIGS = [pytest.param(OWN_CONFIG, id="two-postgres-one-mongodb"), pytest.param(DEMO_CONFIG, id="demo")]
PER_SOURCE_ALARM_PREFIXES = {
    "BackupFailureAlarm",
    "BackupLateAlarm",
    "BackupDurationHighAlarm",
    "BackupSizeHighAlarm",
    "BackupSuspectAlarm",
    "RestoreTestFailureAlarm",
    "IntegrityCheckFailureAlarm",
    "RecoveryTimeOverRtoAlarm",
}


def built(config_file: Path, tmp_path: Path) -> tuple[LastgoodConfig, dict[str, Any], Path]:
    """(config, expanded built template, built file), as `make build` writes it."""
    out = tmp_path / "build" / "template.json"
    derive_template.build(config_file, out)
    return load_config_file(config_file), expand(load(out)), out


def body_of(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The dashboard's Fn::Sub text and the body it parses to (every `${...}` sits inside a
    JSON string, so the text parses as it is)."""
    body = template["Resources"][dashboard.DASHBOARD]["Properties"]["DashboardBody"]
    assert set(body) == {"Fn::Sub"} and isinstance(body["Fn::Sub"], str)
    text = body["Fn::Sub"]
    parsed: dict[str, Any] = json.loads(text)
    return text, parsed


def metric_lines(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of every plain metric line of a metric widget."""
    out = []
    for line in widget["properties"].get("metrics", []):
        plain = [part for part in line if not isinstance(part, dict)]
        if not plain:
            continue  # an expression line
        namespace, name, *pairs = plain
        out.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return out


def rows(body: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for widget in body["widgets"]:
        found.setdefault(widget["y"], []).append(widget)
    return found


def row_keys(row: list[dict[str, Any]], dimension: str) -> set[str]:
    return {dims[dimension] for w in row for _, _, dims in metric_lines(w) if dimension in dims}


def problems(body: dict[str, Any]) -> list[str]:
    """Every widget metric the code does not emit, or emits with other dimensions."""
    emitted, contract = emitted_metric_names(), documented_dimensions()
    found = []
    for widget in body["widgets"]:
        for namespace, name, dims in metric_lines(widget):
            title = widget["properties"].get("title")
            if namespace != "lastgood" or name not in emitted:
                found.append(f"{title}: {namespace}/{name} is not emitted by the code")
            elif frozenset(dims) not in contract.get(name, frozenset()):
                found.append(f"{title}: {name} with dimensions {sorted(dims)} is not how it is emitted")
            elif dims.get("service") != "lastgood":
                found.append(f"{title}: {name} without service=lastgood")
    return found


@pytest.mark.parametrize("config_file", CONFIGS)
def test_one_dashboard_row_per_declared_source_and_dataset(config_file: Path, tmp_path: Path) -> None:
    # Given a config / When make build derives the template
    config, template, _ = built(config_file, tmp_path)
    _, body = body_of(template)
    by_y = rows(body)
    # Then each declared source has exactly one row, and that row is about it alone
    source_rows = [r for r in by_y.values() if row_keys(r, "source") and len(row_keys(r, "source")) == 1]
    assert sorted(next(iter(row_keys(r, "source"))) for r in source_rows) == sorted(
        s.name for s in config.sources
    )
    # And each declared dataset has exactly one row (none when the config declares none)
    dataset_rows = [r for r in by_y.values() if row_keys(r, "dataset")]
    assert all(len(row_keys(r, "dataset")) == 1 for r in dataset_rows)
    assert sorted(next(iter(row_keys(r, "dataset"))) for r in dataset_rows) == sorted(
        d.name for d in config.datasets
    )
    # And the grid holds: no widget wider than 24 columns or overlapping another
    cells: set[tuple[int, int]] = set()
    for w in body["widgets"]:
        assert w["x"] + w["width"] <= 24
        area = {
            (x, y) for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])
        }
        assert not area & cells, f"{w['properties'].get('title')} overlaps another widget"
        cells |= area


@pytest.mark.parametrize("config_file", CONFIGS)
def test_every_widget_metric_is_one_the_code_emits_with_its_dimensions(
    config_file: Path, tmp_path: Path
) -> None:
    # Given the derived dashboard / Then no widget graphs a metric nobody emits
    _, template, _ = built(config_file, tmp_path)
    _, body = body_of(template)
    assert problems(body) == []
    # And every expression reads ids its widget defines
    for widget in body["widgets"]:
        ids = {
            p["id"]
            for line in widget["properties"].get("metrics", [])
            for p in line
            if isinstance(p, dict) and "id" in p
        }
        for line in widget["properties"].get("metrics", []):
            for part in line:
                if isinstance(part, dict) and "expression" in part:
                    names = set(re.findall(r"\b[a-z][A-Za-z0-9]*\b", part["expression"])) - {part["id"]}
                    assert names <= ids, f"{widget['properties']['title']}: {part['expression']}"


def test_a_widget_on_a_metric_nobody_emits_is_caught() -> None:
    # Given a body with a made-up metric and a real metric with the wrong dimensions
    body = {
        "widgets": [
            {"properties": {"title": "t", "metrics": [["lastgood", "BackupAgeSecs", "service", "lastgood"]]}},
            {
                "properties": {
                    "title": "u",
                    "metrics": [["lastgood", "BackupAgeSeconds", "service", "lastgood"]],
                }
            },
        ]
    }
    # Then the check names both
    found = problems(body)
    assert len(found) == 2 and "BackupAgeSecs is not emitted" in found[0] and "dimensions" in found[1]


def test_the_metric_reader_finds_what_the_alarms_read_and_the_docs_list_everything_it_finds() -> None:
    # Given the names read from the code (through constants and mappings, not only literals)
    emitted = emitted_metric_names()
    # Then the metrics written through constants are there (run.py METRIC_*, regenerate's mapping)
    assert {
        "BackupSuspect",
        "BackupSizeRatio",
        "RecoveryTimeSeconds",
        "RegenerateRejected",
        "KVPendingResync",
    } <= emitted
    # And docs/metrics.md documents every one of them with its dimensions
    assert sorted(emitted - set(documented_dimensions())) == []


@pytest.mark.parametrize("config_file", CONFIGS)
def test_objective_lines_are_the_configs_rpo_rto_and_freshness(config_file: Path, tmp_path: Path) -> None:
    config, template, _ = built(config_file, tmp_path)
    _, body = body_of(template)

    def lines(title: str) -> list[float]:
        (widget,) = [w for w in body["widgets"] if w["properties"].get("title") == title]
        return [a["value"] for a in widget["properties"]["annotations"]["horizontal"]]

    for source in config.sources:
        assert lines(f"{source.name}: time since last good backup vs RPO") == [source.rpo_seconds]
        assert lines(f"{source.name}: restore drill recovery time vs RTO") == [source.rto_seconds]
        assert 1.2 in lines(f"{source.name}: backup size vs baseline")
        assert 1.2 in lines(f"{source.name}: backup duration vs baseline")
    for dataset in config.datasets:
        assert lines(f"{dataset.name}: freshness vs budget") == [dataset.freshness_seconds]


@pytest.mark.parametrize("config_file", CONFIGS)
def test_each_source_row_shows_that_sources_alarms_in_place(config_file: Path, tmp_path: Path) -> None:
    # Given the derived dashboard and template
    config, template, _ = built(config_file, tmp_path)
    text, body = body_of(template)
    alarm_widgets = {
        w["properties"]["title"]: w["properties"]["alarms"] for w in body["widgets"] if w["type"] == "alarm"
    }
    for source in config.sources:
        suffix = derive_template.source_id(source.name)
        named = {
            re.fullmatch(r"\$\{([A-Za-z0-9]+)\.Arn\}", arn).group(1)
            for arn in alarm_widgets[f"{source.name}: alarms"]
        }
        # Then the widget names that source's alarms, every one of them, and no other source's
        assert named >= {prefix + suffix for prefix in PER_SOURCE_ALARM_PREFIXES}
        assert all(logical_id.endswith(suffix) for logical_id in named)
    # And every ARN the body names is an alarm that always exists (no conditional resource)
    for logical_id in set(re.findall(r"\$\{([A-Za-z0-9]+)\.Arn\}", text)):
        assert template["Resources"][logical_id]["Type"] == ALARM_TYPE
        assert "Condition" not in template["Resources"][logical_id]


@pytest.mark.parametrize("config_file", CONFIGS)
def test_the_derived_template_with_its_dashboard_is_cfn_lint_clean(config_file: Path, tmp_path: Path) -> None:
    _, _, out = built(config_file, tmp_path)
    result = subprocess.run(
        [str(ROOT / ".venv/bin/cfn-lint"), str(out)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_yaml_holds_a_placeholder_the_build_replaces(tmp_path: Path) -> None:
    # Given template.yaml (linted as is) / Then its dashboard is a valid one-widget placeholder
    placeholder = raw_template()["Resources"][dashboard.DASHBOARD]["Properties"]["DashboardBody"]
    assert json.loads(placeholder)["widgets"][0]["type"] == "text"
    # And the built template carries the derived body instead
    _, template, _ = built(DEMO_CONFIG, tmp_path)
    text, _ = body_of(template)
    assert "Placeholder" not in text and "${BackupLateAlarmPostgres.Arn}" in text


def test_the_layout_picture_in_docs_is_the_demo_configs_dashboard() -> None:
    # Given docs/dashboard-layout.svg / Then it is what the script draws from today's derivation
    expected = dashboard_layout.render_svg(dashboard_layout.demo_body())
    committed = (ROOT / dashboard_layout.DEFAULT_OUT).read_text(encoding="utf-8")
    assert committed == expected, "regenerate it: .venv/bin/python scripts/dashboard_layout.py"
