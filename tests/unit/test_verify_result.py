"""The verification verdict (integrity, drill counts, RTO) and the verify handler's event parsing."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lastgood.backups.restore import RestoreReport, compare_counts
from lastgood.backups.verify import DrillOutcome, VerificationResult
from lastgood.core.errors import ConfigError

from tests.helpers.events import load_event

APP = Path(__file__).resolve().parents[2] / "functions" / "verify" / "app.py"


def _result(*, seconds: float = 2.0, rto: int | None = 60, restored: int = 3) -> VerificationResult:
    drill = RestoreReport("pg", "20250101T000000Z-abcdef", "postgres", "postgresql://h/s", 0.5, seconds - 0.5)
    drill.checks = compare_counts({"public.t": 3}, {"public.t": restored}, None)
    return VerificationResult(
        "pg", "20250101T000000Z-abcdef", datetime(2025, 1, 1, tzinfo=UTC), drill=drill, rto_seconds=rto
    )


def test_drill_within_rto_with_matching_counts_passes():
    result = _result()
    assert result.passed and result.within_rto is True and result.problems() == []
    doc = result.as_dict()
    assert (
        doc["passed"] is True and doc["drill"]["recovery_time_seconds"] == 2.0 and doc["drill"]["within_rto"]
    )


def test_drill_slower_than_the_rto_fails_and_says_by_how_much():
    result = _result(seconds=90.0, rto=60)
    assert not result.passed and result.within_rto is False
    assert result.problems() == ["recovery time 90.0s exceeds the RTO of 60s"]


def test_count_mismatch_fails_naming_the_table():
    result = _result(restored=2)
    assert not result.passed
    assert result.problems() == ["public.t: manifest has 3, restored 2"]


def test_bad_objects_fail_integrity_and_are_each_named():
    result = VerificationResult("pg", "20250101T000000Z-abcdef", datetime(2025, 1, 1, tzinfo=UTC))
    result.bad_objects = {"a.dump": "SHA-256 differs", "b.dump": "size differs"}
    assert not result.integrity_ok and not result.passed
    assert result.problems() == ["a.dump: SHA-256 differs", "b.dump: size differs"]
    assert result.as_dict()["drill"] is None


def test_integrity_only_check_passes_without_a_drill():
    result = VerificationResult("pg", "20250101T000000Z-abcdef", datetime(2025, 1, 1, tzinfo=UTC))
    assert result.passed and result.within_rto is None


def test_a_source_that_could_not_be_drilled_is_a_failure():
    outcome = DrillOutcome("mongodb", error="source 'mongodb' has no complete backup to verify")
    assert not outcome.passed and outcome.as_dict()["error"].startswith("source")


@pytest.fixture(scope="module")
def parse_event():
    spec = importlib.util.spec_from_file_location("lastgood_fn_verify_app_unit", APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_event


def test_schedule_event_means_every_source(parse_event):
    assert parse_event(load_event("verify-schedule.json")) is None


def test_source_event_means_that_source(parse_event):
    assert parse_event(load_event("verify-postgres-schedule.json")) == ["postgres"]
    assert parse_event({"detail": {"sources": ["a", "b"]}}) == ["a", "b"]


@pytest.mark.parametrize("event", [[1], {"source": 3}, {"sources": "postgres"}, {"source": ""}])
def test_malformed_events_are_config_errors(parse_event, event):
    with pytest.raises(ConfigError):
        parse_event(event)


@pytest.mark.parametrize("source", ["postgres", "mongodb", "upstash"])
def test_template_schedule_events_name_their_source(parse_event, source):
    # The template's Scheduler input carries "latest" and "slot" too; they are ignored
    assert parse_event(load_event(f"verify-{source}-schedule.json")) == [source]


def test_a_drill_scratch_target_carries_its_own_token_never_the_sources(monkeypatch, tmp_path):
    import json

    from lastgood.backups.verify import scratch_target
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings

    # Given an Upstash source whose scratch target is another REST database
    config = {
        "sources": [
            {
                "name": "kv",
                "engine": "upstash",
                "url_secret": "KV_URL",
                "token_secret": "KV_TOKEN",
                "scratch_url_secret": "KV_SCRATCH_URL",
            }
        ]
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    monkeypatch.setenv("KV_URL", "https://prod.upstash.io")
    monkeypatch.setenv("KV_TOKEN", "source-token")
    monkeypatch.setenv("KV_SCRATCH_URL", "https://scratch.upstash.io")
    reset_config()
    reset_settings()
    # Then without a scratch_token_secret the drill refuses rather than send the source's token
    with pytest.raises(ConfigError, match="scratch_token_secret"):
        scratch_target("kv")
    # And with one, the scratch's own token is used
    config["sources"][0]["scratch_token_secret"] = "KV_SCRATCH_TOKEN"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("KV_SCRATCH_TOKEN", "scratch-token")
    reset_config()
    reset_settings()
    assert scratch_target("kv") == ("https://scratch.upstash.io", "scratch-token")
    reset_config()
    reset_settings()
