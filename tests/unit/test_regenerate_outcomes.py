"""Regenerate's report shape and the handler's event parsing (pure)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from lastgood.core.errors import ConfigError
from lastgood.site.regenerate import METRIC_BY_STATUS, Outcome, RegenerateReport

from tests.helpers.events import load_event

APP = Path(__file__).resolve().parents[2] / "functions" / "regenerate" / "app.py"


def handler_module():
    spec = importlib.util.spec_from_file_location("lastgood_fn_regenerate_app_unit", APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metric_names_match_docs_metrics_md():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    for name in METRIC_BY_STATUS.values():
        assert f"`{name}`" in doc
    assert set(METRIC_BY_STATUS) == {"published", "repaired", "unchanged", "rejected", "failed"}


def test_report_summarises_outcomes_and_knows_when_everything_failed():
    report = RegenerateReport(
        [Outcome("prompts", "published", count=296), Outcome("patterns", "rejected", reason="empty result")],
        "2025-11-09T10:00:00.000Z",
    )
    out = report.as_dict()
    assert out["summary"] == {"published": 1, "repaired": 0, "unchanged": 0, "rejected": 1, "failed": 0}
    assert [d["status"] for d in out["datasets"]] == ["published", "rejected"]
    assert not report.all_failed
    assert RegenerateReport([Outcome("a"), Outcome("b")], "t").all_failed
    assert not RegenerateReport([], "t").all_failed


@pytest.mark.parametrize(
    ("event_file", "expected"),
    [("regenerate-schedule.json", None), ("regenerate-prompts.json", ["prompts"])],
)
def test_sample_events_parse(event_file, expected):
    assert handler_module().parse_event(load_event(event_file)) == expected


@pytest.mark.parametrize("event", [[], {"datasets": "prompts"}, {"datasets": []}, {"datasets": [1]}])
def test_malformed_events_are_config_errors(event):
    with pytest.raises(ConfigError):
        handler_module().parse_event(event)


def test_an_empty_event_means_every_dataset():
    assert handler_module().parse_event({}) is None
