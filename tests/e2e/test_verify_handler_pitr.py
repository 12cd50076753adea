"""The weekly verify handler proves point-in-time recovery for `pitr = true` sources.

The sample event `verify-orders-schedule.json` is the Scheduler input for a PITR source; each test
points it at its own PITR source (the bucket is shared by the session, so names are unique).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from lastgood.backups import segment_keys
from lastgood.backups.store import BackupStore
from lastgood.core.errors import RestoreError
from lastgood.monitoring.summary import run as summary_run
from lastgood.pitr.base import take_base
from lastgood.pitr.capture import run_capture
from lastgood.pitr.segments import read_segment

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.events import load_event
from tests.helpers.health import emf_records
from tests.helpers.pitr import execute, pitr_source

pytestmark = pytest.mark.devstack

APP = Path(__file__).resolve().parents[2] / "functions" / "verify" / "app.py"


def _handler_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lastgood_fn_verify_app_pitr", APP)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(source: str) -> dict[str, Any]:
    event = load_event("verify-orders-schedule.json")
    event["source"] = source
    return event


def _metrics(text: str, source: str) -> dict[str, float]:
    """Metric name → value of the EMF records with dimension source=`source`."""
    out: dict[str, float] = {}
    for doc in emf_records(text):
        if doc.get("source") != source:
            continue
        for block in doc["_aws"]["CloudWatchMetrics"]:
            for metric in block["Metrics"]:
                value = doc[metric["Name"]]
                out[metric["Name"]] = float(value[0] if isinstance(value, list) else value)
    return out


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    db = create_database("lg_pitr_drill_scratch")
    monkeypatch.setenv("PITR_SCRATCH_URL", pg_url(db))
    try:
        yield pg_url(db)
    finally:
        drop_database(db)


def _public_tables(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    return int(row[0]) if row else -1


def test_the_weekly_drill_of_a_pitr_source_proves_snapshot_and_point_in_time_and_the_summary_reports_it(
    devstack, tmp_path, scratch, lambda_context, capsys
):
    with pitr_source(tmp_path, scratch_url_secret="PITR_SCRATCH_URL") as (source, url):
        # Given a PITR base and two committed change segments after it
        base = take_base(source, on_demand=True)
        assert base.manifest is not None
        execute(
            url, "INSERT INTO tags VALUES ('w1', 1)", "UPDATE customers SET name = 'renamed' WHERE id = 3"
        )
        run_capture(source)
        execute(url, "DELETE FROM orders WHERE id = 5", "INSERT INTO tags VALUES ('w2', 2)")
        last_segment = run_capture(source).segment
        assert last_segment is not None and last_segment.last is not None
        capsys.readouterr()
        # When the weekly schedule fires for the source
        response = _handler_module().lambda_handler(_event(source), lambda_context)
        # Then the snapshot drill and the PITR drill both ran and passed, both in the response
        (result,) = response["results"]
        assert response["passed"] is True and result["source"] == source
        assert result["snapshot_passed"] is True and result["backup_id"] == base.manifest.backup_id
        pitr = result["pitr"]
        assert (
            pitr["passed"] is True and pitr["problems"] == [] and pitr["base_id"] == base.manifest.backup_id
        )
        assert pitr["transactions"] == 2 and pitr["segments"] == 2 and pitr["stopped"] is None
        assert pitr["last_transaction"]["commit_lsn"] == last_segment.last.commit_lsn  # the newest change
        assert 0 < pitr["recovery_time_seconds"] < pitr["rto_seconds"]
        # And both drills' metrics were emitted with the source dimension
        emitted = _metrics(capsys.readouterr().out, source)
        assert emitted["RestoreTestSuccess"] == 1 and emitted["PitrDrillSuccess"] == 1
        assert emitted["PitrRecoveryTimeSeconds"] == pytest.approx(pitr["recovery_time_seconds"], abs=0.01)
        # And the base's verification record carries the PITR result next to the snapshot drill
        record = BackupStore.from_settings().read_verification(source, base.manifest.backup_id)
        assert record is not None and record.passed and record.drill is not None and record.pitr is not None
        assert record.pitr.ok and record.pitr.stopped is None and record.pitr.within_rto is True
        assert record.pitr.last_commit_time == last_segment.last.commit_time
        assert (
            record.pitr.transactions == 2
            and record.pitr.recovery_time_seconds == pitr["recovery_time_seconds"]
        )
        # And the scratch target was wiped after the drill
        assert _public_tables(scratch) == 0
        # And the daily summary reports the PITR drill's recovery time and verdict
        summary = summary_run(publish=False)
        line = next(
            x for x in summary["message"].splitlines() if x.strip().startswith(f"{source} PITR PASSED")
        )
        assert f"replayed to {last_segment.last.commit_time}" in line and "RTO" in line
        (row,) = [r for r in summary["pitr_drills"] if r["source"] == source]
        assert row["passed"] is True and row["recovery_time_s"] == pitr["recovery_time_seconds"]
        assert not [i for i in summary["issues"] if source in i and "drill" in i]


def test_a_pitr_drill_over_a_corrupt_middle_segment_fails_the_run_and_says_where(
    devstack, tmp_path, scratch, lambda_context, capsys
):
    with pitr_source(tmp_path, scratch_url_secret="PITR_SCRATCH_URL") as (source, url):
        # Given three committed segments, the middle one damaged after the real writer stored it
        base = take_base(source, on_demand=True)
        assert base.manifest is not None
        for n in (1, 2, 3):
            execute(url, f"INSERT INTO tags VALUES ('c{n}', {n})")
            run_capture(source)
        store = BackupStore.from_settings()
        second = read_segment(store, source, base.manifest.backup_id, 2)
        part = segment_keys.part_key(source, second.base_id, second.seq, second.parts[0].name)
        store.s3.put_object(Bucket=store.bucket, Key=part, Body=b"garbage")  # bit rot / tampering
        capsys.readouterr()
        # When the weekly schedule fires, Then the handler raises naming the source and the cut
        with pytest.raises(RestoreError) as failure:
            _handler_module().lambda_handler(_event(source), lambda_context)
        assert source in str(failure.value) and "segment 2 is damaged" in str(failure.value)
        # And the snapshot drill of the base still passed; PitrDrillSuccess is 0
        emitted = _metrics(capsys.readouterr().out, source)
        assert emitted["RestoreTestSuccess"] == 1 and emitted["PitrDrillSuccess"] == 0
        record = store.read_verification(source, base.manifest.backup_id)
        assert record is not None and record.passed and record.pitr is not None
        assert record.pitr.ok is False and "segment 2 is damaged" in (record.pitr.stopped or "")
        assert record.pitr.transactions == 1  # segment 1 only: nothing applied over the gap
        assert _public_tables(scratch) == 0
        # And the summary names the failed point-in-time drill
        summary = summary_run(publish=False)
        assert any(
            f"{source}: point-in-time drill of {base.manifest.backup_id} FAILED" in i and "segment 2" in i
            for i in summary["issues"]
        )


def test_a_non_pitr_source_gets_only_the_snapshot_drill(devstack, lambda_context, capsys):
    from tests.helpers.restore import backup_now

    devstack.seed()
    backup_id = backup_now("postgres")
    capsys.readouterr()
    response = _handler_module().lambda_handler(load_event("verify-postgres-schedule.json"), lambda_context)
    (result,) = response["results"]
    assert result["source"] == "postgres" and result["backup_id"] == backup_id and result["passed"] is True
    assert result["pitr"] is None
    emitted = _metrics(capsys.readouterr().out, "postgres")
    assert emitted["RestoreTestSuccess"] == 1 and "PitrDrillSuccess" not in emitted
    record = BackupStore.from_settings().read_verification("postgres", backup_id)
    assert record is not None and record.drill is not None and record.pitr is None
