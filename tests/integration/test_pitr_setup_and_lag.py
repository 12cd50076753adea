"""`lastgood pitr enable/disable/status`, the capture handler, health's PITR check and the hard lag limit."""

from __future__ import annotations

import json

import psycopg
import pytest
from lastgood.backups.store import BackupStore
from lastgood.monitoring.pitr_health import pitr_check
from lastgood.pitr.base import pitr_bases, take_base
from lastgood.pitr.capture import run_capture

from functions.capture.app import lambda_handler as capture_handler
from tests.helpers.pitr import empty_database, execute, pitr_source, snapshot
from tests.helpers.restore import run_cli

pytestmark = pytest.mark.devstack


def _slots(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = current_database()")
        return sorted(str(r[0]) for r in rows)


def _publications(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT pubname FROM pg_publication")]


def test_enable_refuses_tables_without_identity_then_creates_the_publication_and_disable_drops_all(
    devstack, tmp_path
):
    with pitr_source(tmp_path) as (source, url):
        execute(url, "CREATE TABLE logbook (line text)")  # no primary key, no replica identity
        refused = run_cli("pitr", "enable", "--source", source)
        assert refused.code == 2 and "public.logbook" in refused.err and _publications(url) == []
        allowed = run_cli("pitr", "enable", "--source", source, "--allow-no-identity", "--json")
        assert allowed.code == 0, allowed.err
        report = json.loads(allowed.out)
        assert report["wal_level"] == "logical" and report["no_identity"] == ["public.logbook"]
        assert any("rds.logical_replication" in n for n in report["provider_notes"])
        assert any("Supabase" in n for n in report["provider_notes"])
        execute(url, "DROP TABLE logbook")
        take_base(source, on_demand=True)
        assert len(_slots(url)) == 1
        dropped = run_cli("pitr", "disable", "--source", source, "--json")
        assert dropped.code == 0 and len(json.loads(dropped.out)["slots"]) == 1
        assert _slots(url) == [] and _publications(url) == []


def test_pitr_for_a_non_postgres_source_is_a_config_error(devstack, tmp_path):
    from lastgood.core.config_model import SourceConfig

    with pytest.raises(ValueError, match=r"pitr .* is for postgres sources"):
        SourceConfig(name="m", engine="mongodb", url_secret="MONGODB_URI", pitr=True)
    with pytest.raises(ValueError, match="capture_interval must be at least 1m"):
        SourceConfig(
            name="p", engine="postgres", url_secret="DATABASE_URL", pitr=True, capture_interval="10s"
        )


def test_the_capture_handler_commits_a_segment_and_status_reports_lag_and_age(
    devstack, tmp_path, lambda_context
):
    with pitr_source(tmp_path) as (source, url):
        take_base(source, on_demand=True)
        execute(url, "INSERT INTO tags VALUES ('handler', 5)")
        result = capture_handler({"source": source}, lambda_context)
        assert result["status"] == "committed" and result["segment"]["changes"] == 1
        status = run_cli("pitr", "status", "--source", source, "--json")
        assert status.code == 0, status.out
        doc = json.loads(status.out)
        assert doc["lag_bytes"] is not None and doc["segment_age_s"] is not None and doc["segment_age_s"] < 60
        check = pitr_check(scheduled=False)
        assert check["sources"][source]["ok"] is True


def test_slot_lag_past_the_alarm_threshold_is_a_health_reason(devstack, tmp_path):
    with pitr_source(tmp_path, pitr_lag_alarm_bytes=1, pitr_max_lag_bytes=1024**3) as (source, url):
        take_base(source, on_demand=True)
        execute(url, "INSERT INTO customers (name) SELECT 'lag' || g FROM generate_series(1, 200) g")
        check = pitr_check(scheduled=True)
        assert (
            check["ok"] is False and "pitr_lag_alarm_bytes" in check["reason"] and source in check["reason"]
        )


def test_past_the_hard_lag_limit_lastgood_drops_its_slot_loudly_and_takes_a_new_base(devstack, tmp_path):
    with pitr_source(tmp_path, pitr_lag_alarm_bytes=1, pitr_max_lag_bytes=2) as (source, url):
        first = take_base(source, on_demand=True)
        old_slot = first.manifest.extra["pitr"]["slot"]  # type: ignore[union-attr]
        execute(url, "INSERT INTO customers (name) SELECT 'lag' || g FROM generate_series(1, 200) g")
        result = run_capture(source)
        assert result.status == "slot-dropped" and "DROPPED" in result.message and result.new_base_id
        assert old_slot not in _slots(url) and len(_slots(url)) == 1
        bases = pitr_bases(BackupStore.from_settings(), source)
        assert bases[0][0].backup_id == result.new_base_id
        with empty_database() as target:  # the new base holds the changes the dropped slot lost
            assert run_cli("restore", "--source", source, "--to-time", "latest", "--target", target).code == 0
            assert snapshot(target) == snapshot(url)


def test_the_summary_reports_the_age_of_the_newest_change_segment_as_the_pitr_rpo(devstack, tmp_path):
    from datetime import UTC, datetime, timedelta

    from lastgood.monitoring.summary import run as summary_run

    with pitr_source(tmp_path, rpo="5m") as (source, url):
        take_base(source, on_demand=True)
        execute(url, "INSERT INTO tags VALUES ('summary', 1)")
        run_capture(source)
        now = summary_run(publish=False)
        line = next(x for x in now["message"].splitlines() if x.strip().startswith(source))
        assert "PITR: newest change segment" in line and " OK " in line
        later = summary_run(publish=False, now=datetime.now(UTC) + timedelta(minutes=10))
        assert any(f"{source}: newest PITR change segment is" in i for i in later["issues"])


def test_backup_age_of_a_pitr_source_is_its_newest_segments_age_for_the_backup_late_alarm(devstack, tmp_path):
    from datetime import UTC, datetime, timedelta

    from lastgood.core.config import get_config
    from lastgood.monitoring.freshness import backup_freshness

    with pitr_source(tmp_path, rpo="5m") as (source, url):
        base = take_base(source, on_demand=True)
        execute(url, "INSERT INTO tags VALUES ('age', 1)")
        later = datetime.now(UTC) + timedelta(minutes=3)
        segment = run_capture(source).segment
        assert segment is not None and base.manifest is not None
        (item,) = [i for i in backup_freshness(get_config(), now=later) if i.source == source]
        assert item.finished_at == segment.created_time and item.ok  # the segment's time, not the base's


def test_a_pitr_drill_restores_to_a_time_into_the_scratch_target_and_wipes_it(
    devstack, tmp_path, monkeypatch
):
    from lastgood.core.settings import reset_settings

    from tests.helpers.backup import create_database, drop_database, pg_url

    scratch_db = create_database("lg_pitr_scratch")
    monkeypatch.setenv("PITR_SCRATCH_URL", pg_url(scratch_db))
    try:
        with pitr_source(tmp_path, scratch_url_secret="PITR_SCRATCH_URL") as (source, url):
            take_base(source, on_demand=True)
            execute(url, "INSERT INTO tags VALUES ('drill', 1)")
            run_capture(source)
            result = run_cli("verify", "--drill", "--source", source, "--to-time", "latest", "--json")
            assert result.code == 0, result.err
            doc = json.loads(result.out)
            assert doc["passed"] and doc["transactions"] == 1 and doc["recovery_time_seconds"] > 0
            with psycopg.connect(pg_url(scratch_db)) as conn:  # wiped after the drill
                assert conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone() == (0,)
            monkeypatch.setenv("PITR_SCRATCH_URL", url)  # the source itself as "scratch": refused, untouched
            reset_settings()
            refused = run_cli("verify", "--drill", "--source", source, "--to-time", "latest")
            assert refused.code == 8 and "refusing the drill target" in refused.err
            assert snapshot(url)["tags"]
    finally:
        drop_database(scratch_db)


def test_config_check_refuses_bad_pitr_settings_with_their_line(devstack, tmp_path):
    path = tmp_path / "lastgood.toml"
    path.write_text(
        '[[sources]]\nname = "cache"\nengine = "mongodb"\nurl_secret = "MONGODB_URI"\npitr = true\n\n'
        '[[sources]]\nname = "orders"\nengine = "postgres"\nurl_secret = "ORDERS_URL"\npitr = true\n'
        'capture_interval = "5 minutes"\n'
    )
    result = run_cli("config", "check", str(path))
    assert result.code == 2
    assert "pitr (point-in-time recovery) is for postgres sources" in result.out + result.err
    assert "capture_interval" in result.out + result.err
    path.write_text(
        '[[sources]]\nname = "orders"\nengine = "postgres"\nurl_secret = "ORDERS_URL"\npitr = true\n'
    )
    assert run_cli("config", "check", str(path)).code == 0
