"""Prune against the devstack's S3 (moto): exactly the planned backups go, nothing else."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lastgood.backups.prune import PrunePartialFailure, prune_source
from lastgood.backups.retention import RetentionPolicy
from lastgood.backups.store import BackupStore
from lastgood.cli import main
from lastgood.core import aws
from lastgood.core.config import default_config_path, read_config_document, reset_config
from lastgood.core.settings import get_settings, reset_settings
from lastgood.storage import audit

from tests.helpers.prune import make_backup as put_backup

pytestmark = pytest.mark.devstack
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def make_backup(store, source, when, **kw):
    return put_backup(store.s3, store.bucket, source, when, **kw)


def ids(store, source):
    return {b.backup_id for b in store.list_backups(source)}


def keys_under(store, prefix):
    paginator = store.s3.get_paginator("list_objects_v2")
    return sorted(
        o["Key"]
        for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    )


@pytest.fixture
def store(devstack):
    return BackupStore(devstack.env["BACKUP_BUCKET"], devstack.env["KMS_KEY_ID"], aws.client("s3"))


def test_dry_run_deletes_nothing_and_the_real_run_deletes_exactly_the_plan(store):
    # Given six daily backups (one pinned), an incomplete one past the grace period, and a
    # neighbouring source whose name shares the prefix
    source = f"prune-{uuid.uuid4().hex[:6]}"
    made = [
        make_backup(store, source, NOW - timedelta(days=d), pinned=(d == 5), pin_reason="before migration 7")
        for d in range(6)
    ]
    stale = make_backup(store, source, NOW - timedelta(days=2, hours=3), complete=False)
    neighbour = make_backup(store, source + "-b", NOW - timedelta(days=9))
    before = keys_under(store, "backups/")
    policy = RetentionPolicy.from_dict({"keep_last": 2})
    # When planned with dry_run
    dry = prune_source(source, store=store, policy=policy, dry_run=True, now=NOW)
    # Then nothing is deleted, and the plan keeps the 2 newest plus the pinned one, with reasons
    assert keys_under(store, "backups/") == before
    planned_removed = {d.backup.backup_id for d in dry.plan.remove}
    assert planned_removed == {made[2], made[3], made[4], stale}
    reasons = {d.backup.backup_id: d.reasons for d in dry.plan.keep}
    assert reasons == {
        made[0]: ["last snapshot"],
        made[1]: ["last snapshot"],
        made[5]: ["pinned (before migration 7)"],
    }
    assert dry.deleted_keys == 0 and dry.audit_key is None
    # When run for real (manifests and data deletes recorded in the order they are sent)
    sent = []
    hooks = {
        "before-call.s3.DeleteObject": lambda **_: sent.append("manifest"),
        "before-call.s3.DeleteObjects": lambda **_: sent.append("batch"),
    }
    for event, hook in hooks.items():
        store.s3.meta.events.register(event, hook)
    try:
        real = prune_source(source, store=store, policy=policy, now=NOW)
    finally:
        for event, hook in hooks.items():
            store.s3.meta.events.unregister(event, hook)
    # Then exactly those backups (every object) are gone, nothing else in the bucket changed
    removed_prefixes = tuple(f"backups/{source}/{b}/" for b in planned_removed)
    assert keys_under(store, "backups/") == [k for k in before if not k.startswith(removed_prefixes)]
    assert ids(store, source) == {made[0], made[1], made[5]}
    assert neighbour in ids(store, source + "-b")
    # three manifests went first, one by one, then the data in one batch
    assert sent == ["manifest", "manifest", "manifest", "batch"]
    assert real.deleted_keys == 3 * 3 + 2
    assert sorted(real.pruned) == sorted(planned_removed)
    # and the audit record lists what was deleted
    record = json.loads(store.s3.get_object(Bucket=store.bucket, Key=real.audit_key)["Body"].read())
    assert real.audit_key.startswith("audit/prune/")
    assert record["kind"] == "prune" and record["result"] == "ok" and record["source"] == source
    assert sorted(record["pruned"]) == sorted(planned_removed)
    assert record["deleted_keys"] == real.deleted_keys
    assert any(r["id"] == record["id"] for r in audit.list_records(store.bucket, "prune", s3_client=store.s3))


def test_a_pinned_backup_survives_any_policy(store):
    source = f"prune-{uuid.uuid4().hex[:6]}"
    pinned = make_backup(store, source, NOW - timedelta(days=400), pinned=True)
    newest = make_backup(store, source, NOW)
    for raw in (
        {"keep_last": 1},
        {"keep_hourly": 1},
        {"keep_within": "1h"},
        {"keep_yearly": 1},
        {"keep_within_daily": "1d"},
    ):
        make_backup(store, source, NOW - timedelta(days=30))  # something for the policy to remove
        result = prune_source(source, store=store, policy=RetentionPolicy.from_dict(raw), now=NOW)
        assert len(result.pruned) == 1, raw
        assert ids(store, source) == {pinned, newest}, raw


def test_a_partial_delete_failure_reports_the_keys_that_remain(store, monkeypatch):
    source = f"prune-{uuid.uuid4().hex[:6]}"
    old = make_backup(store, source, NOW - timedelta(days=2), objects=3)
    make_backup(store, source, NOW)
    real = store.s3.delete_objects
    victims = []

    def flaky(**kwargs):
        # fault injection: S3 answers InternalError for one key of the batch (a real bucket can,
        # moto cannot on demand); the other keys are really deleted
        victim = kwargs["Delete"]["Objects"][-1]["Key"]
        victims.append(victim)
        kwargs["Delete"]["Objects"] = kwargs["Delete"]["Objects"][:-1]
        response = real(**kwargs)
        response.setdefault("Errors", []).append(
            {"Key": victim, "Code": "InternalError", "Message": "We encountered an internal error."}
        )
        return response

    monkeypatch.setattr(store.s3, "delete_objects", flaky)
    with pytest.raises(PrunePartialFailure) as err:
        prune_source(source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), now=NOW)
    # Then the error names exactly the key that remains, and why
    remaining = keys_under(store, f"backups/{source}/{old}/")
    assert remaining == victims
    assert victims[0] in str(err.value) and "InternalError" in str(err.value)
    # and the half-pruned backup reads as incomplete (its manifest went first), never as valid
    assert {b.backup_id: b.status for b in store.list_backups(source)}[old] == "incomplete"
    # and the audit record says partial, with the remaining key
    records = audit.list_records(store.bucket, "prune", s3_client=store.s3)
    mine = [r for r in records if r.get("source") == source]
    assert mine[-1]["result"] == "partial" and mine[-1]["failed_keys"] == victims


def test_a_malformed_policy_is_a_clear_error_and_deletes_nothing(
    store, devstack, tmp_path, monkeypatch, capsys
):
    # Given real-looking backups of the postgres source and a config whose policy is malformed
    make_backup(store, "postgres", NOW - timedelta(days=40))
    make_backup(store, "postgres", NOW - timedelta(days=41))
    before = keys_under(store, "backups/")
    config = read_config_document(current_config_path())
    for source in config["sources"]:
        source["retention"] = {"keep_daily": -2, "keep_fortnightly": 1}
    path = tmp_path / "bad-policy.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    reset_settings()
    reset_config()
    try:
        # When pruned from the CLI with that configured policy (one source, then all)
        code = main(["--no-env-file", "prune", "--source", "postgres"])
        err = capsys.readouterr().err
        code_all = main(["--no-env-file", "prune"])
        err_all = capsys.readouterr().err
    finally:
        monkeypatch.undo()
        reset_settings()
        reset_config()
    # And with the suite's valid config but a bad --keep flag
    code_flags = main(["--no-env-file", "prune", "--source", "postgres", "--keep-daily", "-3"])
    err_flags = capsys.readouterr().err
    # Then (issue 15) the config file is refused whole at start, each policy named by its place
    # (exit 2, before any listing or deletion); a bad flag is a retention error (exit 9)
    assert code == code_all == 2
    assert "sources[0].retention: unknown retention rule keep_fortnightly" in err
    assert err_all.count("unknown retention rule") == len(config["sources"])
    assert code_flags == 9
    assert "--keep-* flags: keep_daily must be >= 0 (or -1 for unlimited), got -3" in err_flags
    assert keys_under(store, "backups/") == before


def current_config_path():
    configured = get_settings().config_path
    return Path(configured) if configured else default_config_path()


def test_objects_under_object_lock_are_skipped_and_reported_not_errors(devstack):
    # Given a bucket with Object Lock and a backup whose objects are retained in COMPLIANCE mode
    s3 = aws.client("s3")
    bucket = f"locked-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    store = BackupStore(bucket, None, s3)
    source = "locked"
    old = make_backup(store, source, NOW - timedelta(days=3))
    older = make_backup(store, source, NOW - timedelta(days=4))
    make_backup(store, source, NOW)
    until = datetime.now(UTC) + timedelta(days=1)
    for key in keys_under(store, f"backups/{source}/{old}/"):
        s3.put_object_retention(
            Bucket=bucket, Key=key, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until}
        )
    # When pruned (2 of 3 removed: more than the share, so --force, issue 13)
    result = prune_source(
        source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), now=NOW, force=True
    )
    # Then the locked backup is reported as skipped, not as a failure, and the other one is pruned
    assert result.locked_backups == [old] and not result.failed
    assert result.pruned == [older]
    assert old in ids(store, source) and older not in ids(store, source)
    locked = next(d for d in result.plan.remove if d.backup.backup_id == old)
    assert locked.reasons[-1].startswith("Object Lock until ")
