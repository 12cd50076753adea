"""A bad config file fails at start, naming the field and what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lastgood.core.config import default_config_path, get_config, load_config_file, reset_config
from lastgood.core.errors import ConfigError


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "lastgood.json"
    path.write_text(json.dumps(doc))
    return path


PG = {"name": "postgres", "engine": "postgres", "url_secret": "DATABASE_URL"}


def test_the_shipped_default_config_is_valid():
    config = load_config_file(default_config_path())
    assert {d.name for d in config.datasets} >= {"prompts", "patterns", "learning"}
    assert {s.name for s in config.sources} >= {"postgres", "mongodb", "upstash"}


@pytest.mark.parametrize(
    "source,field",
    [
        ({**PG, "engine": "oracle"}, "sources[0].engine"),
        ({**PG, "rpo": "soon"}, "sources[0].rpo"),
        ({**PG, "name": "Bad Name"}, "sources[0].name"),
        ({**PG, "surprise": 1}, "sources[0].surprise"),
        ({"name": "kv", "engine": "upstash", "url_secret": "UPSTASH_REDIS_REST_URL"}, "token_secret"),
    ],
)
def test_an_invalid_source_names_the_field(tmp_path, source, field):
    with pytest.raises(ConfigError) as err:
        load_config_file(write(tmp_path, {"sources": [source]}))
    assert field in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_duplicate_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="duplicate source names: postgres"):
        load_config_file(write(tmp_path, {"sources": [PG, PG]}))


def test_an_unknown_source_lists_the_configured_ones():
    config = load_config_file(default_config_path())
    with pytest.raises(ConfigError, match=r"unknown source 'oracle'; configured sources: .*postgres"):
        config.source("oracle")


def test_lastgood_config_pointing_nowhere_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LASTGOOD_CONFIG", str(tmp_path / "missing.json"))
    reset_config()
    try:
        with pytest.raises(ConfigError, match="LASTGOOD_CONFIG"):
            get_config()
    finally:
        monkeypatch.delenv("LASTGOOD_CONFIG")
        reset_config()


def test_rpo_defaults_come_from_the_category():
    config = load_config_file(default_config_path())
    for source in config.sources:
        assert source.rpo_seconds > 0 and source.rto_seconds > 0
