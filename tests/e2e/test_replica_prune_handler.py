"""A replica-mode deployment's scheduled prune: the prune function, invoked like `sam local invoke`,
applies the config's `[replica].retention` to that deployment's own bucket (the replica)."""

from __future__ import annotations

import json

import pytest
from lastgood.cli import main

from devstack.stack import REPLICA_BUCKET
from tests.helpers.replica import primary, replica, reset_caches, use_replica
from tests.helpers.restore import backup_now, run_cli

pytestmark = pytest.mark.devstack


def test_a_replica_mode_prune_run_applies_the_replicas_policy_to_its_own_bucket(
    clean_aws, tmp_path, monkeypatch, capsys
):
    # Given three upstash backups copied to the replica, whose own policy keeps the newest two
    use_replica(tmp_path, monkeypatch, retention={"keep_last": 2})
    clean_aws.seed()
    ids = [backup_now("upstash") for _ in range(3)]
    assert run_cli("replicate", "--source", "upstash").code == 0
    # And the prune function running in the replica stack: its backup bucket is the replica
    monkeypatch.setenv("LASTGOOD_DEPLOYMENT_MODE", "replica")
    monkeypatch.setenv("BACKUP_BUCKET", REPLICA_BUCKET)
    monkeypatch.delenv("KMS_KEY_ID", raising=False)  # the replica bucket's own default key
    reset_caches()
    event = tmp_path / "prune.json"
    event.write_text('{"source": "upstash", "dry_run": false}')
    capsys.readouterr()
    # When its schedule fires
    code = main(["--no-env-file", "invoke", "prune", "--event", str(event)])
    out = capsys.readouterr().out
    result = json.loads(out)
    # Then it pruned the replica with the replica's policy (the oldest goes) and left the primary alone
    assert code == 0, out
    assert result["sources"]["upstash"]["pruned"] == 1
    left = [b.backup_id for b in replica().list_backups("upstash") if b.committed]
    assert sorted(left) == sorted(ids[1:])
    monkeypatch.setenv("LASTGOOD_DEPLOYMENT_MODE", "primary")
    monkeypatch.setenv("BACKUP_BUCKET", "lastgood-backups")
    reset_caches()
    assert {b.backup_id for b in primary().list_backups("upstash") if b.committed} >= set(ids)
