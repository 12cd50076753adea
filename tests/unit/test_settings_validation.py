"""Bad settings fail at start with the variable's name and what was expected; secrets stay out."""

from __future__ import annotations

import json

import pytest
from lastgood.core.config import load_config_file, parse_duration_seconds
from lastgood.core.errors import ConfigError
from lastgood.core.redact import redact_text, redact_url
from lastgood.core.settings import load_settings


def test_a_malformed_variable_is_named_with_what_was_expected():
    with pytest.raises(ConfigError) as err:
        load_settings({"HEALTH_PROBE_TIMEOUT_S": "soon", "ALLOW_INSECURE_TRANSPORT": "maybe"})
    text = str(err.value)
    assert "HEALTH_PROBE_TIMEOUT_S='soon'" in text
    assert "ALLOW_INSECURE_TRANSPORT='maybe'" in text


def test_a_required_setting_that_is_missing_names_its_variable():
    with pytest.raises(ConfigError, match="BACKUP_BUCKET is not set"):
        load_settings({}).require("backup_bucket")


def test_an_invalid_config_file_names_the_field(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"datasets": [{"name": "x", "collection": "x", "min_count": 0}]}))
    with pytest.raises(ConfigError, match=r"datasets\[0\]\.min_count"):
        load_config_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config_file(tmp_path / "broken.json")


@pytest.mark.parametrize("text,seconds", [("5m", 300), ("1h", 3600), ("1d12h", 129600)])
def test_durations_parse(text, seconds):
    assert parse_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "0h", "soon", "5x"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        parse_duration_seconds(text)


def test_connection_strings_are_redacted_in_urls_and_free_text():
    assert (
        redact_url("postgresql://app:hunter2@db.example.com:5432/app")
        == "postgresql://app:***@db.example.com:5432/app"
    )
    text = redact_text("failed for mongodb+srv://u:pw@cluster0/db?password=x", ("tok123456",))
    assert "pw@" not in text and "password=x" not in text


def test_plaintext_connections_to_remote_hosts_are_refused_unless_opted_out(monkeypatch):
    from lastgood.core.settings import reset_settings
    from lastgood.engines.base import require_tls

    with pytest.raises(ConfigError, match="ALLOW_INSECURE_TRANSPORT"):
        require_tls(
            "postgresql://u@db.example.com/app", secure=False, allow_insecure=False, what="PostgreSQL"
        )
    require_tls("postgresql://u@127.0.0.1/app", secure=False, allow_insecure=False, what="PostgreSQL")
    require_tls("postgresql://u@db.example.com/app", secure=True, allow_insecure=False, what="PostgreSQL")
    require_tls("postgresql://u@db.example.com/app", secure=False, allow_insecure=True, what="PostgreSQL")
    # and each engine applies it
    from lastgood.engines import mongodb, pg_connect, upstash_rest

    monkeypatch.delenv("ALLOW_INSECURE_TRANSPORT", raising=False)
    reset_settings()
    with pytest.raises(ConfigError):
        pg_connect.check_transport("postgresql://u@db.example.com/app")
    pg_connect.check_transport("postgresql://u@db.example.com/app?sslmode=require")
    with pytest.raises(ConfigError):
        mongodb.get_client("mongodb://db.example.com:27017/")
    with pytest.raises(ConfigError):
        upstash_rest.UpstashRest("http://kv.example.com", "t")
    reset_settings()
