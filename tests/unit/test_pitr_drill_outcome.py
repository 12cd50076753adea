"""What the weekly PITR drill counts as passed, and what it records (`lastgood.pitr.drill`)."""

from __future__ import annotations

from datetime import UTC, datetime

from lastgood.backups.verification import VerificationRecord
from lastgood.pitr.drill import PitrDrillOutcome

from tests.helpers import verification


def test_a_pitr_drill_over_the_rto_fails_and_records_why() -> None:
    outcome = verification.pitr_drill("orders", "20250128T020000Z-123456", seconds=90.0, rto=60)
    assert not outcome.passed
    assert outcome.problems() == ["PITR recovery time 90.0s exceeds the RTO of 60s"]
    record = outcome.record()
    assert record.ok is False and record.within_rto is False and "exceeds the RTO" in (record.error or "")


def test_a_cut_change_log_fails_the_drill_even_within_the_rto() -> None:
    outcome = verification.pitr_drill(
        "orders", "b", stopped="segment 4 is missing (the next stored one is 5)"
    )
    assert (
        not outcome.passed and outcome.record().stopped == "segment 4 is missing (the next stored one is 5)"
    )


def test_a_drill_that_could_not_run_is_recorded_as_failed_with_the_reason_and_round_trips() -> None:
    outcome = PitrDrillOutcome("orders", datetime(2025, 1, 28, 2, tzinfo=UTC), error="no PITR base backup")
    assert not outcome.passed and outcome.as_dict()["problems"] == ["PITR drill failed: no PITR base backup"]
    stored = verification.with_pitr(verification.drill("orders", "b"), outcome)
    back = VerificationRecord.from_json(stored.to_json())
    assert (
        back.pitr is not None and back.pitr.ok is False and "no PITR base backup" in (back.pitr.error or "")
    )
    assert back.passed is True  # the snapshot verification of the base is its own verdict
