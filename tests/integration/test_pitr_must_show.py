"""Point-in-time recovery against the devstack: base, captures, restore to T2 and to latest."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from lastgood.core.timefmt import iso_z
from lastgood.pitr import capture as capture_mod
from lastgood.pitr.base import take_base
from lastgood.pitr.capture import run_capture

from tests.helpers.pitr import empty_database, execute, pitr_source, snapshot
from tests.helpers.restore import run_cli

pytestmark = pytest.mark.devstack


def _mark() -> datetime:
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    return moment


def test_restore_to_t2_equals_the_source_at_t2_and_latest_equals_now(devstack, tmp_path):
    with pitr_source(tmp_path, pitr_part_bytes=2048) as (source, url):
        base = take_base(source, on_demand=True)
        assert base.status == "ok" and base.manifest is not None
        assert base.manifest.extra["pitr"]["slot"].startswith("lastgood_pitr_")
        execute(
            url,
            "INSERT INTO customers (name, bio) VALUES ('new1', repeat('x', 5000)), ('new2', NULL)",
            "UPDATE orders SET amount = amount * 2 WHERE id <= 10",
            "DELETE FROM tags WHERE name = 'a'",
        )
        first = run_capture(source)
        assert first.status == "committed" and first.segment is not None and first.segment.changes >= 13
        t1 = _mark()
        snap1 = snapshot(url)
        execute(
            url,
            "INSERT INTO orders (customer_id, amount, note) SELECT 21, g, 'round2' FROM generate_series(1, 30) g",
            "UPDATE customers SET name = name || '!' WHERE id % 3 = 0",
            "DELETE FROM orders WHERE id BETWEEN 11 AND 15",
            "INSERT INTO tags VALUES ('c', NULL)",
        )
        assert run_capture(source).status == "committed"
        t2 = _mark()
        snap2 = snapshot(url)
        execute(
            url,
            "UPDATE tags SET weight = 99",
            "DELETE FROM orders WHERE customer_id = 21 AND amount > 20",
            "UPDATE customers SET bio = 'changed' WHERE name = 'new2'",
        )
        execute(url, "INSERT INTO customers (name) VALUES ('late')")
        assert run_capture(source).status == "committed"
        t3 = _mark()
        assert t1 < t2 < t3 and snap1 != snap2

        with empty_database() as target:
            result = run_cli(
                "restore", "--source", source, "--to-time", iso_z(t2), "--target", target, "--json"
            )
            assert result.code == 0, result.err
            report = json.loads(result.out)
            assert snapshot(target) == snap2  # every row of every table
            last = report["last_transaction"]
            assert last and last["commit_time"] <= iso_z(t2) and report["stopped"] is None
            assert report["sequences_fixed"] >= 1
            with __import__("psycopg").connect(target) as conn:  # sequences: new rows do not collide
                assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)  # source-only
                conn.execute("INSERT INTO customers (name) VALUES ('after restore')")
                conn.execute("INSERT INTO orders (customer_id, amount) VALUES (1, 1)")

        with empty_database() as target:  # --to-lsn: the last transaction the T2 restore applied
            result = run_cli(
                "restore", "--source", source, "--to-lsn", last["commit_lsn"], "--target", target
            )
            assert result.code == 0, result.err
            assert snapshot(target) == snap2

        with empty_database() as target:
            result = run_cli("restore", "--source", source, "--to-time", "latest", "--target", target)
            assert result.code == 0, result.err
            assert "last transaction applied: xid" in result.out
            assert snapshot(target) == snapshot(url)

        with empty_database() as target:  # --to-time T1 (the first capture only)
            assert (
                run_cli("restore", "--source", source, "--to-time", iso_z(t1), "--target", target).code == 0
            )
            assert snapshot(target) == snap1


def test_a_crash_between_segment_commit_and_slot_advance_loses_nothing_and_duplicates_nothing(
    devstack, tmp_path, monkeypatch
):
    with pitr_source(tmp_path) as (source, url):
        assert take_base(source, on_demand=True).status == "ok"
        execute(url, "INSERT INTO tags VALUES ('crash1', 1)", "UPDATE orders SET note = 'x' WHERE id = 3")
        real = capture_mod.advance_slot

        def crash(*_args, **_kwargs):
            raise RuntimeError("killed after the segment commit, before the slot advance")

        monkeypatch.setattr(capture_mod, "advance_slot", crash)
        with pytest.raises(Exception, match="killed after the segment commit"):
            run_capture(source)
        monkeypatch.setattr(capture_mod, "advance_slot", real)
        execute(url, "INSERT INTO tags VALUES ('crash2', 2)", "DELETE FROM tags WHERE name = 'b'")
        again = run_capture(source)  # re-reads the first transaction from the slot: skipped by LSN
        assert again.status == "committed" and again.skipped_transactions == 1
        assert again.segment is not None and again.segment.seq == 2 and again.segment.transactions == 1
        assert run_capture(source).status == "nothing-new"
        with empty_database() as target:
            result = run_cli(
                "restore", "--source", source, "--to-time", "latest", "--target", target, "--json"
            )
            assert result.code == 0, result.err
            assert json.loads(result.out)["transactions"] == 2  # each change once: none lost, none twice
            assert snapshot(target) == snapshot(url)
