"""Verify handler: the weekly restore drill (EventBridge Scheduler).

Event (Scheduler input): `{}` drills every configured source; `{"source": "postgres"}`
(or `{"sources": ["postgres", "mongodb"]}`) only those. Each drill re-hashes the
source's newest backup, restores it into the source's scratch target, compares
counts, measures the recovery time against the RTO and writes verification.json;
metrics `RestoreTestSuccess` and `RecoveryTimeSeconds` (dimension `source`).
Every source is drilled; then, if any failed, the handler raises so the
on-failure destination and the alarm fire.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.backups.verify import run_drills
from lastgood.core.errors import ConfigError, RestoreError
from lastgood.core.observability import logger, metrics, tracer


def parse_event(event: Any) -> list[str] | None:
    """Source names from the Scheduler input (or an EventBridge `detail`); None = all configured."""
    if event is None:
        return None
    if not isinstance(event, dict):
        raise ConfigError(
            f'verify event must be a JSON object like {{"source": "postgres"}}, got {type(event).__name__}'
        )
    body = event.get("detail") if isinstance(event.get("detail"), dict) else event
    source = body.get("source")
    sources = body.get("sources")
    if source is not None:
        if not isinstance(source, str) or not source:
            raise ConfigError(f'verify event "source" must be a source name, got {source!r}')
        return [source]
    if sources is not None:
        if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
            raise ConfigError(f'verify event "sources" must be a list of source names, got {sources!r}')
        return list(sources) or None
    return None


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = run_drills(parse_event(event))
    response = {
        "passed": all(o.passed for o in outcomes),
        "results": [o.as_dict() for o in outcomes],
    }
    failed = [o.source for o in outcomes if not o.passed]
    # Per-source RestoreTestSuccess/RecoveryTimeSeconds are already emitted; this is the run's total.
    metrics.add_metric(name="RestoreDrillsFailed", unit=MetricUnit.Count, value=len(failed))
    if failed:
        logger.error("restore drill failed", extra=response)
        raise RestoreError(f"restore drill failed for: {', '.join(failed)} ({response['results']})")
    return response
