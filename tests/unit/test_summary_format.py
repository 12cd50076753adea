"""Daily summary formatting (seed 004): pure, from gathered inputs to subject + message + issues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.verification import UnreadableVerification, VerificationRecord
from lastgood.monitoring.summary import (
    DatasetStatus,
    DrillStatus,
    SourceStatus,
    SummaryInputs,
    build_summary,
    human_bytes,
    human_duration,
)
from lastgood.monitoring.summary_gather import drill_from_verification

from tests.helpers import verification

NOW = datetime(2025, 1, 29, 7, 0, tzinfo=UTC)


def _healthy() -> SummaryInputs:
    return SummaryInputs(
        sources=[
            SourceStatus(
                "postgres",
                rpo_s=3600,
                rto_s=4 * 3600,
                last_backup_id="20250129T063000Z-abcdef",
                last_backup_at=NOW - timedelta(minutes=30),
                size_bytes=12 * 1024 * 1024,
                duration_s=42.0,
                backups=30,
                drill=DrillStatus("20250128T020000Z-123456", True, NOW - timedelta(hours=29), 95.0),
            )
        ],
        datasets=[DatasetStatus("prompts", 7200, NOW - timedelta(minutes=10))],
        fallbacks={"": 0},
        stage="prod",
    )


def test_all_fine_still_produces_a_confirmation() -> None:
    # Given every backup within RPO, a passed drill, fresh data and no fallbacks
    summary = build_summary(_healthy(), NOW)
    # Then the summary says OK and shows each part (seed 004: confirmation even when fine)
    assert summary.ok
    assert summary.subject == "[lastgood prod] Daily summary 2025-01-29: OK"
    assert "All backups are within their RPO" in summary.message
    assert "postgres   OK       last 2025-01-29T06:30:00Z (30m ago, RPO 1h), 12.0 MiB, took 42s, 30 kept" in (
        summary.message
    )
    assert "PASSED   2025-01-28T02:00:00Z, recovery 1m (RTO 4h)" in summary.message
    assert "prompts    FRESH    updated 2025-01-29T06:50:00Z (10m ago, freshness 2h)" in summary.message
    assert "Fallbacks served in the last 24 h\n  total 0" in summary.message
    assert summary.as_dict()["fallbacks_24h"]["total"] == 0


def test_late_backup_failed_drill_stale_dataset_and_fallbacks_are_issues() -> None:
    # Given a backup older than its RPO, a failed drill, a stale dataset and fallback use
    inputs = _healthy()
    inputs.sources[0].last_backup_at = NOW - timedelta(hours=3)
    inputs.sources[0].drill = DrillStatus("20250128T020000Z-123456", False, None, None, "counts differ")
    inputs.datasets[0].last_modified = NOW - timedelta(hours=5)
    inputs.fallbacks = {"dataset=prompts,layer=last-good": 4}
    # When the summary is built
    summary = build_summary(inputs, NOW)
    # Then each problem is listed, the subject counts them and the numbers show
    assert not summary.ok
    assert summary.subject.endswith(": 3 issues")
    assert "postgres: newest backup is 3h old, RPO is 1h" in summary.issues
    assert any("restore drill of 20250128T020000Z-123456 FAILED: counts differ" in i for i in summary.issues)
    assert "dataset prompts: last published 5h ago (freshness 2h)" in summary.issues
    assert "LATE" in summary.message and "STALE" in summary.message and "FAILED" in summary.message
    assert "  total 4\n  dataset=prompts,layer=last-good: 4" in summary.message


def test_drill_slower_than_rto_is_an_issue() -> None:
    inputs = _healthy()
    inputs.sources[0].drill = DrillStatus("20250128T020000Z-123456", True, NOW, 5 * 3600.0)
    summary = build_summary(inputs, NOW)
    assert summary.issues == ["postgres: restore drill took 5h, RTO is 4h"]
    assert "SLOW" in summary.message


def test_missing_backups_unreadable_parts_and_unknown_metrics_are_reported_not_hidden() -> None:
    # Given a source never backed up, one whose listing failed, an unpublished dataset and no metrics
    inputs = SummaryInputs(
        sources=[
            SourceStatus("mongodb", 3600, 3600),
            SourceStatus("upstash", 86400, 3600, error="AccessDenied"),
        ],
        datasets=[DatasetStatus("learning", 7200)],
        fallbacks=None,
        fallbacks_error="EndpointConnectionError",
    )
    summary = build_summary(inputs, NOW)
    assert summary.issues == [
        "mongodb: no complete backup found",
        "upstash: backups could not be read (AccessDenied)",
        "dataset learning: never published",
    ]
    assert "mongodb    no restore drill recorded yet" in summary.message
    assert "unknown: EndpointConnectionError" in summary.message
    assert summary.as_dict()["fallbacks_24h"]["total"] is None


def test_empty_configuration_is_said_plainly() -> None:
    summary = build_summary(SummaryInputs(), NOW)
    assert summary.ok
    assert "no sources configured" in summary.message and "no datasets configured" in summary.message


def test_sections_are_separated_by_blank_lines_and_message_ends_with_newline() -> None:
    message = build_summary(_healthy(), NOW).message
    assert message.endswith("\n")
    for heading in ("Backups", "Restore drills", "Datasets", "Fallbacks served"):
        assert f"\n\n{heading}" in message


def test_human_units() -> None:
    assert human_duration(None) == "?"
    assert human_duration(5) == "5s"
    assert human_duration(600) == "10m"
    assert human_duration(3 * 3600 + 5 * 60) == "3h 05m"
    assert human_duration(3 * 86400 + 3600) == "3d 1h"
    assert human_duration(7200) == "2h"
    assert human_duration(2 * 86400 * 2) == "4d"
    assert human_bytes(None) == "?"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"


def test_a_drill_is_read_from_what_verify_writes_with_its_recovery_time() -> None:
    # Given the verification.json verify writes after a 12.5 s restore drill (RTO 60 s)
    record = VerificationRecord.from_json(
        verification.drill("pg", "20250128T020000Z-123456", seconds=12.5).record().to_json()
    )
    # When the summary reads it
    drill = drill_from_verification(record)
    # Then it reports the drill, its recovery time and its time
    assert drill is not None and drill.passed and drill.recovery_time_s == 12.5
    assert drill.at == record.checked_at


def test_an_integrity_only_verify_is_not_reported_as_a_drill() -> None:
    record = verification.integrity_only("pg", "20250128T020000Z-123456").record()
    assert drill_from_verification(record) is None


def test_a_drill_over_its_rto_is_flagged_in_the_summary() -> None:
    # Given a source with a 60 s RTO whose newest drill took 90 s
    record = verification.drill("postgres", "20250128T020000Z-123456", seconds=90.0, rto=60).record()
    inputs = _healthy()
    inputs.sources[0].rto_s = 60
    inputs.sources[0].drill = drill_from_verification(record)
    # When the summary is built
    summary = build_summary(inputs, NOW)
    # Then the drill row says it missed the RTO and the issue is named
    row = next(r for r in summary.as_dict()["drills"] if r["source"] == inputs.sources[0].name)
    assert row["recovery_time_s"] == 90.0 and row["within_rto"] is False
    assert not summary.ok and any("RTO" in issue for issue in summary.issues)


def test_an_unreadable_verification_is_not_passed_and_says_why() -> None:
    with pytest.raises(UnreadableVerification, match=r"verification\.json is not readable"):
        VerificationRecord.from_json(b'{"passed": true, "verified_at": "2025-01-28T03:00:00Z"}')


def test_a_pitr_source_reports_its_last_point_in_time_drill_and_a_failed_one_is_an_issue() -> None:
    from lastgood.monitoring.summary_gather import pitr_drill_from_verification

    # Given a PITR source whose base passed its snapshot drill and its PITR drill (4 s, RTO 60 s)
    snapshot = verification.drill("orders", "20250128T020000Z-123456", rto=60)
    record = verification.with_pitr(
        snapshot, verification.pitr_drill("orders", snapshot.backup_id, seconds=4.0)
    )
    inputs = _healthy()
    src = inputs.sources[0]
    src.pitr, src.rto_s, src.newest_segment_at = True, 60, NOW - timedelta(minutes=2)
    src.drill = drill_from_verification(record)
    src.pitr_drill = pitr_drill_from_verification(record)
    # When the summary is built, Then the drills section has the PITR line with time and verdict
    summary = build_summary(inputs, NOW)
    assert summary.ok, summary.issues
    assert "postgres   PITR PASSED " in summary.message and "recovery 4s (RTO 1m)" in summary.message
    assert "replayed to 2025-01-28T01:55:00Z" in summary.message
    (row,) = summary.as_dict()["pitr_drills"]
    assert row["passed"] is True and row["recovery_time_s"] == 4.0 and row["within_rto"] is True
    # Given instead a PITR drill cut by a damaged segment, Then it is FAILED and an issue naming it
    cut = verification.pitr_drill("orders", snapshot.backup_id, stopped="segment 2 is damaged (corrupt)")
    src.pitr_drill = pitr_drill_from_verification(verification.with_pitr(snapshot, cut))
    failed = build_summary(inputs, NOW)
    assert any(
        "point-in-time drill of 20250128T020000Z-123456 FAILED" in i and "segment 2" in i
        for i in failed.issues
    )
    assert "PITR FAILED" in failed.message
    # And a PITR source never drilled says so (not an issue), a non-PITR source has no PITR line
    src.pitr_drill = None
    assert "PITR     no point-in-time drill recorded yet" in build_summary(inputs, NOW).message
    src.pitr = False
    assert "PITR" not in build_summary(inputs, NOW).message
