"""Verify handler: the weekly restore drill (EventBridge Scheduler).

Event (Scheduler input): `{}` drills every configured source; `{"source": "postgres"}`
(or `{"sources": ["postgres", "mongodb"]}`) only those. Each drill re-hashes the
source's newest backup, restores it into the source's scratch target, compares
counts, measures the recovery time against the RTO and writes verification.json;
metrics `RestoreTestSuccess` and `RecoveryTimeSeconds` (dimension `source`).
A source with `pitr = true` then gets a point-in-time drill to now (its newest base +
change log replayed to the newest committed change, `lastgood.pitr.drill`), recorded on
that base's verification.json; metrics `PitrDrillSuccess` and `PitrRecoveryTimeSeconds`.
Every source is drilled; then, if any failed, the handler raises so the
on-failure destination and the alarm fire.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.core.errors import RestoreError
from lastgood.core.events import VerifyInput, parse_input
from lastgood.core.observability import emit_metrics, logger, metrics, tracer
from lastgood.pitr.drill import run_weekly_drills


def parse_event(event: Any) -> list[str] | None:
    """Source names from the Scheduler input (or an EventBridge `detail`); None = all configured."""
    return parse_input(event, VerifyInput).names


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = run_weekly_drills(parse_event(event))
    response = {
        "passed": all(o.passed for o in outcomes),
        "results": [o.as_dict() for o in outcomes],
    }
    failed = [o.source for o in outcomes if not o.passed]
    # Per-source RestoreTestSuccess/RecoveryTimeSeconds (and Pitr*) are already emitted; the run's total.
    emit_metrics({"RestoreDrillsFailed": ("Count", len(failed))})
    if failed:
        logger.error("restore drill failed", extra=response)
        raise RestoreError(f"restore drill failed for: {', '.join(failed)} ({response['results']})")
    return response
