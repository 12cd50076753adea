"""`lastgood migrate`: pinned safety backup → migration → rollback to the exact prior state on failure."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from lastgood.backups.store import BackupStore
from lastgood.engines.pg_tools import pg_bin_dir

from tests.helpers.restore import env, pg_snapshot, run_cli

pytestmark = pytest.mark.devstack


def test_failed_migration_is_rolled_back_to_the_exact_prior_state(devstack):
    # Given the seeded database
    devstack.seed()
    url = env("DATABASE_URL")
    before = pg_snapshot(url)
    psql = shlex.quote(str(pg_bin_dir() / "psql"))
    sql = "ALTER TABLE users ADD COLUMN oops int; UPDATE users SET name = 'x'; CREATE TABLE junk(x int)"
    migration = f"{psql} {shlex.quote(url)} -q -c {shlex.quote(sql)} && exit 3"
    try:
        # When a migration that alters a table, rewrites rows, creates a table and then fails runs
        result = run_cli("migrate", "--source", "postgres", "--yes", "--json", "--", "sh", "-c", migration)
        # Then lastgood exits with the migration's status and reports the rollback
        assert result.code == 3, result.err
        outcome = json.loads(result.out)
        assert outcome["rolled_back"] is True and outcome["restore"]["ok"] is True
        # And the database is exactly as before: schema, rows, sequences, indexes; no junk table
        assert pg_snapshot(url) == before
        # And the safety backup is pinned with a reason naming the migration
        manifest = BackupStore.from_settings().read_manifest("postgres", outcome["backup_id"])
        assert manifest.pinned and "before migration" in (manifest.pin_reason or "")
    finally:
        devstack.seed()


def test_declined_rollback_leaves_the_changes_and_names_the_backup(devstack):
    devstack.seed()
    url = env("DATABASE_URL")
    psql = shlex.quote(str(pg_bin_dir() / "psql"))
    migration = f"{psql} {shlex.quote(url)} -q -c 'CREATE TABLE migrate_declined_t(x int)' && exit 4"
    try:
        # When the migration fails and rollback is not confirmed (no --yes, no terminal)
        result = run_cli("migrate", "--source", "postgres", "--", "sh", "-c", migration)
        # Then nothing is rolled back and the way back is printed
        assert result.code == 4
        assert "NOT rolled back" in result.out and "lastgood restore" in result.err
        assert "public.migrate_declined_t" in pg_snapshot(url)
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS migrate_declined_t")


def test_successful_migration_keeps_a_pinned_backup_until_unpinned(devstack):
    # When a migration that succeeds runs
    result = run_cli("migrate", "--source", "postgres", "--reason", "release 42", "--json", "--", "true")
    # Then it exits 0 and its safety backup is pinned with the given reason
    assert result.code == 0, result.err
    backup_id = json.loads(result.out)["backup_id"]
    rows = {r["backup_id"]: r for r in json.loads(run_cli("list", "--source", "postgres", "--json").out)}
    assert rows[backup_id]["pinned"] is True and rows[backup_id]["pin_reason"] == "release 42"
    committed = BackupStore.from_settings().read_manifest("postgres", backup_id)
    # When it is unpinned, then pinned again
    assert run_cli("unpin", backup_id).code == 0
    assert _listed("postgres", backup_id).pinned is False
    assert run_cli("pin", backup_id, "--reason", "keep for audit").code == 0
    # Then the flag and reason follow (pin records), the manifest is the one committed (never
    # rewritten by a pin), and the backup still verifies (objects untouched)
    listed = _listed("postgres", backup_id)
    assert listed.pinned and listed.pin_reason == "keep for audit"
    assert BackupStore.from_settings().read_manifest("postgres", backup_id) == committed
    assert run_cli("verify", backup_id).code == 0
    assert run_cli("unpin", backup_id).code == 0


def _listed(source: str, backup_id: str) -> Any:
    return next(b for b in BackupStore.from_settings().list_backups(source) if b.backup_id == backup_id)


def test_migration_command_that_cannot_start_changes_nothing(devstack):
    result = run_cli("migrate", "--source", "postgres", "--yes", "--json", "--", "/nonexistent/migrate-tool")
    assert result.code == 127
    outcome = json.loads(result.out)
    assert outcome["rolled_back"] is False and "could not start" in result.err
