"""Must show (issue 19): a restore from the cross-region replica round-trips for each engine while
the primary backup bucket is unreachable, and a restore drill runs from the replica too.

The replica is the devstack's stand-in bucket (another region, its own KMS key), filled by
`lastgood replicate` — the commit protocol of a backup, standing in for S3 Replication, which
moto does not do. During the restore, S3 for the primary points at a closed port.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers.replica import primary_unreachable, use_replica
from tests.helpers.restore import (
    assert_same_redis,
    backup_now,
    env,
    mongo_db_of,
    mongo_snapshot,
    pg_snapshot,
    redis_snapshot,
    run_cli,
    wipe,
)

pytestmark = pytest.mark.devstack


def _pg(url: str) -> Any:
    return pg_snapshot(url)


def _mongo(url: str) -> Any:
    return mongo_snapshot(url, mongo_db_of(url))


def _redis(url: str) -> Any:
    return redis_snapshot(url)


def _same(a: Any, b: Any) -> None:
    assert a == b


def _same_redis(a: Any, b: Any) -> None:
    assert_same_redis(a, b)


ENGINES: dict[str, tuple[str, str, Callable[[str], Any], Callable[[Any, Any], None]]] = {
    # source: (its URL, the scratch target, snapshot, compare)
    "postgres": ("DATABASE_URL", "SCRATCH_DATABASE_URL", _pg, _same),
    "mongodb": ("MONGODB_URI", "SCRATCH_MONGODB_URI", _mongo, _same),
    "upstash": ("REDIS_URL", "SCRATCH_REDIS_URL", _redis, _same_redis),
}


@pytest.mark.parametrize("source", sorted(ENGINES))
def test_restore_from_the_replica_round_trips_while_the_primary_bucket_is_unreachable(
    source, clean_aws, tmp_path, monkeypatch
):
    url_name, scratch_name, snapshot, compare = ENGINES[source]
    # Given a config with a replica, the seeded source, an empty scratch target and one backup
    use_replica(tmp_path, monkeypatch)
    clean_aws.seed()
    scratch = env(scratch_name)
    wipe(source, scratch)
    seed = snapshot(env(url_name))
    backup_id = backup_now(source)
    # And that backup copied to the replica by lastgood's own copy path
    copied = run_cli("replicate", "--source", source, "--json")
    assert copied.code == 0, copied.err
    assert json.loads(copied.out)[0]["copied"] == [backup_id]
    try:
        with primary_unreachable(monkeypatch):
            # When the primary bucket cannot be reached at all
            gone = run_cli("list", "--source", source)
            assert gone.code != 0 and "unreachable" in gone.err
            # And the latest backup is restored from the replica
            result = run_cli(
                "restore", "--latest", "--source", source, "--target", scratch, "--from", "replica", "--json"
            )
        # Then it succeeds with the replicated backup, and the data is the source's, value by value
        assert result.code == 0, result.err
        report = json.loads(result.out)
        assert report["backup_id"] == backup_id and report["ok"] is True
        compare(snapshot(scratch), seed)
    finally:
        wipe(source, scratch)


def test_a_restore_drill_runs_from_the_replica_while_the_primary_bucket_is_unreachable(
    clean_aws, tmp_path, monkeypatch
):
    # Given a postgres backup copied to the replica
    use_replica(tmp_path, monkeypatch)
    clean_aws.seed()
    backup_id = backup_now("postgres")
    assert run_cli("replicate", "--source", "postgres").code == 0
    # When the primary is unreachable and the drill reads the replica
    with primary_unreachable(monkeypatch):
        result = run_cli(
            "verify", "--latest", "--source", "postgres", "--drill", "--from", "replica", "--json"
        )
    # Then the drill restores the replica's copy into the scratch target, counts match, and the
    # result is recorded next to the copy in the replica
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["backup_id"] == backup_id and doc["passed"] is True
    from tests.helpers.replica import replica

    record = replica().read_verification("postgres", backup_id)
    assert record is not None and record.passed and record.drill is not None
