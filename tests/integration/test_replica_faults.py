"""Faults of the cross-region replica (issue 19): unreachable, lagging, its own prune, immutability.

Real services: the devstack's replica stand-in (a second moto bucket in another region, its own
KMS key), filled by `lastgood replicate`. Unreachable means a closed port or a server that never
answers (what a real service cannot be made to do on demand).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from tests.helpers.health import blackhole_server, call_within, closed_port, emf_records
from tests.helpers.replica import primary, replica, replica_at, use_replica
from tests.helpers.restore import backup_now, flipped_byte, object_keys, run_cli

pytestmark = pytest.mark.devstack


# --------------------------------------------------------------------------- unreachable


def test_an_unreachable_replica_degrades_health_with_a_reason_and_the_summary_says_so(
    clean_aws, tmp_path, monkeypatch
):
    from lastgood.monitoring.health import run_checks
    from lastgood.monitoring.summary import build_summary
    from lastgood.monitoring.summary_gather import gather

    # Given a config with a replica whose endpoint refuses every connection
    use_replica(tmp_path, monkeypatch)
    with replica_at(monkeypatch, f"http://127.0.0.1:{closed_port()}"):
        # When health runs (dependencies up) and the summary is built
        started = time.perf_counter()
        report = run_checks(details=True, probes={})
        elapsed = time.perf_counter() - started
        now = datetime.now(UTC)
        summary = build_summary(gather(now), now)
    # Then health is degraded (not crashed, not unhealthy) and says the replica is unreachable
    assert report.status == "degraded"
    replica_check = report.checks["replica"]
    assert replica_check["ok"] is False and replica_check["reachable"] is False
    reasons = [r for r in report.reasons() if r.startswith("replica:")]
    assert reasons and "unreachable" in reasons[0] and "lastgood-backups-replica" in reasons[0]
    assert elapsed < 10
    # And the summary lists it as an issue and in its Replica section
    assert any(issue.startswith("replica unreachable") for issue in summary.issues)
    assert "UNREACHABLE" in summary.message and summary.data["replica"]["reachable"] is False


def test_a_replica_that_never_answers_costs_health_its_deadline_not_a_hang(clean_aws, tmp_path, monkeypatch):
    from lastgood.monitoring.health import run_checks

    # Given a replica endpoint that accepts connections and never answers, and a 3 s deadline
    use_replica(tmp_path, monkeypatch)
    monkeypatch.setenv("HEALTH_DEADLINE_S", "3")
    with blackhole_server() as url, replica_at(monkeypatch, url):
        # When health runs / Then it answers within its deadline (plus a margin)
        report = call_within(5, lambda: run_checks(details=True, probes={}))
    # And the replica check is reported as failing with a reason, the report degraded
    assert report.status == "degraded"
    assert report.checks["replica"]["ok"] is False
    assert any(r.startswith("replica:") for r in report.reasons())


# --------------------------------------------------------------------------- lagging


def test_replication_lagging_is_reported_with_a_reason_and_alarmed_through_its_metric(
    clean_aws, tmp_path, monkeypatch, capsys
):
    from lastgood.backups.replicate import replicate_source
    from lastgood.core.config import get_config
    from lastgood.monitoring.health import run_checks
    from lastgood.monitoring.replica import gather_replica

    # Given two postgres backups of which only the first reached the replica
    use_replica(tmp_path, monkeypatch, max_age="1s")
    clean_aws.seed()
    first = backup_now("postgres")
    second = backup_now("postgres")
    result = replicate_source("postgres", primary=primary(), replica=replica(), backup_ids=[first])
    assert result.copied == [first]
    # When the replica is read (the first copy is now older than max_age = 1 s)
    time.sleep(1.2)
    status = gather_replica(get_config(), now=datetime.now(UTC) + timedelta(seconds=1))
    assert status is not None
    (item,) = [s for s in status.sources if s.source == "postgres"]
    # Then the source is late: its newest copy is the first backup, the second is missing there
    assert item.newest_backup_id == first and item.primary_newest_id == second
    assert item.late and item.lagging and item.missing == 1 and item.lag_s is not None and item.lag_s > 0
    assert "replication lagging" in (item.reason() or "")
    # And the scheduled health run is degraded with that reason and emits the metrics per source
    capsys.readouterr()
    report = run_checks(details=True, scheduled=True, probes={})
    records = emf_records(capsys.readouterr().out)
    assert report.status == "degraded"
    assert any(r.startswith("replica: postgres: newest copy") and "lagging" in r for r in report.reasons())
    mine = [r for r in records if r.get("source") == "postgres" and "ReplicaBackupLate" in r]
    assert mine and mine[0]["ReplicaBackupLate"] == [1.0] and mine[0]["ReplicaBackupAgeSeconds"][0] > 1
    assert mine[0]["ReplicaLagSeconds"][0] > 0
    # And once replication catches up, the lag is gone
    assert replicate_source("postgres", primary=primary(), replica=replica()).copied == [second]
    caught_up = gather_replica(get_config())
    assert caught_up is not None
    (item,) = [s for s in caught_up.sources if s.source == "postgres"]
    assert item.newest_backup_id == second and item.missing == 0


# --------------------------------------------------------------------------- the replica's own prune


def test_prune_on_the_replica_keeps_a_pinned_backup_and_applies_its_own_policy(
    clean_aws, tmp_path, monkeypatch
):
    # Given a replica whose own policy keeps only the newest backup, and three postgres backups copied
    use_replica(tmp_path, monkeypatch, retention={"keep_last": 1})
    clean_aws.seed()
    ids = [backup_now("postgres") for _ in range(3)]
    assert run_cli("replicate", "--source", "postgres").code == 0
    # And the oldest pinned on the primary after it was copied; the next copy run brings the pin over
    assert run_cli("pin", ids[0], "--reason", "before the migration").code == 0
    again = run_cli("replicate", "--source", "postgres", "--json")
    assert again.code == 0 and json.loads(again.out)[0]["records_copied"] == 1
    # When prune runs on the replica
    result = run_cli("prune", "--source", "postgres", "--from", "replica", "--json")
    assert result.code == 0, result.err
    (doc,) = json.loads(result.out)
    # Then it applied the replica's policy, kept the pinned and the newest, removed only the middle one
    assert doc["policy"] == {"keep_last": 1}
    assert doc["pruned"] == [ids[1]]
    left = {b.backup_id for b in replica().list_backups("postgres") if b.committed}
    assert left == {ids[0], ids[2]}
    assert next(b for b in replica().list_backups("postgres") if b.backup_id == ids[0]).pinned
    # And the primary is untouched: its own policy, not the replica's, decides there
    assert {b.backup_id for b in primary().list_backups("postgres") if b.committed} >= set(ids)


# --------------------------------------------------------------------------- immutability on the replica


def test_a_committed_manifest_in_the_replica_is_never_overwritten(clean_aws, tmp_path, monkeypatch):
    from lastgood.backups.keys import manifest_key
    from lastgood.backups.replicate import replicate_source

    # Given a backup committed in the replica by the copy path
    use_replica(tmp_path, monkeypatch)
    clean_aws.seed()
    first = backup_now("upstash")
    assert replicate_source("upstash", primary=primary(), replica=replica()).copied == [first]
    store = replica()
    key = manifest_key("upstash", first)
    stored = store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    # When anything tries to create that manifest again / Then S3 refuses (conditional create)
    with pytest.raises(ClientError) as refused:
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=b"{}", IfNoneMatch="*", **store.sse_args())
    assert refused.value.response["Error"]["Code"] in {"PreconditionFailed", "412"}
    # And a backup whose replica manifest differs is a conflict: reported, never overwritten
    second = backup_now("upstash")
    theirs = primary().read_manifest("upstash", second).model_copy(update={"duration_s": 12345.0})
    other_key = manifest_key("upstash", second)
    store.s3.put_object(
        Bucket=store.bucket, Key=other_key, Body=theirs.to_bytes(), IfNoneMatch="*", **store.sse_args()
    )
    result = run_cli("replicate", "--source", "upstash", "--json")
    assert result.code == 5
    (doc,) = json.loads(result.out)
    assert set(doc["conflicts"]) == {second} and first in doc["already"]
    assert store.read_manifest("upstash", second).duration_s == 12345.0
    assert store.s3.get_object(Bucket=store.bucket, Key=key)["Body"].read() == stored


def test_a_copy_whose_bytes_do_not_match_the_manifest_is_never_committed_in_the_replica(
    clean_aws, tmp_path, monkeypatch
):
    from lastgood.backups.replicate import replicate_source

    # Given a postgres backup with one object damaged in the primary
    use_replica(tmp_path, monkeypatch)
    clean_aws.seed()
    backup_id = backup_now("postgres")
    with flipped_byte(object_keys("postgres", backup_id)[0]):
        # When it is copied to the replica
        result = replicate_source("postgres", primary=primary(), replica=replica())
    # Then the SHA-256 check refuses it, and the replica has no manifest for it (never restorable)
    assert backup_id in result.failed and "SHA-256" in result.failed[backup_id]
    assert not replica().has_manifest("postgres", backup_id)
    # And once the object is intact again the next copy run commits it
    assert replicate_source("postgres", primary=primary(), replica=replica()).copied == [backup_id]
