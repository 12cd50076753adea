"""PITR faults against the devstack: each one loses nothing and never replays over a gap."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from botocore.exceptions import EndpointConnectionError
from lastgood.backups import segment_keys
from lastgood.backups.store import BackupStore
from lastgood.core.timefmt import iso_z
from lastgood.pitr import pgoutput as pg
from lastgood.pitr.base import pitr_bases, take_base
from lastgood.pitr.capture import run_capture
from lastgood.pitr.lag import pitr_status
from lastgood.pitr.segments import FrameReader, list_segments, read_part, read_segment
from lastgood.pitr.slot import SlotLost

from tests.helpers.pitr import empty_database, execute, pitr_source, snapshot
from tests.helpers.restore import run_cli

pytestmark = pytest.mark.devstack


def _confirmed(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE database = current_database()"
        ).fetchone()
    return row[0] if row else None


def _restore_latest(source: str, target: str) -> Any:
    return run_cli("restore", "--source", source, "--to-time", "latest", "--target", target, "--json")


class _S3Down:
    """The bucket's client, except that every put fails as if S3 were unreachable."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def put_object(self, **_kwargs: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="http://s3.down")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_s3_down_during_capture_commits_nothing_and_leaves_the_slot(devstack, tmp_path):
    with pitr_source(tmp_path) as (source, url):
        take_base(source, on_demand=True)
        execute(url, "INSERT INTO tags VALUES ('s3down', 1)")
        before = _confirmed(url)
        real = BackupStore.from_settings()
        down = BackupStore(real.bucket, real.kms_key_id, _S3Down(real.s3))
        with pytest.raises(EndpointConnectionError):
            run_capture(source, store=down)
        base_id = pitr_bases(real, source)[0][0].backup_id
        assert list_segments(real, source, base_id) == [] and _confirmed(url) == before
        result = run_cli("capture", "--source", source)  # S3 back: the change is still there
        assert result.code == 0, result.err
        with empty_database() as target:
            assert _restore_latest(source, target).code == 0
            assert snapshot(target) == snapshot(url)


def test_a_slot_dropped_behind_lastgoods_back_fails_capture_loudly_and_health_says_so(devstack, tmp_path):
    with pitr_source(tmp_path) as (source, url):
        base = take_base(source, on_demand=True)
        slot = base.manifest.extra["pitr"]["slot"]  # type: ignore[union-attr]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        with pytest.raises(SlotLost, match=slot):
            run_capture(source)
        result = run_cli("capture", "--source", source)
        assert result.code == 5 and slot in result.err and "new base" in result.err
        status = pitr_status(source)
        assert not status.ok and any(slot in r and "missing" in r for r in status.reasons)


def test_a_transaction_larger_than_one_part_is_split_and_stitched(devstack, tmp_path):
    with pitr_source(tmp_path, pitr_part_bytes=1024) as (source, url):
        take_base(source, on_demand=True)
        execute(
            url,
            "INSERT INTO customers (name, bio) SELECT 'bulk' || g, md5(g::text) FROM generate_series(1, 400) g",
        )
        segment = run_capture(source).segment
        assert segment is not None and segment.transactions == 1 and len(segment.parts) > 10
        with empty_database() as target:
            assert _restore_latest(source, target).code == 0
            assert snapshot(target) == snapshot(url)


def test_restore_times_before_the_oldest_base_or_in_the_future_are_refused(devstack, tmp_path):
    with pitr_source(tmp_path) as (source, _url):
        before = datetime.now(UTC) - timedelta(seconds=5)
        take_base(source, on_demand=True)
        with empty_database() as target:
            early = run_cli("restore", "--source", source, "--to-time", iso_z(before), "--target", target)
            assert early.code == 2 and "before the oldest PITR base" in early.err
            future = iso_z(datetime.now(UTC) + timedelta(hours=1))
            late = run_cli("restore", "--source", source, "--to-time", future, "--target", target)
            assert late.code == 2 and "in the future" in late.err
            bad = run_cli("restore", "--source", source, "--to-lsn", "nonsense", "--target", target)
            assert bad.code == 2 and "--to-lsn" in bad.err
            with psycopg.connect(target) as conn:  # nothing was written
                assert conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone() == (0,)


def test_a_corrupt_segment_in_the_middle_stops_restore_before_it(devstack, tmp_path):
    with pitr_source(tmp_path) as (source, url):
        take_base(source, on_demand=True)
        execute(url, "INSERT INTO tags VALUES ('one', 1)")
        run_capture(source)
        after_first = snapshot(url)
        execute(url, "INSERT INTO tags VALUES ('two', 2)")
        second = run_capture(source).segment
        execute(url, "INSERT INTO tags VALUES ('three', 3)")
        run_capture(source)
        assert second is not None
        store = BackupStore.from_settings()
        key = segment_keys.part_key(source, second.base_id, second.seq, second.parts[0].name)
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=b"garbage")  # bit rot / tampering
        with empty_database() as target:
            result = _restore_latest(source, target)
            assert result.code == 6 and "segment 2 is damaged" in result.err and "NOT applied" in result.err
            assert snapshot(target) == after_first  # segment 3 was never applied over the gap


def test_unchanged_toast_values_stay_and_truncate_replays(devstack, tmp_path):
    with pitr_source(tmp_path) as (source, url):
        big = "".join(
            f"{i:08x}" for i in range(4000)
        )  # ~32 KB, incompressible enough to be TOASTed out of line
        execute(url, f"INSERT INTO customers (name, bio) VALUES ('toast', '{big}')")
        take_base(source, on_demand=True)
        execute(url, "UPDATE customers SET name = 'toast2' WHERE name = 'toast'", "TRUNCATE tags")
        execute(url, "INSERT INTO tags VALUES ('after-truncate', 7)")
        segment = run_capture(source).segment
        assert segment is not None
        store = BackupStore.from_settings()
        frames = FrameReader("test")
        messages = [pg.decode(d) for p in segment.parts for _, d in frames.feed(read_part(store, segment, p))]
        assert any(isinstance(m, pg.Update) and pg.UNCHANGED in m.new for m in messages)
        assert any(isinstance(m, pg.Truncate) for m in messages)
        with empty_database() as target:
            assert _restore_latest(source, target).code == 0
            assert snapshot(target) == snapshot(url)
            with psycopg.connect(target) as conn:
                assert conn.execute("SELECT bio FROM customers WHERE name = 'toast2'").fetchone() == (big,)


def test_a_schema_change_ends_the_chain_takes_a_new_base_and_is_never_replayed_across(devstack, tmp_path):
    with pitr_source(tmp_path) as (source, url):
        take_base(source, on_demand=True)
        execute(url, "INSERT INTO tags VALUES ('before', 1)")
        run_capture(source)
        time.sleep(0.05)
        before_change = datetime.now(UTC)
        snap_before = snapshot(url)
        time.sleep(0.05)
        execute(url, "ALTER TABLE tags ADD COLUMN colour text")
        execute(url, "INSERT INTO tags VALUES ('after', 2, 'red')")
        changed = run_capture(source)
        assert changed.status == "schema-change" and changed.new_base_id
        assert changed.segment is not None and changed.segment.schema_change is not None
        assert changed.segment.schema_change.relation == "public.tags"
        store = BackupStore.from_settings()
        bases = pitr_bases(store, source)
        assert bases[0][0].backup_id == changed.new_base_id and len(bases) == 2
        old = bases[1]
        assert read_segment(store, source, old[0].backup_id, 2).schema_change is not None
        gap = datetime.now(UTC)  # after the schema change, and after the new base: the new base serves it
        execute(url, "INSERT INTO tags VALUES ('later', 3, 'blue')")
        assert run_capture(source).status == "committed"
        with empty_database() as target:
            between = iso_z(bases[0][1].consistent_time - timedelta(milliseconds=1))
            refused = run_cli("restore", "--source", source, "--to-time", between, "--target", target)
            assert refused.code == 2 and "schema change" in refused.err
        with empty_database() as target:
            ok = run_cli("restore", "--source", source, "--to-time", iso_z(before_change), "--target", target)
            assert ok.code == 0, ok.err
            assert snapshot(target) == snap_before
        with empty_database() as target:
            result = _restore_latest(source, target)
            assert result.code == 0, result.err
            assert json.loads(result.out)["base_id"] == changed.new_base_id
            assert snapshot(target, {"tags": "name"}) == snapshot(url, {"tags": "name"}) and gap


def test_prune_removes_a_base_with_its_segments_and_keeps_every_segment_a_kept_base_needs(devstack, tmp_path):
    from lastgood.backups.prune import prune_source
    from lastgood.backups.retention import RetentionPolicy

    with pitr_source(tmp_path) as (source, url):
        old = take_base(source, on_demand=True).backup_id
        execute(url, "INSERT INTO tags VALUES ('old-chain', 1)")
        run_capture(source)
        time.sleep(1.1)  # backup ids are per second
        new = take_base(source, on_demand=True).backup_id  # the old slot: a last capture, then dropped
        execute(url, "INSERT INTO tags VALUES ('new-chain', 2)")
        run_capture(source)
        store = BackupStore.from_settings()
        assert list_segments(store, source, str(old)) and list_segments(store, source, str(new)) == [1]
        result = prune_source(
            source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), force=True
        )
        assert result.deleted_keys > 0
        listed = store.s3.list_objects_v2(Bucket=store.bucket, Prefix=f"backups/{source}/{old}/")
        assert listed.get("KeyCount", 0) == 0  # the old base and every one of its segments
        assert list_segments(store, source, str(new)) == [1]
        with empty_database() as target:
            assert _restore_latest(source, target).code == 0
            assert snapshot(target) == snapshot(url)


def test_two_captures_racing_for_one_segment_commit_it_once(devstack, tmp_path, monkeypatch):
    from lastgood.pitr import capture as capture_mod
    from lastgood.pitr import segments as segments_mod

    with pitr_source(tmp_path) as (source, url):
        take_base(source, on_demand=True)
        execute(url, "INSERT INTO tags VALUES ('race', 1)")
        real_commit = segments_mod.commit_segment
        advanced: list[int] = []

        def rival_first(store: Any, manifest: Any) -> None:  # another run commits the same seq first
            real_commit(store, manifest.model_copy(update={"created_at": "2000-01-01T00:00:00Z"}))
            real_commit(store, manifest)

        monkeypatch.setattr(segments_mod, "commit_segment", rival_first)
        monkeypatch.setattr(capture_mod, "advance_slot", lambda *a: advanced.append(1))
        with pytest.raises(Exception, match="committed by another capture run"):
            run_capture(source)
        assert advanced == []  # the loser never advances the slot


def test_replay_stops_when_the_target_diverged_and_keeps_nothing_of_that_transaction(devstack):
    from lastgood.pitr.replay import Replayer, ReplayError

    cols = (pg.Column("id", 23, -1, True), pg.Column("v", 25, -1, False))
    rel = pg.Relation(1, "public", "diverge", "d", cols)
    with empty_database() as target:
        execute(target, "CREATE TABLE diverge (id int PRIMARY KEY, v text)")
        with psycopg.connect(target) as conn:
            replayer = Replayer(conn)
            replayer.apply(rel)
            replayer.begin()
            replayer.apply(pg.Insert(1, ("1", "kept?")))
            replayer.apply(pg.Delete(1, ("2", None), "K"))  # row 2 was never there
            with pytest.raises(ReplayError, match="matched 0 rows"):
                replayer.commit()
        with psycopg.connect(target) as conn:
            assert conn.execute("SELECT count(*) FROM diverge").fetchone() == (0,)
