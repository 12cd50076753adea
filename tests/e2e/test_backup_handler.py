"""The backup Lambda handler with its sample Scheduler events, against the devstack."""

from __future__ import annotations

import importlib.util
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from lastgood.backups.store import BackupStore
from lastgood.core.errors import ConfigError
from lastgood.core.timefmt import iso_z

from tests.helpers.events import load_event

pytestmark = pytest.mark.devstack

APP = Path(__file__).resolve().parents[2] / "functions" / "backup" / "app.py"


def _handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lastgood_fn_backup_app", APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler():
    return _handler_module().lambda_handler


def test_scheduled_event_backs_up_once_and_a_duplicate_is_skipped(handler, lambda_context):
    # Given the postgres schedule event (slot made unique for this test run)
    event = load_event("backup-postgres-schedule.json")
    event["slot"] = iso_z(datetime(2002, 1, 1, tzinfo=UTC) + timedelta(hours=secrets.randbelow(8760)))
    # When it is delivered twice (Scheduler retry / duplicate delivery)
    first = handler(event, lambda_context)
    second = handler(event, lambda_context)
    # Then one backup was committed and the duplicate was skipped without error
    assert first["status"] == "ok" and first["manifest"]["source"] == "postgres"
    assert first["manifest"]["slot"] == event["slot"]
    assert second["status"] == "skipped" and "is committed" in second["message"]
    listed = [
        b for b in BackupStore.from_settings().list_backups("postgres") if b.backup_id == first["backup_id"]
    ]
    assert [b.status for b in listed] == ["complete"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, 'no "source"'),
        ({"source": "nope"}, "unknown source 'nope'"),
        ({"source": "postgres", "slot": 5}, "ISO"),
    ],
)
def test_malformed_events_fail_with_a_clear_error(handler, lambda_context, event, message):
    with pytest.raises(ConfigError, match=message):
        handler(event, lambda_context)


@pytest.mark.parametrize("name", ["backup-mongodb-schedule.json", "backup-upstash-schedule.json"])
def test_every_source_has_a_schedule_event_naming_a_configured_source(name):
    from lastgood.core.config import get_config

    event = load_event(name)
    source, slot = _handler_module().parse_event(event)
    assert get_config().source(source).name == source and slot
