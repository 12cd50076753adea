"""`lastgood verify`: one flipped byte in any stored object fails it, naming the object; drills measure RTO."""

from __future__ import annotations

import json

import pytest
from lastgood.backups.store import BackupStore

from tests.helpers.restore import backup_now, env, flipped_byte, object_keys, pg_is_empty, run_cli

pytestmark = pytest.mark.devstack

SOURCES = ("postgres", "mongodb", "upstash")


@pytest.fixture(scope="module")
def backups(devstack) -> dict[str, str]:
    devstack.seed()
    return {source: backup_now(source) for source in SOURCES}


@pytest.mark.parametrize("source", SOURCES)
def test_a_flipped_byte_in_any_object_fails_verify_naming_it(backups, source):
    backup_id = backups[source]
    keys = object_keys(source, backup_id)
    others = [backups[s] for s in SOURCES if s != source]
    for key in keys:
        relpath = key.split(f"/{backup_id}/", 1)[1]
        # Given one byte of this stored object flipped (same length)
        with flipped_byte(key):
            # When the backup is verified
            result = run_cli("verify", backup_id)
            # Then it exits 6 and names exactly that object
            assert result.code == 6, result.out + result.err
            bad_lines = [line for line in result.out.splitlines() if "BAD OBJECT" in line]
            assert len(bad_lines) == 1 and relpath in bad_lines[0] and "SHA-256" in bad_lines[0]
            # And the untouched backups still verify
            for other in others:
                assert run_cli("verify", other).code == 0
    # And once the byte is put back the backup verifies again
    assert run_cli("verify", backup_id).code == 0


def test_passing_verify_marks_the_backup_verified_in_list(backups):
    # When the postgres backup passes verification
    result = run_cli("verify", backups["postgres"], "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["passed"] is True and doc["integrity"]["objects"] == 1
    # Then verification.json sits next to it and `lastgood list` shows it verified
    listing = run_cli("list", "--source", "postgres", "--json")
    rows = {row["backup_id"]: row for row in json.loads(listing.out)}
    assert rows[backups["postgres"]]["status"] == "verified"
    stored = BackupStore.from_settings().read_verification("postgres", backups["postgres"])
    assert stored is not None and stored.passed is True


def test_a_corrupt_backup_is_not_listed_as_verified(backups):
    (key,) = object_keys("upstash", backups["upstash"])
    with flipped_byte(key):
        assert run_cli("verify", backups["upstash"]).code == 6
        rows = {r["backup_id"]: r for r in json.loads(run_cli("list", "--source", "upstash", "--json").out)}
        assert rows[backups["upstash"]]["status"] == "complete"
    assert run_cli("verify", backups["upstash"]).code == 0


@pytest.mark.parametrize("source", SOURCES)
def test_drill_restores_into_scratch_and_prints_the_measured_recovery_time(backups, source):
    # When the newest backup is drilled into the source's configured scratch target
    result = run_cli("verify", "--latest", "--source", source, "--drill")
    # Then counts match, the measured recovery time is printed against the RTO, and the scratch is wiped
    assert result.code == 0, result.out + result.err
    assert "counts match" in result.out and "measured recovery time" in result.out
    assert "within" in result.out
    if source == "postgres":
        assert pg_is_empty(env("SCRATCH_DATABASE_URL"))


def test_drill_of_a_corrupt_backup_fails_without_touching_the_scratch_target(backups):
    (key,) = object_keys("postgres", backups["postgres"])
    with flipped_byte(key):
        result = run_cli("verify", backups["postgres"], "--drill", "--json")
    assert result.code == 6
    doc = json.loads(result.out)
    assert doc["passed"] is False and "integrity check failed" in doc["drill"]["error"]
    assert pg_is_empty(env("SCRATCH_DATABASE_URL"))
