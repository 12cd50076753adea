"""Pin record keys (state in the name, never mistaken for data) and the configurable slot-lock lease."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lastgood.backups.keys import is_lastgood_document, is_pin_key, parse_key, pin_key, pin_state_from_key
from lastgood.backups.locks import LOCK_LEASE_S, lease_seconds
from lastgood.core.errors import ConfigError

AT = datetime(2025, 1, 29, 2, 0, 0, 123456, tzinfo=UTC)


def test_pin_keys_sort_by_time_and_carry_their_state():
    pinned = pin_key("postgres", "20250129T020000Z-abcdef", AT, "0a0b0c", pinned=True)
    later = pin_key("postgres", "20250129T020000Z-abcdef", AT.replace(second=1), "000000", pinned=False)
    assert pinned == "backups/postgres/20250129T020000Z-abcdef/pins/20250129T020000.123456Z-0a0b0c.pin.json"
    assert sorted([later, pinned]) == [pinned, later]
    assert is_pin_key(pinned) and pin_state_from_key(pinned) is True and pin_state_from_key(later) is False
    assert parse_key(pinned) is not None and is_lastgood_document(parse_key(pinned).relpath)


@pytest.mark.parametrize(
    "relpath", ["pins/app.bson.gz", "pins/app.metadata.json", "app.dump", "db/manifest.json.gz"]
)
def test_data_names_are_not_pin_records(relpath):
    assert not is_pin_key(relpath)
    assert not is_lastgood_document(relpath)


@pytest.mark.parametrize("relpath", ["manifest.json", "db/manifest.json", "a/b/verification.json"])
def test_names_the_policy_and_monitors_match_are_reserved(relpath):
    assert is_lastgood_document(relpath)


def test_the_lease_is_configurable_and_validated(monkeypatch):
    monkeypatch.delenv("BACKUP_LOCK_LEASE_S", raising=False)
    assert lease_seconds() == LOCK_LEASE_S
    monkeypatch.setenv("BACKUP_LOCK_LEASE_S", "3600")
    assert lease_seconds() == 3600
    for bad in ("10", "soon", "-5"):
        monkeypatch.setenv("BACKUP_LOCK_LEASE_S", bad)
        with pytest.raises(ConfigError, match="BACKUP_LOCK_LEASE_S"):
            lease_seconds()
